"""The VectorEnv over Python gymnasium envs: in-process (``workers=0``) or in workers."""

from __future__ import annotations

import multiprocessing as mp
import time
from typing import Any, Callable

import gymnasium as gym
import numpy as np

from rtrl_rl.envs.vector_env import EpisodeTracker, StepBatch, VectorEnv, reset_batch
from rtrl_rl.envs.workers import (EnvGroup, WorkerError, buffer_layout, buffer_nbytes, buffer_views, split,
                                  worker_main)


class PythonVectorEnv(VectorEnv):
    """N Python envs built by picklable ``factories``, grouped over ``workers`` processes.

    ``workers=0`` steps all envs in this process (lowest latency for cheap envs);
    ``workers=W`` starts W daemon processes, each holding about N/W envs. Observations,
    rewards and flags travel through one shared buffer (see :mod:`rtrl_rl.envs.workers`).
    ``poll_s`` bounds how long a dead worker goes unnoticed; ``step_timeout`` (None:
    no limit) bounds a step of a live but stuck worker.
    """

    def __init__(self, factories: list[Callable[[], gym.Env]], seeds: list[int],
                 observation_space: gym.Space, action_space: gym.Space, workers: int = 0,
                 start_method: str = "forkserver", poll_s: float = 1.0,
                 step_timeout: float | None = None):
        self.num_envs = len(factories)
        self.single_observation_space = observation_space
        self.single_action_space = action_space
        self._layout = buffer_layout(observation_space, action_space, self.num_envs)
        self._keys = [k.split(".", 1)[1] for k in self._layout if k.startswith("obs.")]
        self._tracker = EpisodeTracker(self.num_envs)
        self._poll_s, self._timeout = poll_s, step_timeout
        self._procs: list[Any] = []
        self._conns: list[Any] = []
        self._group: EnvGroup | None = None
        self._closed = False
        self._broken: str | None = None
        if workers <= 0:
            self._v = buffer_views(None, self._layout)
            self._group = EnvGroup([f() for f in factories], seeds, 0, self._v)
        else:
            self._start(factories, seeds, workers, start_method)

    def _start(self, factories, seeds, workers: int, start_method: str) -> None:
        ctx = mp.get_context(start_method)
        raw = ctx.RawArray("b", max(1, buffer_nbytes(self._layout)))
        self._v = buffer_views(raw, self._layout)
        for part in split(self.num_envs, workers):
            parent, child = ctx.Pipe()
            args = ([factories[i] for i in part], [seeds[i] for i in part], part.start,
                    raw, self._layout)
            proc = ctx.Process(target=worker_main, args=(child, *args), daemon=True,
                               name=f"rtrl-env-worker-{part.start}")
            proc.start()
            child.close()  # so the worker's death shows as EOF here
            self._procs.append(proc)
            self._conns.append(parent)
        try:
            self._wait_all()
        except BaseException:
            self.close()
            raise

    @property
    def worker_pids(self) -> list[int]:
        """Process ids of the workers (empty in-process)."""
        return [p.pid for p in self._procs]

    def _died(self, k: int) -> WorkerError:
        """The error for worker k having died (its exit code, once the process is reaped)."""
        proc = self._procs[k]
        proc.join(0.5)
        return WorkerError(f"env worker {k} (pid {proc.pid}) died, exit code {proc.exitcode}")

    def _wait(self, k: int) -> None:
        """Wait for worker k's reply; raise WorkerError on an error, death or timeout."""
        conn, proc = self._conns[k], self._procs[k]
        start = time.monotonic()
        while not conn.poll(self._poll_s):
            if not proc.is_alive():
                raise self._died(k)
            if self._timeout is not None and time.monotonic() - start > self._timeout:
                raise WorkerError(f"env worker {k} (pid {proc.pid}) did not answer within "
                                  f"{self._timeout} s")
        try:
            msg = conn.recv_bytes()
        except (EOFError, OSError):
            raise self._died(k) from None
        if msg[:1] == b"e":
            raise WorkerError(f"env worker {k} raised:\n{msg[1:].decode(errors='replace')}")

    def _wait_all(self) -> None:
        errors = []
        for k in range(len(self._conns)):
            try:
                self._wait(k)
            except WorkerError as err:
                errors.append(err)
        if errors:
            raise errors[0]

    def _command(self, cmd: bytes) -> None:
        if self._closed:
            raise RuntimeError("step/reset on a closed VectorEnv")
        if self._broken is not None:
            raise RuntimeError(f"this VectorEnv is unusable after: {self._broken}; close it")
        if self._group is not None:
            self._group.reset() if cmd == b"r" else self._group.step()
            return
        try:
            for k, conn in enumerate(self._conns):
                try:
                    conn.send_bytes(cmd)
                except OSError:  # a worker killed from outside: its end of the pipe is gone
                    raise self._died(k) from None
            self._wait_all()
        except BaseException as err:
            # a late reply could still be in a pipe (also when a run's step timeout or a
            # Ctrl-C ended the wait): never reuse these workers
            self._broken = (str(err).splitlines() or [type(err).__name__])[0]
            raise

    def _obs(self, prefix: str) -> Any:
        if self._keys == ["None"]:
            return self._v[prefix + "None"].copy()
        return {k: self._v[prefix + k].copy() for k in self._keys}

    def reset(self) -> StepBatch:
        """Reset all envs (first reset: each env's own derived seed)."""
        self._command(b"r")
        self._tracker.restart()
        return reset_batch(self._obs("obs."), self.num_envs)

    def step(self, actions: np.ndarray) -> StepBatch:
        """Write the actions to the shared buffer, step every group, read the results."""
        v = self._v
        v["action"][:] = np.asarray(actions).reshape(v["action"].shape)
        self._command(b"s")
        term, trunc = v["terminated"].copy(), v["truncated"].copy()
        done = term | trunc
        reward = v["reward"].copy()
        episodes = self._tracker.update(reward, done, v["success"])
        final = {}
        for i in np.flatnonzero(done):
            final[int(i)] = (v["final.None"][i].copy() if self._keys == ["None"] else
                             {k: v["final." + k][i].copy() for k in self._keys})
        return StepBatch(self._obs("obs."), reward, term, trunc, done,
                         np.zeros(self.num_envs, dtype=bool), final, episodes)

    def close(self) -> None:
        """Close the envs; workers get 1 s to exit, then terminate, then kill."""
        if self._closed:
            return
        self._closed = True
        if self._group is not None:
            self._group.close()
        for conn in self._conns:
            try:
                conn.send_bytes(b"c")
            except (OSError, ValueError):
                pass
        for proc in self._procs:
            proc.join(1.0)
            if proc.is_alive():
                proc.terminate()
                proc.join(1.0)
            if proc.is_alive():
                proc.kill()
                proc.join(1.0)
        for conn in self._conns:
            conn.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
