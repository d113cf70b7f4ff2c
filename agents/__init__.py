"""The learning agents: element-wise recurrent cores (exact RTRL), networks, losses."""
