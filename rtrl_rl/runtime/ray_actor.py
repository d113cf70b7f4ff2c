"""The actor of the Ray backend: one group of streams, acting on CPU, driven by the learner.

The same work as the process actor (:mod:`rtrl_rl.runtime.actor`): a vectorised
environment seeded from the run seed, the actor index, the restart count and the salt
(:func:`~rtrl_rl.runtime.actor.actor_seed`), a CPU copy of the model and a
:class:`~rtrl_rl.training.rollout.Collector`. Only the transport differs. Instead of free slots
and a pipe, the learner calls :meth:`StreamGroup.collect` once per segment it wants; a
Ray actor runs its calls one at a time in the order they were submitted, so a stream's
segments come out in collection order by construction. Each call returns one object
in the object store: the segment as numpy arrays (in the ``rtrl_rl.training.rollout`` layout,
read zero-copy by a learner on the same node) and a small record of its generation,
segment number, acting parameter version and finished episodes.

Parameters arrive as a reference to one object per version (put once by the learner),
wrapped in a list so Ray does not fetch it unless this actor needs that version.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import torch

from rtrl_rl.config import Config
from rtrl_rl.envs.third_party import quiet_here
from rtrl_rl.runtime.actor import actor_seed


class StreamGroup:
    """One actor's streams (wrapped with ``ray.remote`` by :mod:`rtrl_rl.runtime.ray_backend`).

    ``actor`` is its index: it owns streams ``[actor*B, (actor+1)*B)`` with
    ``B = env.num_envs // runtime.actors``. ``seed_salt`` enters every seed (the start
    step, so a resumed run sees new episodes).
    """

    def __init__(self, config: Config, actor: int, seed_salt: int = 0) -> None:
        import signal

        # Ctrl-C reaches the whole process group; the learner stops actors itself.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        quiet_here()  # the env suites' notes were shown by the learner's process
        torch.set_num_threads(1)  # many actors share few cores; the learner gets the rest
        self.config, self.actor, self.seed_salt = config, actor, seed_salt
        self.streams = config.env.num_envs // config.runtime.actors
        self.generation: int | None = None
        self.failed: int | None = None  # a generation whose environment raised
        self.venv = self.model = self.collector = self.segment = None
        self.version, self.seq = -1, 0

    def pid(self) -> int:
        """The process id of this actor (tests kill it from outside)."""
        return os.getpid()

    def collect(self, generation: int, version: int, params: list) -> tuple[dict, dict[str, np.ndarray]]:
        """Collect the next segment of every stream of this actor.

        ``generation`` is the learner's restart count for this actor: a new one (or the
        first call after Ray restarted the process) starts fresh environments with that
        generation's seed and numbers segments from 0 again. ``params`` is ``[ref]`` to
        the state dict (numpy arrays) of parameter ``version``; it is fetched only when
        newer than what this actor holds. Returns (record, segment): record has
        ``generation``, ``seq``, ``version`` (acted with), ``episodes`` and ``pid``;
        segment maps each key of the layout to a numpy array (T(+1), B, ...).
        """
        if generation == self.failed:  # queued behind the call that raised; the learner dropped it
            raise RuntimeError(f"actor {self.actor}: generation {generation} already failed")
        try:
            if generation != self.generation:
                self._start(generation)
            if version > self.version:
                self._load(params[0])
                self.version = version
            self.collector.collect(self.segment)
        except BaseException:
            self.failed = generation
            raise
        record = {"generation": generation, "seq": self.seq, "version": self.version, "pid": os.getpid(),
                  "episodes": self.collector.episodes.drain()}
        self.seq += 1
        # Ray copies the arrays into the object store as this method returns, before the
        # next call reuses the buffers.
        return record, {key: value.numpy() for key, value in self.segment.items()}

    def _start(self, generation: int) -> None:
        from rtrl_rl.agents import ActorCritic
        from rtrl_rl.training.rollout import Collector, allocate_segment
        from rtrl_rl.training.run_builder import make_env, seed_everything

        self.close()
        config = self.config
        seed = actor_seed(config.train.seed, self.actor, generation, self.seed_salt)
        seed_everything(seed)
        self.venv = make_env(config, seed, num_envs=self.streams, first_stream=self.actor * self.streams,
                             where=f"actor {self.actor}")
        obs_space, act_space = self.venv.single_observation_space, self.venv.single_action_space
        self.model = ActorCritic(obs_space, act_space, config.agent)
        self.segment = allocate_segment(obs_space, act_space, config.train.segment_length, self.streams)
        self.collector = Collector(self.venv, self.model, config.train.segment_length)
        self.generation, self.version, self.seq = generation, -1, 0

    def _load(self, ref) -> None:
        import ray

        state = ray.get(ref)
        with warnings.catch_warnings():  # object-store arrays are read-only; load_state_dict copies them
            warnings.simplefilter("ignore", UserWarning)
            tensors = {key: torch.from_numpy(value) for key, value in state.items()}
        with torch.no_grad():
            self.model.load_state_dict(tensors, strict=True)

    def close(self) -> None:
        """Close the environment (before a new generation, and when the run stops)."""
        if self.venv is not None:
            self.venv.close()
            self.venv = None
