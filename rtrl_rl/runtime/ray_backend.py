"""``runtime.backend=ray``: the actor-learner runtime on Ray (see ``docs/distributed.md``).

The learner is the process runtime's: the same run (``run_builder.build_run``: model,
the V-trace or PPO learner, restored state, :class:`~rtrl_rl.run.session.RunSession` for
progress, TensorBoard, checkpoints, evaluation, summary), the same loop, order check and
policy-lag metric (``learn_loop.transport_advance``), the same segment layout. What
differs is transport and scheduling: actors are Ray actors (:mod:`rtrl_rl.runtime.ray_actor`)
fed by a :class:`~rtrl_rl.runtime.ray_fleet.RayFleet`, parameters go through the object
store once per version, and segments come back as object references to numpy arrays.

Where Ray runs: ``runtime.ray_address`` empty starts a local Ray instance for the run
and shuts it down at the end; ``auto`` or ``host:port`` joins a running cluster (and
only disconnects at the end). A process that already called ``ray.init`` keeps its
instance. The learner runs in this process, or in a Ray actor placed by
``runtime.ray_learner_resources`` (e.g. ``{num_gpus: 1}`` for a GPU node).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

import rtrl_rl
from rtrl_rl.config import Config, ConfigError, check
from rtrl_rl.envs.values import NonFiniteValue
from rtrl_rl.run.stopping import StopSignals
from rtrl_rl.runtime import ActorFailure
from rtrl_rl.runtime.learn_loop import Delivery, transport_advance
from rtrl_rl.runtime.local_backend import POLL_S, START_S, silence_limit_s
from rtrl_rl.runtime.ray_fleet import RayFleet, ray_options
from rtrl_rl.runtime.ray_reaper import child_pids, start_reaper
from rtrl_rl.training.run_builder import build_run

EXTRA = 'runtime.backend=ray needs Ray: pip install "rtrl-rl[ray]"'


def require_ray():
    """The ``ray`` module, or ImportError naming the pip extra."""
    try:
        import ray
    except ImportError as err:
        raise ImportError(EXTRA) from err
    return ray


def init_options(config: Config) -> dict:
    """``ray.init`` keyword arguments for this run (also used by tests that start Ray themselves).

    Workers import rtrl_rl from the same place as this process (an editable checkout or
    a git worktree, too). A local instance offers at least the CPUs the run asks for,
    since Ray's CPU counts are scheduling units, not cores.
    """
    root = str(Path(rtrl_rl.__file__).resolve().parent.parent)
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    options = {"include_dashboard": False, "logging_level": "WARNING",
               "runtime_env": {"env_vars": {"PYTHONPATH": path}}}
    if config.runtime.ray_address:
        return {**options, "address": config.runtime.ray_address}
    per_actor = ray_options(config.runtime.ray_actor_resources).get("num_cpus", 1)
    learner = ray_options(learner_resources(config)).get("num_cpus", 0)
    needed = int(np.ceil(per_actor * config.runtime.actors + learner))
    # address="local": a new instance even when another one runs on this machine
    return {**options, "address": "local", "num_cpus": max(os.cpu_count() or 1, needed)}


@contextmanager
def ray_instance(config: Config):
    """Ray for the duration: started (then shut down), joined (then left) or already there.

    A local instance starts with SIGINT blocked, so its processes (which share this
    process group) ignore a Ctrl-C; the learner stops the actors itself and
    ``ray.shutdown`` ends the instance. A watchdog (:mod:`rtrl_rl.runtime.ray_reaper`)
    ends whatever of a local instance is left once this process ends, also when it is
    killed: Ray's node agents would outlive it by up to a minute.
    """
    ray = require_ray()
    if ray.is_initialized():
        yield ray
        return
    local = not config.runtime.ray_address
    before = child_pids() if local else set()
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    reaper = None
    try:
        ray.init(**init_options(config))
        reaper = start_reaper(child_pids() - before) if local else None
    except BaseException:
        _end(ray, reaper)
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
        raise
    try:
        # A Ctrl-C during start-up is delivered here, so Ray is still shut down.
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
        if local:
            check_fits(ray, config)
        yield ray
    finally:
        _end(ray, reaper)


def _end(ray, reaper) -> None:
    """Shut Ray down (if it started), then let the watchdog end what is left of the instance."""
    if ray.is_initialized():
        ray.shutdown()
    if reaper is not None:
        reaper.stop()


def check_fits(ray, config: Config) -> None:
    """Raise ConfigError when a local instance lacks the GPUs or custom resources asked for
    (Ray would wait for them for ever; a cluster may still add nodes, so it is not checked).
    Like a CUDA device the machine lacks (``run_builder.resolve_device``), a fact of this machine."""
    have = ray.cluster_resources()
    wanted: dict[str, float] = {}
    for resources, count in ((config.runtime.ray_actor_resources, config.runtime.actors),
                             (learner_resources(config), 1)):
        options = ray_options(resources)
        for name, amount in [("GPU", options.get("num_gpus", 0)), *options.get("resources", {}).items()]:
            wanted[name] = wanted.get(name, 0) + amount * count
    missing = {name: amount for name, amount in wanted.items() if amount > have.get(name, 0)}
    if missing:
        raise ConfigError(f"the local Ray instance has {have} but the run asks for {missing} "
                         "(runtime.ray_actor_resources, runtime.ray_learner_resources, train.device); "
                         "join a cluster with runtime.ray_address or lower the requests")


def train_with_ray(config: Config, resume_from: str | None = None) -> dict:
    """Train with ``runtime.actors`` Ray actors; the same contract as ``train_with_actors``.

    Returns the run summary; a SIGINT or SIGTERM ends the run with a final checkpoint
    (``stopped`` starts with "interrupted"); raises :class:`ActorFailure` (after a final
    checkpoint) when an actor fails and ``runtime.restart_actors`` is off. Raises
    ImportError naming the extra when Ray is missing, ConfigError when a local instance
    lacks the resources asked for (the settings themselves are checked by the config).
    """
    check(config)  # the config's rules before Ray starts (build_run applies them again, cheaply)
    require_ray()
    placement = learner_resources(config)
    with ray_instance(config):
        if placement:
            with StopSignals() as signals:  # this process only forwards them to the learner actor
                return _train_in_learner_actor(config, resume_from, signals, placement)
        return run_learner(config, resume_from)


def learner_resources(config: Config) -> dict:
    """Resources of the learner actor; empty: the learner runs in this process.

    ``runtime.ray_learner_resources`` when set; else ``{num_gpus: 1}`` when
    ``train.device`` asks for CUDA that this process does not have.
    """
    if config.runtime.ray_learner_resources:
        return dict(config.runtime.ray_learner_resources)
    if config.train.device.startswith("cuda") and not torch.cuda.is_available():
        return {"num_gpus": 1}
    return {}


def run_learner(config: Config, resume_from: str | None, signals: StopSignals | None = None) -> dict:
    """The learner: build, start the actors, learn until budget/target/stop, finish.

    Stops the way every trainer does (:class:`rtrl_rl.run.session.RunSession`): ``signals``
    replaces the session's own where a :class:`LearnerHost` records the driver's stop
    request in it (a learner actor's thread installs no signal handlers).
    """
    run = build_run(config, resume_from)
    if signals is not None:
        run.session.signals = signals
    fleet = RayFleet(config, log=run.session.monitor.verbatim, seed_salt=run.start.step)
    return run.train(transport_advance(config, run.learner, FleetTransport(config, fleet)),
                     around=lambda: fleet_running(fleet, run.model))


@contextmanager
def fleet_running(fleet: RayFleet, model: torch.nn.Module) -> Iterator[None]:
    """The fleet for the duration of the loop: ``model``'s parameters published, the actors
    started, and stopped before the final evaluation and checkpoint."""
    try:
        fleet.publish(model)
        fleet.start()
        yield
    finally:
        fleet.stop()


def join_segments(parts: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    """Actors' segments (numpy, (T(+1), B_a, ...)) joined along the stream dimension as tensors.

    The join copies out of the object store, so the learner owns writable tensors.
    """
    return {key: torch.from_numpy(np.concatenate([part[key] for part in parts], axis=1)) for key in parts[0]}


def _stall_limit_s(config: Config) -> float:
    """Seconds an actor may deliver nothing before the fleet kills it as hung: the local
    runtime's silence limit, but never under its start-up allowance (a Ray actor's start
    is not told apart from its later silence); infinite when the step timeout is off."""
    silence = silence_limit_s(config)
    return max(START_S, silence) if silence > 0 else float("inf")


class FleetTransport:
    """The Ray backend's :class:`~rtrl_rl.runtime.learn_loop.Transport`: segments as object
    refs from the fleet, parameters through the object store (one put per version)."""

    def __init__(self, config: Config, fleet: RayFleet) -> None:
        self.fleet, self.num_actors = fleet, fleet.num_actors
        self.stall_s = _stall_limit_s(config)

    @property
    def version(self) -> int:
        return self.fleet.version

    def streams(self, actor: int) -> torch.Tensor:
        return self.fleet.streams[actor]

    def next(self) -> Delivery | None:
        batch = self.fleet.next_batch(POLL_S, self.stall_s)  # restarts failed actors (or raises ActorFailure)
        if batch is None:
            return None
        parts = [(actor, r["generation"], r["seq"], r["version"]) for actor, r, _ in batch]
        stream_ids = torch.cat([self.fleet.streams[actor] for actor, _, _ in batch])
        episodes = [ep for _, record, _ in batch for ep in record["episodes"]]
        return Delivery(parts, join_segments([part for _, _, part in batch]), stream_ids, episodes)

    def done_with(self, delivery: Delivery, model) -> None:
        self.fleet.publish(model)
        self.fleet.top_up()


class LearnerHost:
    """A Ray actor that runs :func:`run_learner` (on the node its resources place it on).

    Two threads: :meth:`run` learns, :meth:`stop` records a stop request the loop reads.
    """

    def __init__(self) -> None:
        self.signals = StopSignals()  # entered in this actor's thread: it only records

    def run(self, config: Config, resume_from: str | None) -> dict:
        """Train; the summary, or the ActorFailure of the run."""
        return run_learner(config, resume_from, self.signals)

    def stop(self, reason: str) -> None:
        """End the run after the current update (with a final checkpoint)."""
        self.signals.received = self.signals.received or reason


def _train_in_learner_actor(config: Config, resume_from: str | None, signals: StopSignals, placement: dict) -> dict:
    """Run the learner in a :class:`LearnerHost` placed by ``placement`` (Ray resources);
    forward this process's SIGINT/SIGTERM to it."""
    ray = require_ray()
    options = ray_options(placement)
    host = ray.remote(LearnerHost).options(max_concurrency=2, max_restarts=0, **options).remote()
    result = host.run.remote(config, resume_from)
    forwarded = False
    try:
        while not ray.wait([result], timeout=POLL_S)[0]:
            if signals.received and not forwarded:
                host.stop.remote(signals.received)
                forwarded = True
        return ray.get(result)
    except ray.exceptions.RayTaskError as err:
        if isinstance(err.cause, (ActorFailure, NonFiniteValue)):
            raise err.cause from None
        raise
    finally:
        ray.kill(host, no_restart=True)
