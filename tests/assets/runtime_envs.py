"""Environments for the runtime tests (loaded as ``tests/assets/runtime_envs.py:Class``).

:class:`CounterEnv` makes the order of a stream's steps visible in its observations:
``[episode id, step in episode]``. Segments of one stream join up exactly when row T of a
segment equals row 0 of the next one, and the step counter rises by one per step within
an episode, so any reordering or lost segment shows. It can also crash on purpose.
"""

from __future__ import annotations

import os
import signal
import time

import gymnasium as gym
import numpy as np


class CounterEnv(gym.Env):
    """Observation ``[episode id, step]``; episodes end (terminated) after ``length`` steps.

    ``crash_at``: raise in the ``crash_at``-th call of ``step`` of this instance. With
    ``marker`` (a file path), only the first instance anywhere to get there crashes: it
    creates the marker atomically, and every later one sees it and carries on.
    ``hang_at``: sleep for ever in the ``hang_at``-th call of ``step`` instead; with
    ``unreachable``, block the run's hang signal first, like an env stuck in C code that
    no signal handler can interrupt.
    ``step_s``: sleep that long in every ``step`` (a slow but live env).
    """

    observation_space = gym.spaces.Box(-1.0, 1e6, shape=(2,), dtype=np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, length: int = 7, crash_at: int = 0, marker: str = "", hang_at: int = 0,
                 unreachable: bool = False, step_s: float = 0.0) -> None:
        self.length, self.crash_at, self.marker, self.hang_at = length, crash_at, marker, hang_at
        self.unreachable, self.step_s = unreachable, step_s
        self.calls = 0
        self.episode, self.t = 0.0, 0

    def _obs(self) -> np.ndarray:
        return np.array([self.episode, self.t], dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.episode, self.t = float(self.np_random.integers(1, 1_000_000)), 0
        return self._obs(), {}

    def step(self, action):
        self.calls += 1
        if self.crash_at and self.calls == self.crash_at and self._claim_crash():
            raise RuntimeError("CounterEnv crashed on purpose (runtime fault test)")
        if self.hang_at and self.calls >= self.hang_at and self.unreachable:
            from rtrl_rl.run.stopping import HANG_SIGNAL

            signal.pthread_sigmask(signal.SIG_BLOCK, {HANG_SIGNAL})
        while self.hang_at and self.calls >= self.hang_at:
            time.sleep(1.0)
        if self.step_s:
            time.sleep(self.step_s)
        self.t += 1
        reward = 1.0 if int(action) == 1 else 0.0
        return self._obs(), reward, self.t >= self.length, False, {}

    def _claim_crash(self) -> bool:
        if not self.marker:
            return True
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return False
        return True
