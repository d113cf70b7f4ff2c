"""Online prediction and control with recurrent cores learned by RTRL, one step at a time.

:class:`OnlineLearner` learns from (input, target) pairs as they arrive (see
``docs/online.md``); ``rtrl_rl.online.examples`` holds the Hénon-map prediction and the
two-network plant control examples.
"""

from rtrl_rl.online.learner import OnlineLearner

__all__ = ["OnlineLearner"]
