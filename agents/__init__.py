"""The learning agents: element-wise recurrent cores (exact RTRL), networks, losses."""

from rtrl_rl.agents import ppo, vtrace
from rtrl_rl.agents.learner import Learner, SegmentLearner
from rtrl_rl.agents.model import ActOutput, ActorCritic
from rtrl_rl.agents.ppo_learner import PPOLearner

__all__ = ["ActOutput", "ActorCritic", "Learner", "PPOLearner", "SegmentLearner", "ppo", "vtrace"]
