"""Environments that return bad values on purpose (loaded as ``tests/assets/value_envs.py:Class``).

Only the sub-environment whose first seeded reset got ``bad_seed`` misbehaves, so a test
knows which stream must be named: stream k of a run seeded s gets
``rtrl_rl.envs.derive_seeds(s, num_envs)[k]`` (an actor's streams: the same from its own
seed).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class BadValueEnv(gym.Env):
    """Observation [0.5, 0.5] (or a Dict holding it under "pos"), reward 1, episodes of 5 steps.

    At its ``at``-th call of ``step`` the bad sub-env puts ``value`` into ``field``:
    ``reward``, ``obs`` (the observation after the step) or ``final_obs`` (``at`` must then
    end an episode: a multiple of 5). ``dict_obs`` gives Dict observations.
    """

    action_space = gym.spaces.Discrete(2)

    def __init__(self, field: str = "reward", value: float = float("nan"), at: int = 7, bad_seed: int = -1,
                 dict_obs: bool = False) -> None:
        box = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.observation_space = gym.spaces.Dict({"pos": box}) if dict_obs else box
        self.field, self.value, self.at, self.bad_seed, self.dict_obs = field, value, at, bad_seed, dict_obs
        self.bad, self.calls, self.t = False, 0, 0

    def _obs(self, value: float = 0.5):
        obs = np.full(2, value, np.float32)
        return {"pos": obs} if self.dict_obs else obs

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self.bad = seed == self.bad_seed
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        self.calls += 1
        self.t += 1
        now = self.bad and self.calls == self.at
        reward = self.value if now and self.field == "reward" else 1.0
        bad_obs = now and self.field in ("obs", "final_obs")
        return self._obs(self.value) if bad_obs else self._obs(), reward, self.t >= 5, False, {}


class WarningEnv(BadValueEnv):
    """The user's own env that warns at every step: the user must see that warning."""

    def step(self, action):
        import warnings

        warnings.warn("a warning from the user's own env", UserWarning, stacklevel=1)
        return super().step(action)
