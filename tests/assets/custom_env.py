"""Custom gymnasium envs loaded by file path in the envs tests (not a package on purpose)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class CountingEnv(gym.Env):
    """Observation [episode id, step in episode]; reward = step index of the action.

    Episode k (0, 1, 2, ... per env) lasts k % 3 + 2 steps and ends terminated when k is
    even, truncated when odd, so every pairing of observation and flags can be checked.
    ``offset`` shifts episode ids, to tell envs apart.
    """

    def __init__(self, offset: int = 0):
        self.observation_space = spaces.Box(0, 1e9, (2,), np.float64)
        self.action_space = spaces.Discrete(2)
        self.episode, self.t, self.offset = -1, 0, offset

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        if seed is not None:  # a seeded reset restarts the count: same seed, same episodes
            self.offset = float(self.np_random.integers(1000)) * 1000
            self.episode = -1
        self.episode, self.t = self.episode + 1, 0
        return self._obs(), {}

    def _obs(self):
        return np.array([self.offset + self.episode, self.t], np.float64)

    def step(self, action):
        reward = float(self.t)
        self.t += 1
        end = self.t >= self.episode % 3 + 2
        term, trunc = end and self.episode % 2 == 0, end and self.episode % 2 == 1
        return self._obs(), reward, term, trunc, {"success": True} if end else {}


class RichEnv(gym.Env):
    """Dict observations and a chosen action space ("multidiscrete" or "box")."""

    def __init__(self, action: str = "multidiscrete"):
        self.observation_space = spaces.Dict({
            "pos": spaces.Box(-1.0, 1.0, (2,), np.float32), "flag": spaces.Discrete(3)})
        self.action_space = (spaces.MultiDiscrete([3, 4]) if action == "multidiscrete"
                             else spaces.Box(-1.0, 1.0, (3,), np.float32))
        self.last_action = None
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(np.zeros(2, np.float32)), {}

    def _obs(self, pos):
        return {"pos": pos.astype(np.float32), "flag": int(self.t % 3)}

    def step(self, action):
        assert self.action_space.contains(np.asarray(action, self.action_space.dtype))
        self.t += 1
        pos = np.clip(np.asarray(action, np.float32)[:2] / 4.0, -1, 1)
        return self._obs(pos), 0.5, self.t >= 5, False, {}


class BrokenEnv(gym.Env):
    """Breaks the contract on purpose: observations outside its space, NaN rewards."""

    def __init__(self):
        self.observation_space = spaces.Box(0.0, 1.0, (2,), np.float32)
        self.action_space = spaces.Discrete(2)
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(2, np.float32), {}

    def step(self, action):
        self.t += 1
        obs = np.full(2, 5.0, np.float32)
        return obs, float("nan"), self.t >= 10, False, {}


class CrashingEnv(gym.Env):
    """Raises in ``step`` after ``crash_at`` steps (to test worker error reporting)."""

    def __init__(self, crash_at: int = 3):
        self.observation_space = spaces.Box(0.0, 1.0, (1,), np.float32)
        self.action_space = spaces.Discrete(2)
        self.t, self.crash_at = 0, crash_at

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.t += 1
        if self.t >= self.crash_at:
            raise RuntimeError("boom in CrashingEnv.step")
        return np.zeros(1, np.float32), 0.0, False, False, {}


class HangingEnv(CrashingEnv):
    """Never returns from ``step`` once ``crash_at`` is reached (a stuck simulator)."""

    def step(self, action):
        self.t += 1
        if self.t >= self.crash_at:
            import time
            while True:
                time.sleep(1)
        return np.zeros(1, np.float32), 0.0, False, False, {}
