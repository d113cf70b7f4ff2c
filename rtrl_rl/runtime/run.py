"""The learner process of the actor-learner runtime: ``train_with_actors``.

Read it top to bottom: build the model and learner (on CUDA when available and
``runtime.device`` allows), the shared slots and parameters, start the actors; then
repeat (wait for one full slot from every actor, update on all streams, free the slots,
publish the parameters, report) until the step budget is spent, greedy evaluation
reaches the target, a signal arrives, or an actor fails. The maths is the synchronous
trainer's: the same :class:`rtrl_rl.agents.Learner`, the same :class:`~rtrl_rl.session.RunSession`
for progress, TensorBoard, checkpoints, evaluation and the summary.
"""

from __future__ import annotations

import copy
import signal

import torch

from rtrl_rl.agents import ActorCritic, Learner
from rtrl_rl.config import Config
from rtrl_rl.runtime.batches import Batcher, OrderCheck, gather
from rtrl_rl.runtime.params import SharedParams
from rtrl_rl.runtime.slots import allocate_slots, slots_per_actor
from rtrl_rl.runtime.supervisor import ActorFailure, Supervisor
from rtrl_rl.session import RunSession
from rtrl_rl.trainer import (
    TrainingInterrupted,
    evaluate_now,
    make_env,
    prepare_run,
    stop_on_signals,
)

#: seconds the learner waits for slots before it checks signals and actor liveness again
POLL_S = 0.2
#: an actor that sends no segment for this long while the learner waits for it counts as
#: hung and is killed (then restarted or the run fails); generous, for slow env start-ups
STALL_S = 600.0


class StopSignals:
    """While active, SIGINT and SIGTERM only record their name in :attr:`received`.

    The learner loop checks it between updates, so a signal never lands in the middle of
    slot bookkeeping or a parameter publication.
    """

    def __init__(self) -> None:
        self.received: str | None = None
        self._previous: dict = {}

    def _handler(self, signum, frame) -> None:
        self.received = signal.Signals(signum).name

    def __enter__(self) -> "StopSignals":
        self._previous = {s: signal.signal(s, self._handler) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._previous.items():
            signal.signal(sig, old)


def runtime_device(config: Config) -> torch.device:
    """The learner device: ``runtime.device`` (auto picks CUDA when available)."""
    name = config.runtime.device
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"runtime.device={config.runtime.device} but CUDA is not available; use auto or cpu")
    return torch.device(name)


def evaluate_on_cpu(config: Config, model, episodes: int) -> dict:
    """Greedy evaluation in this process with a CPU copy of ``model`` (it may live on CUDA)."""
    if model.device.type != "cpu":
        model = copy.deepcopy(model).to("cpu")
    return evaluate_now(config, model, episodes)


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
    crashes and ``runtime.restart_actors`` is off.
    """
    actors = config.runtime.actors
    prepare_run(config, resume_from)
    obs_space, act_space = _spaces(config)
    pool = allocate_slots(
        obs_space, act_space, config.train.segment_length, config.env.num_envs, actors,
        slots_per_actor(config.runtime.slots, actors),
    )
    model = ActorCritic(obs_space, act_space, config.agent).to(runtime_device(config))
    learner = Learner(model, config.train, num_streams=config.env.num_envs)
    resumed = _restore(resume_from, model, learner)
    session = RunSession(config, model, learner, start_step=resumed["step"], start_updates=resumed["update"],
                         start_time_s=resumed["wall_s"])
    params = SharedParams(model)
    params.publish(model)
    with StopSignals() as signals:
        # Tracebacks hold "[...]", which rich would read as markup: print them verbatim.
        log = lambda text: session.monitor.console.print(text, markup=False, highlight=False)  # noqa: E731
        batcher = Batcher(actors)
        supervisor = Supervisor(config, pool, params, batcher, log=log, seed_salt=resumed["step"])
        try:
            supervisor.start()
            reason = _learn(config, learner, session, supervisor, batcher, signals)
        except ActorFailure:
            supervisor.stop()
            _finish(session, "interrupted (actor failure)")
            raise
        finally:
            supervisor.stop()
    return _finish(session, reason)


def _finish(session: RunSession, reason: str) -> dict:
    """The session's final evaluation, checkpoint and summary; a signal during the final
    evaluation skips it and still writes the checkpoint and summary."""
    try:
        with stop_on_signals():
            return session.finish(reason, evaluate_on_cpu)
    except TrainingInterrupted as stop:
        return session.finish(f"interrupted ({stop})", evaluate_on_cpu)


def _learn(config: Config, learner: Learner, session: RunSession, supervisor: Supervisor, batcher: Batcher,
           signals: StopSignals) -> str:
    """The learner loop; returns why it stopped (budget, target or interrupted (SIGNAL))."""
    pool, params, monitor = supervisor.pool, supervisor.params, session.monitor
    order = OrderCheck(supervisor.num_actors)
    steps_per_batch = config.train.segment_length * config.env.num_envs
    next_eval = monitor.step + config.log.eval_interval_steps
    while monitor.step < config.train.total_steps:
        if signals.received:
            return f"interrupted ({signals.received})"
        supervisor.check()  # restarts dead actors (or raises ActorFailure)
        batch = batcher.next(timeout=POLL_S)
        if batch is None:
            supervisor.kill_stuck(batcher.waiting_for(STALL_S), STALL_S)
            continue
        lags = []
        for actor, slot in zip(batch.actors, batch.slots):
            info = pool.info(slot)
            if order.admit(actor, info["generation"], info["seq"]):
                learner.reset_carry(pool.streams[actor])  # a restarted actor's streams start afresh
            lags.append(params.version - info["version"])
        segment, stream_ids = gather(pool, batch)
        metrics = learner.update(segment, stream_ids)
        for slot in batch.slots:
            supervisor.release(slot)
        params.publish(learner.model)
        monitor.record_episodes(batch.episodes)
        monitor.record_update(steps_per_batch, {**metrics, "runtime/policy_lag": sum(lags) / len(lags)})
        session.maybe_checkpoint()
        if monitor.step >= next_eval:
            next_eval += config.log.eval_interval_steps
            try:
                with stop_on_signals():
                    if session.evaluate_and_check(evaluate_on_cpu):
                        return "target"
            except TrainingInterrupted as stop:
                return f"interrupted ({stop})"
    return "budget"
