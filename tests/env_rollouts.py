"""Shared helper of the env tests: the observations of a fixed-action rollout."""

from __future__ import annotations

import numpy as np

from rtrl_rl import envs


def rollout_frames(spec: str, seed: int, actions: list[int], steps: int) -> np.ndarray:
    """Observations (steps + 1, N, ...) of ``spec`` with N = len(actions), repeating ``actions``."""
    venv = envs.make_vector(spec, len(actions), seed=seed)
    try:
        out = [venv.reset().obs]
        out += [venv.step(np.array(actions)).obs for _ in range(steps)]
    finally:
        venv.close()
    return np.stack(out)
