"""The learning agents: element-wise recurrent cores (exact RTRL), networks, losses."""

from agents import vtrace
from agents.learner import Learner
from agents.model import ActOutput, ActorCritic

__all__ = ["ActOutput", "ActorCritic", "Learner", "vtrace"]
