"""The learner process of the actor-learner runtime: ``train_with_actors``.

Read it top to bottom: build the model and learner (on ``train.device``), the shared
slots and parameters, start the actors; then repeat (wait for one full slot from every
actor, update on all streams, free the slots, publish the parameters, report) until the
step budget is spent, greedy evaluation reaches the target, a signal arrives, or an
actor fails. The maths is the synchronous trainer's: the same model and learner
(``rtrl_rl.trainer.build_agent``: V-trace or PPO), the same
:class:`~rtrl_rl.session.RunSession` for progress, TensorBoard, checkpoints, evaluation,
stopping and the summary.
"""

from __future__ import annotations


import torch

from rtrl_rl.config import Config
from rtrl_rl.runtime.batches import Batcher, gather
from rtrl_rl.runtime.learn_loop import Delivery, learn
from rtrl_rl.runtime.params import SharedParams
from rtrl_rl.runtime.slots import allocate_slots, slots_per_actor
from rtrl_rl.runtime.supervisor import Supervisor
from rtrl_rl.session import RunSession
from rtrl_rl.trainer import build_agent, evaluate_on_cpu, make_env, prepare_run

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


def _spaces(config: Config):
    """Observation and action space of the run's environment (from a one-stream probe)."""
    with make_env(config, config.train.seed, num_envs=1) as venv:
        return venv.single_observation_space, venv.single_action_space


def _restore(resume_from: str | None, model, learner) -> dict:
    """Counters to start from: a fresh run's zeros, or the latest checkpoint of ``resume_from``.

    Carries are not restored: actors restart their environments, so every stream's
    first segment starts new episodes (``first = True``) and resets its carry.
    """
    if resume_from is None:
        return {"step": 0, "update": 0, "wall_s": 0.0}
    from rtrl_rl.resume import restore_run

    return restore_run(resume_from, model, learner)


def train_with_actors(config: Config, resume_from: str | None = None) -> dict:
    """Train with ``runtime.actors`` actor processes and this process as the learner.

    Writes the same run directory as the synchronous trainer and returns its summary.
    A SIGINT or SIGTERM ends the run with a final checkpoint (``stopped`` starts with
    "interrupted"). Raises :class:`ActorFailure` (after a final checkpoint) when an actor
    crashes and ``runtime.restart_actors`` is off; any other exception also propagates
    after a final checkpoint and the summary (see ``RunSession.abort``).
    """
    actors = config.runtime.actors
    device = prepare_run(config, resume_from)
    obs_space, act_space = _spaces(config)
    pool = allocate_slots(
        obs_space, act_space, config.train.segment_length, config.env.num_envs, actors,
        slots_per_actor(config.runtime.slots, actors),
    )
    model, learner = build_agent(config, obs_space, act_space, device)
    resumed = _restore(resume_from, model, learner)
    session = RunSession(config, model, learner, start_step=resumed["step"], start_updates=resumed["update"],
                         start_time_s=resumed["wall_s"])
    params = SharedParams(model)
    params.publish(model)
    # Tracebacks hold "[...]", which rich would read as markup: print them verbatim.
    log = lambda text: session.monitor.console.print(text, markup=False, highlight=False)  # noqa: E731
    batcher = Batcher(actors)
    supervisor = Supervisor(config, pool, params, batcher, log=log, seed_salt=resumed["step"])

    def loop() -> str:
        try:
            supervisor.start()
            return learn(config, learner, session, SlotTransport(config, supervisor, batcher))
        finally:
            supervisor.stop()  # before the final evaluation and checkpoint

    return session.run(loop, evaluate_on_cpu)


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
