"""Environments with spaces the agents can or cannot learn (loaded as ``space_envs.py:Class``).

Each is a valid gymnasium.Env; what differs is only its observation or action space.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

BOX = spaces.Box(-1.0, 1.0, (2,), np.float32)


def _empty_discrete() -> spaces.Discrete:
    """A Discrete space with no values (gymnasium's constructor refuses n = 0; a space
    computed from data, or an older gymnasium, can still end up with it)."""
    space = spaces.Discrete(1)
    space.n = np.int64(0)
    return space


class SpaceEnv(gym.Env):
    """Samples its observations from its own space; reward 1; episodes of 4 steps."""

    observation_space: gym.Space = BOX
    action_space: gym.Space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.observation_space.seed(seed)
        self.t = 0
        return self.observation_space.sample(), {}

    def step(self, action):
        self.t += 1
        return self.observation_space.sample(), 1.0, self.t >= 4, False, {}


class TupleObsEnv(SpaceEnv):
    """A Tuple observation of a Box and a Discrete (carried as the Dict {"0", "1"})."""

    observation_space = spaces.Tuple((BOX, spaces.Discrete(3)))


class TextObsEnv(SpaceEnv):
    observation_space = spaces.Text(8)


class GraphObsEnv(SpaceEnv):
    observation_space = spaces.Graph(node_space=BOX, edge_space=None)


class SequenceObsEnv(SpaceEnv):
    observation_space = spaces.Sequence(spaces.Discrete(3))


class NestedDictObsEnv(SpaceEnv):
    """A Tuple holding a Dict: not a flat space of arrays."""

    observation_space = spaces.Tuple((BOX, spaces.Dict({"inner": BOX})))


class EmptyDictObsEnv(SpaceEnv):
    observation_space = spaces.Dict({})


class EmptyDiscreteObsEnv(SpaceEnv):
    observation_space = _empty_discrete()

    def reset(self, *, seed=None, options=None):
        super(SpaceEnv, self).reset(seed=seed)
        self.t = 0
        return np.int64(0), {}

    def step(self, action):
        self.t += 1
        return np.int64(0), 1.0, self.t >= 4, False, {}


class EmptyDiscreteActionEnv(SpaceEnv):
    action_space = _empty_discrete()


class EmptyMultiDiscreteActionEnv(SpaceEnv):
    action_space = spaces.MultiDiscrete([])


class TextActionEnv(SpaceEnv):
    action_space = spaces.Text(4)


class IntegerBoxActionEnv(SpaceEnv):
    action_space = spaces.Box(0, 10, (2,), np.int64)


class InfiniteBoxActionEnv(SpaceEnv):
    """Box actions with infinite bounds: supported (an unbounded Gaussian)."""

    action_space = spaces.Box(-np.inf, np.inf, (2,), np.float32)


class PushedOutActionEnv(InfiniteBoxActionEnv):
    """Infinite-bound Box actions whose reward is the mean of the action: the larger the action,
    the larger the reward, so learning pushes the policy's mean ever further out."""

    def step(self, action):
        obs, _, end, trunc, info = super().step(action)
        return obs, float(np.mean(action)), end, trunc, info
