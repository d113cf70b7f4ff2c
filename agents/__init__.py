"""The learning agents: element-wise recurrent cores (exact RTRL), networks, losses."""

from rtrl_rl.agents import ppo_objective, vtrace
from rtrl_rl.agents.model import ActOutput, ActorCritic
from rtrl_rl.agents.ppo_learner import PPOLearner
from rtrl_rl.agents.segment_learner import Learner, SegmentLearner

__all__ = ["ActOutput", "ActorCritic", "Learner", "PPOLearner", "SegmentLearner", "ppo_objective", "vtrace"]
