"""Python environments stepped in groups, in-process or in worker processes.

Each worker process holds a contiguous group of sub-envs and writes observations,
rewards and flags straight into one shared ``RawArray`` that the parent reads through
numpy views, so no observation is pickled per step. Commands are single bytes over a
pipe (``r`` reset, ``s`` step, ``c`` close); replies are ``k`` or ``e`` + traceback.

Robustness: workers ignore SIGINT (the parent decides) and exit when the parent's end
of the pipe closes; they are daemonic, so a parent that exits takes them along. The
parent polls with a timeout and checks ``is_alive``, so a worker killed from outside is
reported within ``poll_s`` seconds, and ``close()`` escalates close -> terminate -> kill.
"""

from __future__ import annotations

import signal
import traceback
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from rtrl_rl.envs.third_party import quiet_here



class WorkerError(RuntimeError):
    """A worker raised (message carries its traceback) or died."""


def _leaves(space: gym.Space) -> dict[str | None, tuple[tuple[int, ...], np.dtype]]:
    """Observation leaves: ``{None: ...}`` for an array space, ``{key: ...}`` for a Dict."""
    if isinstance(space, spaces.Dict):
        return {k: (tuple(s.shape), np.dtype(s.dtype)) for k, s in space.spaces.items()}
    return {None: (tuple(space.shape), np.dtype(space.dtype))}


def buffer_layout(obs_space: gym.Space, act_space: gym.Space, n: int) -> dict[str, tuple]:
    """Name -> (shape, dtype) of every array the envs and the parent share."""
    layout: dict[str, tuple] = {}
    for key, (shape, dtype) in _leaves(obs_space).items():
        layout[f"obs.{key}"] = ((n, *shape), dtype)
        layout[f"final.{key}"] = ((n, *shape), dtype)
    layout["action"] = ((n, *act_space.shape), np.dtype(act_space.dtype))
    layout["reward"] = ((n,), np.dtype(np.float32))
    layout["terminated"] = ((n,), np.dtype(bool))
    layout["truncated"] = ((n,), np.dtype(bool))
    layout["success"] = ((n,), np.dtype(np.int8))
    return layout


def buffer_views(raw: Any, layout: dict[str, tuple]) -> dict[str, np.ndarray]:
    """Numpy views into ``raw`` (64-byte aligned), or fresh arrays when ``raw`` is None."""
    views, offset = {}, 0
    for name, (shape, dtype) in layout.items():
        count = int(np.prod(shape))
        if raw is None:
            views[name] = np.zeros(shape, dtype)
        else:
            views[name] = np.frombuffer(raw, dtype, count, offset).reshape(shape)
        offset += -(-count * dtype.itemsize // 64) * 64
    return views


def buffer_nbytes(layout: dict[str, tuple]) -> int:
    """Bytes of a shared buffer that holds ``layout`` (each entry 64-byte aligned, as :func:`buffer_views`)."""
    return sum(-(-int(np.prod(s)) * d.itemsize // 64) * 64 for s, d in layout.values())


class EnvGroup:
    """Envs ``lo .. lo+len(envs)-1`` of the vector, writing results into shared views."""

    def __init__(self, envs: list[gym.Env], seeds: list[int], lo: int,
                 views: dict[str, np.ndarray]):
        self.envs, self.seeds, self.lo, self.v = envs, list(seeds), lo, views
        self.keys = [k.split(".", 1)[1] for k in views if k.startswith("obs.")]

    def _write(self, prefix: str, i: int, obs: Any) -> None:
        for key in self.keys:
            self.v[prefix + key][i] = obs if key == "None" else obs[key]

    def reset(self) -> None:
        """Reset every env; the first reset uses the env's own seed."""
        for j, env in enumerate(self.envs):
            obs, _ = env.reset(seed=self.seeds[j])
            self.seeds[j] = None
            self._write("obs.", self.lo + j, obs)

    def step(self) -> None:
        """Step every env with its action from the shared buffer; autoreset same-step.

        Rewards and flags are gathered in lists and written with one slice assignment
        each: per-element numpy writes would dominate the cost of cheap envs.
        """
        v, lo, hi = self.v, self.lo, self.lo + len(self.envs)
        # numpy scalars, not Python ints: gymnasium's Discrete.contains is 2x faster on them
        acts = list(v["action"][lo:hi].copy())
        single = self.keys == ["None"]
        obs_view = v["obs.None"] if single else None
        rewards, terms, truncs = [], [], []
        for j, env in enumerate(self.envs):
            obs, r, term, trunc, info = env.step(acts[j])
            rewards.append(r)
            terms.append(term)
            truncs.append(trunc)
            if term or trunc:
                ok = info.get("success", info.get("is_success"))
                v["success"][lo + j] = -1 if ok is None else int(bool(ok))
                self._write("final.", lo + j, obs)
                obs, _ = env.reset()
            if single:
                obs_view[lo + j] = obs
            else:
                self._write("obs.", lo + j, obs)
        v["reward"][lo:hi] = rewards
        v["terminated"][lo:hi] = terms
        v["truncated"][lo:hi] = truncs

    def close(self) -> None:
        """Close every env of the group."""
        for env in self.envs:
            env.close()


def worker_main(conn, factories, seeds, lo, raw, layout) -> None:
    """Worker process loop: build the group, then serve one-byte commands until close."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    quiet_here()  # the suites' notes were shown by the process that started this worker
    group = None
    try:
        group = EnvGroup([f() for f in factories], seeds, lo, buffer_views(raw, layout))
        conn.send_bytes(b"k")
    except Exception:
        conn.send_bytes(b"e" + traceback.format_exc().encode())
    while True:
        try:
            cmd = conn.recv_bytes()
        except (EOFError, OSError):
            break  # the parent is gone: die with it
        if cmd == b"c":
            break
        try:
            if group is None:
                raise RuntimeError("the worker's environments failed to build")
            group.reset() if cmd == b"r" else group.step()
            conn.send_bytes(b"k")
        except Exception:
            conn.send_bytes(b"e" + traceback.format_exc().encode())
    if group is not None:
        try:
            group.close()
        except Exception:
            pass


def split(n: int, parts: int) -> list[range]:
    """Split range(n) into ``parts`` contiguous, nearly equal, non-empty ranges."""
    parts = max(1, min(parts, n))
    bounds = np.linspace(0, n, parts + 1).round().astype(int)
    return [range(bounds[k], bounds[k + 1]) for k in range(parts)]
