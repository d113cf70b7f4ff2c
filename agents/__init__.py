"""The learning agents: element-wise recurrent cores (exact RTRL), networks, losses."""

from rtrl_rl.agents import vtrace
from rtrl_rl.agents.learner import Learner
from rtrl_rl.agents.model import ActOutput, ActorCritic

__all__ = ["ActOutput", "ActorCritic", "Learner", "vtrace"]
