"""Values from environments: every observation and reward is checked where it enters.

:class:`CheckedValues` wraps a :class:`~rtrl_rl.envs.vector_env.VectorEnv` and checks each
:class:`~rtrl_rl.envs.vector_env.StepBatch` that ``reset`` and ``step`` return, for all streams
at once (a few vectorised numpy reductions per step): rewards must be finite and, where a
limit is set, no larger in magnitude than it; float observations, the final observations
of ended episodes included, must be finite. The first bad value raises
:class:`NonFiniteValue`, whose message names the env spec, the stream, the step and the
field, before the value reaches an agent: a NaN would otherwise surface far away, as a
sampler error or a diverged loss.

Integer and boolean observations (Atari frames, Discrete indices) cannot be non-finite and
are not looked at.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from rtrl_rl.envs.vector_env import StepBatch, VectorEnvWrapper

#: the largest reward magnitude the segment learners take without ``train.reward_clip``:
#: a discounted return of 1e15 / (1 - γ) squares to about 1e34 (γ = 0.99), within two
#: orders of float32's largest value (3.4e38) once a loss sums it over a segment
MAX_ABS_REWARD = 1e15


class NonFiniteValue(RuntimeError):
    """An environment returned a value the agents cannot learn from (NaN, inf, or a reward
    beyond the limit); the message says which env, stream, step and field."""

    def __init__(self, message: str, reason: str = "non-finite env value") -> None:
        super().__init__(message)
        #: the run's ``stopped`` reason in summary.json (kept by pickling, with the instance dict)
        self.reason = reason


def _bad_rows(values: np.ndarray) -> np.ndarray:
    """Indices of the rows (streams) of ``values`` (N, ...) holding NaN or inf."""
    return np.flatnonzero(~np.isfinite(values.reshape(len(values), -1)).all(axis=1))


def _stacked(final_obs: dict[int, Any]) -> Any:
    """The final observations of ``{stream: observation}`` as one batch, in the dict's order."""
    finals = list(final_obs.values())
    if isinstance(finals[0], dict):
        return {key: np.stack([np.asarray(f[key]) for f in finals]) for key in finals[0]}
    return np.stack([np.asarray(f) for f in finals])


class CheckedValues(VectorEnvWrapper):
    """A vectorised env whose ``reset`` and ``step`` raise :class:`NonFiniteValue` on a bad value.

    ``streams`` names the sub-envs in messages (the run's stream ids; default 0..N-1) and
    ``where`` says whose streams they are (e.g. ``"actor 1"``). ``reward_limit`` bounds
    |reward| (``math.inf``: finite is enough, for a learner that clips rewards). Every
    other attribute is the wrapped env's. Per step the check costs a handful of numpy
    calls whatever the number of streams (docs/runtime.md, "How a run stops").
    """

    def __init__(self, venv: Any, streams: Sequence[int] | None = None, reward_limit: float = MAX_ABS_REWARD,
                 where: str = "") -> None:
        self.venv, self.where = venv, where
        self.streams = list(range(venv.num_envs)) if streams is None else [int(s) for s in streams]
        self.reward_limit = float(reward_limit)
        # rewards travel as float32: a larger one is inf by the time it reaches a learner
        self._limit = min(self.reward_limit, float(np.finfo(np.float32).max))
        self.steps = 0  # vector steps since the last reset
        self.episode_start = np.zeros(venv.num_envs, dtype=np.int64)  # the step each episode began at

    def reset(self, *args: Any, **kwargs: Any) -> StepBatch:
        """The wrapped env's ``reset``, its observations checked."""
        batch = self.venv.reset(*args, **kwargs)
        self.steps = 0
        self.episode_start[:] = 0
        self._check_obs(batch.obs, "reset observation")
        return batch

    def step(self, actions: Any) -> StepBatch:
        """The wrapped env's ``step``, its rewards and observations checked."""
        batch = self.venv.step(actions)
        self.steps += 1
        if not (np.abs(batch.reward) <= self._limit).all():  # False for NaN, and for inf (the limit is finite)
            self._refuse_reward(np.asarray(batch.reward))
        if batch.final_obs:
            self._check_obs(_stacked(batch.final_obs), "final observation", [int(i) for i in batch.final_obs])
        if batch.first.any():
            self.episode_start[batch.first] = self.steps
        self._check_obs(batch.obs, "observation")
        return batch

    def _refuse_reward(self, reward: np.ndarray) -> None:
        i = int(np.flatnonzero(~(np.abs(reward) <= self._limit))[0])
        value = float(reward[i])
        if math.isfinite(value):
            raise NonFiniteValue(
                f"{self._where(i)} returned a reward of {value:.3g}, beyond ±{self.reward_limit:.0e}, the largest "
                "a run takes unclipped (float32 losses overflow near it): scale the rewards in the environment, "
                "or clip them with train.reward_clip=C (segment learners; the streaming learner never clips)",
                reason="extreme env reward")
        raise NonFiniteValue(f"{self._where(i)} returned a non-finite reward ({value}); rewards must be finite "
                             "numbers: fix the environment, or wrap it to replace such values")

    def _check_obs(self, obs: Any, what: str, rows: list[int] | None = None) -> None:
        """Raise for the first stream whose float observation (``rows[j]`` for row j) is not finite."""
        for key, values in (obs.items() if isinstance(obs, dict) else ((None, obs),)):
            if values.dtype.kind not in "fc" or np.isfinite(values).all():
                continue
            j = int(_bad_rows(values)[0])
            field = what if key is None else f"{what}[{key!r}]"
            raise NonFiniteValue(
                f"{self._where(j if rows is None else rows[j])} returned a non-finite {field} (it holds "
                f"{_describe(values[j])}); observations must be finite: fix the environment, "
                "or wrap it to replace such values")

    def _where(self, i: int) -> str:
        """``env 'spec' at step N of stream k (actor a, step M of its episode)``."""
        spec = getattr(self.venv, "spec", "") or type(self.venv).__name__
        owner = f"{self.where}, " if self.where else ""
        return (f"env {spec!r} at step {self.steps} of stream {self.streams[i]} "
                f"({owner}step {self.steps - int(self.episode_start[i])} of its episode)")


def _describe(row: np.ndarray) -> str:
    """``2 NaN, 1 inf of 3 values`` for one stream's observation."""
    flat = np.asarray(row, dtype=np.float64).reshape(-1)
    parts = [f"{int(n)} {name}" for name, n in (("NaN", np.isnan(flat).sum()), ("inf", np.isinf(flat).sum())) if n]
    return f"{', '.join(parts)} of {flat.size} values"
