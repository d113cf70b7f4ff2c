"""The actor process: act in its own group of streams and fill shared rollout slots.

An actor builds its vectorised environment (seeded from the run seed, its index and its
restart count), a CPU copy of the model, and a :class:`~rtrl_rl.training.rollout.Collector`. Then,
until told to stop: take one of its free slots, load newer parameters if the learner
published any, collect one segment straight into the slot, record the acting parameter
version and the segment number, and send the slot index down its pipe to the learner
together with the episodes that finished. It never computes sensitivities: the learner keeps the
per-stream RTRL carry.

Faults: any exception is sent down the same pipe (:func:`failure_report`: its type,
message and traceback, and the env spec) and the process exits with code 1; the learner
decides whether to stop the run or restart the actor. A
:class:`~rtrl_rl.envs.values.NonFiniteValue` (a NaN or infinite value from the
environment) is sent along itself: the learner raises it and the run stops.
SIGINT is ignored (a Ctrl-C reaches the whole process group; the learner shuts actors
down itself), and an actor whose parent died exits on its own.
"""

from __future__ import annotations

import os
import queue
import signal
import sys
import traceback
from dataclasses import dataclass

import numpy as np
import torch

from rtrl_rl.config import Config
from rtrl_rl.envs.third_party import quiet_here
from rtrl_rl.envs.values import NonFiniteValue
from rtrl_rl.runtime.batches import ERROR, READY, SEGMENT
from rtrl_rl.runtime.params import SharedParams
from rtrl_rl.runtime.slots import ACTING, FULL, SlotPool
from rtrl_rl.training.rollout import Collector

#: seconds between checks of the stop flag and the parent while waiting for a free slot
POLL_S = 0.2


@dataclass
class ActorSpec:
    """What one actor process needs besides the shared objects (all picklable)."""

    config: Config
    actor: int
    generation: int
    parent_pid: int
    seed_salt: int = 0


class StopFlag:
    """A flag in shared memory that the learner sets to end the run; reads take no lock.

    Not a ``multiprocessing.Event``: an Event's ``is_set`` and ``set`` take a shared lock,
    and an actor killed while holding it (a hung actor gets SIGKILL) would block the
    learner's ``set`` for ever. Pickles into child processes as a shared-memory handle.
    """

    def __init__(self) -> None:
        self._flag = torch.zeros(1, dtype=torch.uint8).share_memory_()

    def set(self) -> None:
        """Tell every actor to stop."""
        self._flag.fill_(1)

    def is_set(self) -> bool:
        """Whether the learner asked to stop."""
        return bool(self._flag[0])


@dataclass
class Channels:
    """The shared objects an actor talks through: slots, parameters, queue, pipe, stop flag."""

    pool: SlotPool
    params: SharedParams
    free: object  # this actor's free-slot queue (multiprocessing Queue of slot indices)
    out: object  # write end of this actor's pipe to the learner (see batches.SEGMENT, ERROR)
    stop: StopFlag  # set by the learner to end the run


def actor_seed(run_seed: int, actor: int, generation: int, salt: int = 0) -> int:
    """Seed of one actor incarnation: independent per (run seed, actor, restart count, salt)."""
    return int(np.random.SeedSequence([run_seed, actor, generation, salt]).generate_state(1)[0] & 0x7FFFFFFF)


def failure_report(err: BaseException, env: str) -> dict:
    """What a failing actor sends the learner: ``type`` and ``message`` of ``err``, the
    ``env`` spec and the ``traceback`` (call it inside the ``except`` block)."""
    return {"type": type(err).__name__, "message": str(err), "env": env, "traceback": traceback.format_exc()}


def actor_main(spec: ActorSpec, channels: Channels) -> None:
    """Process entry point: run the actor loop; report any exception and exit non-zero."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The supervisor blocks SIGINT while it starts us so a Ctrl-C cannot hit our start-up.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    quiet_here()  # the env suites' notes were shown by the learner's process
    code = 0
    try:
        run_actor(spec, channels)
    except BaseException as err:  # noqa: BLE001 - every failure must reach the learner
        code = 1
        # A bad value from the environment stops the run whatever restart_actors says
        # (a fresh environment would return it again): it goes along for the learner to raise.
        fatal = err if isinstance(err, NonFiniteValue) else None
        try:  # a synchronous send: the report is in the pipe before this process ends
            channels.out.send((ERROR, failure_report(err, spec.config.env.id), fatal))
        except OSError:
            pass  # the learner has stopped reading (it is shutting down or gone)
    # The environment is closed and the report sent; skip the interpreter's teardown
    # of torch and friends, which takes a second or more per actor on a busy machine.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run_actor(spec: ActorSpec, channels: Channels) -> None:
    """The actor loop (see the module docstring); returns when the run stops."""
    from rtrl_rl.agents import ActorCritic
    from rtrl_rl.training.run_builder import make_env, seed_everything

    config, pool = spec.config, channels.pool
    torch.set_num_threads(1)  # many actors share few cores; the learner gets the rest
    seed = actor_seed(config.train.seed, spec.actor, spec.generation, spec.seed_salt)
    seed_everything(seed)
    streams = pool.streams[spec.actor]
    venv = make_env(config, seed, num_envs=len(streams), first_stream=int(streams[0]), where=f"actor {spec.actor}")
    try:
        model = ActorCritic(venv.single_observation_space, venv.single_action_space, config.agent)
        version = -1
        while version < 0:  # the learner published before starting us; this cannot spin long
            version = channels.params.pull(model, have=version)
        channels.out.send((READY,))  # from now on the learner expects a segment per step budget
        collector = Collector(venv, model, config.train.segment_length)
        seq = 0
        while (slot := _next_free_slot(spec, channels)) is not None:
            pool.mark(slot, ACTING)
            version = channels.params.pull(model, have=version)
            collector.collect(pool.segments[slot])
            pool.mark(slot, FULL, generation=spec.generation, seq=seq, version=version)
            channels.out.send((SEGMENT, slot, collector.episodes.drain()))
            seq += 1
    finally:
        venv.close()


def _next_free_slot(spec: ActorSpec, channels: Channels) -> int | None:
    """Wait for a free slot; None once the run stops or the parent process is gone."""
    while not channels.stop.is_set() and os.getppid() == spec.parent_pid:
        try:
            return channels.free.get(timeout=POLL_S)
        except queue.Empty:
            continue
    return None
