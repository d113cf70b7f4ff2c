"""Environments for the trainer tests (loaded by file path, as users load theirs)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class MultiBinaryActionEnv(gym.Env):
    """A valid environment whose MultiBinary action space no policy head supports."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    action_space = gym.spaces.MultiBinary(4)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(3, np.float32), {}

    def step(self, action):
        return np.zeros(3, np.float32), 0.0, True, False, {}


class TinyImageEnv(gym.Env):
    """8-step episodes of 16x16 RGB frames whose brightness counts the steps."""

    observation_space = gym.spaces.Box(0, 255, (16, 16, 3), np.uint8)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._frame(), {}

    def _frame(self):
        return np.full((16, 16, 3), 30 * self.t, np.uint8)

    def step(self, action):
        self.t += 1
        return self._frame(), float(action), self.t >= 8, False, {}
