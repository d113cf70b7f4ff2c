"""The vectorised interface every suite provides: :class:`VectorEnv`, :class:`StepBatch`.

Autoreset rule (same-step, binding for every backend): when sub-environment ``i`` ends
its episode in a step, ``reward[i]``, ``terminated[i]`` and ``truncated[i]`` describe that
last transition, ``final_obs[i]`` holds the episode's last observation (where the backend
has one), and ``obs[i]`` is already the first observation of the next episode with
``first[i] = True``. Hence after every step ``first == terminated | truncated``, and no
observation of one episode is ever paired with another episode's flags.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

Obs = np.ndarray | dict[str, np.ndarray]


@dataclass
class EpisodeStats:
    """One finished episode: sub-env index, raw return, length in agent steps, success.

    ``success`` is None when the task has no notion of success.
    """

    env: int
    ret: float
    length: int
    success: bool | None = None


@dataclass
class StepBatch:
    """What one vectorised reset/step returns; every array has leading dimension N.

    ``obs``: observations to act on next (array, or dict of arrays for Dict spaces).
    ``reward`` (float32), ``terminated``, ``truncated`` (bool): outcome of the actions.
    ``first`` (bool): ``obs`` starts a new episode. ``life_lost`` (bool): Atari life loss.
    ``final_obs``: ``{env_index: last observation}`` of episodes that ended in this step.
    ``episodes``: :class:`EpisodeStats` of the episodes that ended in this step.
    """

    obs: Obs
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    first: np.ndarray
    life_lost: np.ndarray
    final_obs: dict[int, Any] = field(default_factory=dict)
    episodes: list[EpisodeStats] = field(default_factory=list)


def reset_batch(obs: Obs, num_envs: int) -> StepBatch:
    """The StepBatch of a reset: every ``first`` True, reward 0, no episode ended."""
    false = np.zeros(num_envs, dtype=bool)
    return StepBatch(obs, np.zeros(num_envs, np.float32), false, false.copy(),
                     np.ones(num_envs, dtype=bool), false.copy())


def derive_seeds(seed: int | None, num_envs: int) -> list[int]:
    """One independent 31-bit seed per sub-environment, spawned from ``seed``.

    SeedSequence spawning keeps the sub-env streams independent and makes env ``i``'s
    seed depend only on (seed, i), not on ``num_envs``.
    """
    children = np.random.SeedSequence(seed).spawn(num_envs)
    return [int(c.generate_state(1, np.uint32)[0] & 0x7FFFFFFF) for c in children]


def select(obs: Obs, index: int) -> Any:
    """The observation of sub-env ``index`` (a copy), for arrays and dicts of arrays."""
    if isinstance(obs, dict):
        return {k: v[index].copy() for k, v in obs.items()}
    return obs[index].copy()


class EpisodeTracker:
    """Accumulates per-env returns and lengths and emits EpisodeStats at episode ends.

    Backends that do not report episode statistics (all of them, in our sense: raw
    return before any clipping) feed the raw rewards here.
    """

    def __init__(self, num_envs: int):
        self.returns = np.zeros(num_envs, dtype=np.float64)
        self.lengths = np.zeros(num_envs, dtype=np.int64)

    def update(self, reward: np.ndarray, done: np.ndarray,
               success: np.ndarray | None = None) -> list[EpisodeStats]:
        """Add one step's rewards; return stats of envs where ``done`` and restart them.

        ``success`` (optional, per env) is read only at ended episodes; -1 means unknown.
        """
        self.returns += reward
        self.lengths += 1
        if not done.any():
            return []
        stats = []
        for i in np.flatnonzero(done):
            ok = None if success is None or success[i] < 0 else bool(success[i])
            stats.append(EpisodeStats(int(i), float(self.returns[i]), int(self.lengths[i]), ok))
        self.returns[done] = 0.0
        self.lengths[done] = 0
        return stats

    def restart(self) -> None:
        """Forget partial episodes (after an explicit reset)."""
        self.returns[:] = 0.0
        self.lengths[:] = 0


class VectorEnv(abc.ABC):
    """N sub-environments stepped together with same-step autoreset (see module doc).

    Attributes: ``num_envs``, ``single_observation_space``, ``single_action_space``,
    ``spec`` (the spec string it was built from) and ``options`` (the effective options,
    defaults included, so nothing is silent).
    """

    num_envs: int
    single_observation_space: gym.Space
    single_action_space: gym.Space
    spec: str = ""
    options: dict[str, Any] = {}

    @abc.abstractmethod
    def reset(self) -> StepBatch:
        """Start a new episode in every sub-env; ``first`` is all True, reward 0."""

    @abc.abstractmethod
    def step(self, actions: np.ndarray) -> StepBatch:
        """Apply one action per sub-env: (N,) int, (N, k) int or (N, dim) float."""

    def close(self) -> None:
        """Release the backend; never hangs. Safe to call twice."""

    def __enter__(self) -> "VectorEnv":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.spec!r}, num_envs={self.num_envs}, "
                f"obs={self.single_observation_space}, act={self.single_action_space})")


class VectorEnvWrapper:
    """A vectorised env around another one (``self.venv``): every attribute it does not
    define is the wrapped env's; ``close`` and ``with`` close the wrapped env."""

    venv: Any

    def __getattr__(self, name: str) -> Any:
        if name == "venv":  # not set yet (e.g. while unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.venv, name)

    def __enter__(self) -> "VectorEnvWrapper":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the wrapped env."""
        self.venv.close()
