"""The learner process of the actor-learner runtime: ``train_with_actors``.

Read it top to bottom: build the run as every trainer does (``run_builder.build_run``:
model and learner on ``train.device``, restored state, session), the shared slots and
parameters, start the actors; then the loop of every trainer, whose ``advance`` waits
for one full slot from every actor, updates on all streams, frees the slots and publishes
the parameters (:class:`SlotTransport`), until the step budget is spent, greedy evaluation
reaches the target, a signal arrives, or an actor fails. The maths is the synchronous
trainer's: the same learner (V-trace or PPO, ``run_builder.build_agent``), the same
:class:`~rtrl_rl.run.session.RunSession` for progress, TensorBoard, checkpoints, evaluation,
stopping and the summary.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from rtrl_rl.config import Config
from rtrl_rl.runtime.batches import Batcher, gather
from rtrl_rl.runtime.learn_loop import Delivery, transport_advance
from rtrl_rl.runtime.params import SharedParams
from rtrl_rl.runtime.slots import allocate_slots, slots_per_actor
from rtrl_rl.runtime.supervisor import Supervisor
from rtrl_rl.training.run_builder import build_run

#: seconds the learner waits for slots before it checks signals and actor liveness again
POLL_S = 0.2
#: seconds an actor may take to start (spawn, imports, building its environments) before
#: it counts as hung; generous, for slow environment start-ups
START_S = 600.0


def silence_limit_s(config: Config) -> float:
    """How long an actor the learner waits for may send nothing before it is killed as hung.

    Counted from the actor's last message once it is ready (its start gets ``START_S``).
    An actor's own env calls time out after ``runtime.step_timeout_s`` (it then reports
    the hang and exits); this limit catches what that cannot interrupt (an env stuck in C
    code that holds the GIL, a stuck model copy): one timeout per step of a segment, plus
    one for a reset. 0 (never) when the timeout is off.
    """
    return config.runtime.step_timeout_s * (config.train.segment_length + 1)


def train_with_actors(config: Config, resume_from: str | None = None) -> dict:
    """Train with ``runtime.actors`` actor processes and this process as the learner.

    Writes the same run directory as the synchronous trainer and returns its summary.
    A SIGINT or SIGTERM ends the run with a final checkpoint (``stopped`` starts with
    "interrupted"). Raises :class:`ActorFailure` (after a final checkpoint) when an actor
    crashes and ``runtime.restart_actors`` is off; any other exception also propagates
    after a final checkpoint and the summary (see ``RunSession.abort``).
    """
    run = build_run(config, resume_from)
    actors = config.runtime.actors
    pool = allocate_slots(
        run.observation_space, run.action_space, config.train.segment_length, config.env.num_envs, actors,
        slots_per_actor(config.runtime.slots, actors),
    )
    params = SharedParams(run.model)
    params.publish(run.model)
    batcher = Batcher(actors)
    supervisor = Supervisor(config, pool, params, batcher, log=run.session.monitor.verbatim, seed_salt=run.start.step)
    transport = SlotTransport(config, supervisor, batcher)
    return run.train(transport_advance(config, run.learner, transport), around=lambda: running(supervisor))


@contextmanager
def running(supervisor: Supervisor) -> Iterator[None]:
    """The actors for the duration of the loop, stopped before the final evaluation and checkpoint."""
    try:
        supervisor.start()
        yield
    finally:
        supervisor.stop()


class SlotTransport:
    """The process backend's :class:`~rtrl_rl.runtime.learn_loop.Transport`: full slots from
    the batcher, freed after the update; parameters through shared memory."""

    def __init__(self, config: Config, supervisor: Supervisor, batcher: Batcher) -> None:
        self.supervisor, self.batcher = supervisor, batcher
        self.pool, self.params = supervisor.pool, supervisor.params
        self.num_actors = supervisor.num_actors
        self.silence_s = silence_limit_s(config)

    @property
    def version(self) -> int:
        return self.params.version

    def streams(self, actor: int) -> torch.Tensor:
        return self.pool.streams[actor]

    def next(self) -> Delivery | None:
        self.supervisor.check()  # restarts dead actors (or raises ActorFailure)
        batch = self.batcher.next(timeout=POLL_S)
        if batch is None:
            if self.silence_s > 0:
                self.supervisor.kill_stuck(self.batcher.waiting_for(self.silence_s, START_S))
            return None
        infos = [(actor, self.pool.info(slot)) for actor, slot in zip(batch.actors, batch.slots)]
        segment, stream_ids = gather(self.pool, batch)
        parts = [(actor, i["generation"], i["seq"], i["version"]) for actor, i in infos]
        return Delivery(parts, segment, stream_ids, batch.episodes, handle=batch.slots)

    def done_with(self, delivery: Delivery, model) -> None:
        for slot in delivery.handle:
            self.supervisor.release(slot)
        self.params.publish(model)
