"""The Ray backend's actors and the segments in flight: start, feed, watch, restart, stop.

:class:`RayFleet` plays the part that :class:`~rtrl_rl.runtime.supervisor.Supervisor`,
the slots and the :class:`~rtrl_rl.runtime.batches.Batcher` play in the process
runtime. Each actor has up to ``depth`` ``collect`` calls in flight (the slots it would
own locally: it acts ahead while the learner learns). Their result references wait in a
FIFO per actor, in submission order, which is the order the actor runs them in; a batch
takes the oldest reference of every actor, so no stream ever gets a later segment before
an earlier one.

Faults. A call that raised, or whose actor process died (killed, node lost), ends that
actor's generation. Without ``runtime.restart_actors`` the run fails with
:class:`~rtrl_rl.runtime.ActorFailure` and the actor's error. With it, a dead process is
restarted by Ray (``max_restarts``), an actor whose environment raised keeps its process,
and either way the next calls carry the next generation: fresh environments with a new
seed, segment numbers from 0, and the learner resets those streams' carries. The
references still queued for the old generation are dropped. More than ``MAX_RESTARTS``
within ``RESTART_WINDOW_S`` (supervisor) fail the run, as in the process runtime. A bad
value from an environment (:class:`~rtrl_rl.envs.values.NonFiniteValue`) is never
restarted: the fleet raises it and the run stops.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Callable

import torch

from rtrl_rl.config import Config
from rtrl_rl.envs.values import NonFiniteValue
from rtrl_rl.runtime import ActorFailure
from rtrl_rl.runtime.ray_actor import StreamGroup
from rtrl_rl.runtime.slots import slots_per_actor
from rtrl_rl.runtime.supervisor import STOP_GRACE_S, Supervisor

#: seconds to wait before calling an actor again that Ray reports as restarting
RESTARTING_WAIT_S = 0.5
#: Ray ``.options`` keys that a resources mapping may hold; any other key is a custom resource
RAY_OPTIONS = ("num_cpus", "num_gpus", "memory", "resources", "accelerator_type")


def ray_options(resources: dict) -> dict:
    """Ray ``.options(...)`` for a resources mapping of the config (checked there).

    ``{num_cpus: 1, num_gpus: 0.5, gpu_node: 1}`` becomes ``num_cpus=1, num_gpus=0.5,
    resources={"gpu_node": 1}``: known option names pass through, other names are custom
    resources (``ray start --resources``).
    """
    options: dict = {}
    custom: dict = {}
    for name, amount in resources.items():
        if name == "resources":
            custom.update(amount)
        elif name == "accelerator_type":
            options[name] = str(amount)
        else:
            (options if name in RAY_OPTIONS else custom)[name] = amount
    if custom:
        options["resources"] = custom
    return options


class RayFleet:
    """``runtime.actors`` Ray actors, each owning ``B = env.num_envs / actors`` streams.

    ``log(text)`` prints a line to the run's terminal. ``seed_salt`` enters every actor's
    seed (the start step). Call :meth:`publish` before :meth:`start`.
    """

    def __init__(self, config: Config, log: Callable[[str], None] = print, seed_salt: int = 0) -> None:
        import ray

        self.ray, self.config, self.log = ray, config, log
        actors = config.runtime.actors
        per_actor = config.env.num_envs // actors
        self.streams = [torch.arange(a * per_actor, (a + 1) * per_actor) for a in range(actors)]
        self.depth = slots_per_actor(config.runtime.slots, actors)
        restart = config.runtime.restart_actors
        # Ray restarts a dead process as often as asked; RESTART_WINDOW_S below sets the limit.
        remote = ray.remote(StreamGroup).options(
            max_restarts=-1 if restart else 0, max_task_retries=0,
            **ray_options(config.runtime.ray_actor_resources),
        )
        self.handles = [remote.remote(config, a, seed_salt) for a in range(actors)]
        self.generation = [0] * actors
        self.pending: list[deque] = [deque() for _ in range(actors)]
        self.restarts: list[deque] = [deque() for _ in range(actors)]
        self.last_seen = [time.monotonic()] * actors
        self.hold = [0.0] * actors  # no calls to an actor before this time (it is restarting)
        self.version, self.params_ref = 0, None
        self.stopped = False

    @property
    def num_actors(self) -> int:
        """Number of actors."""
        return len(self.handles)

    def publish(self, model: torch.nn.Module) -> int:
        """Put ``model``'s state dict (numpy, CPU) into the object store once; returns the new version.

        Calls submitted from now on carry a reference to it; every actor fetches it at
        most once (zero-copy on the learner's node, one transfer per other node).
        """
        state = {key: value.detach().to("cpu").numpy() for key, value in model.state_dict().items()}
        self.params_ref = self.ray.put(state)
        self.version += 1
        return self.version

    def start(self) -> None:
        """Fill every actor's pipeline of ``collect`` calls."""
        self.top_up()

    def top_up(self) -> None:
        """Submit ``collect`` calls until every actor has ``depth`` in flight (restarting ones wait)."""
        now = time.monotonic()
        for actor, fifo in enumerate(self.pending):
            while len(fifo) < self.depth and now >= self.hold[actor]:
                ref = self.handles[actor].collect.remote(self.generation[actor], self.version, [self.params_ref])
                fifo.append(ref)

    def next_batch(self, timeout: float, stall_s: float) -> list[tuple[int, dict, dict]] | None:
        """The oldest segment of every actor as (actor, record, segment), or None after ``timeout``.

        Handles a failed actor on the way (restart, or :class:`ActorFailure`), and kills
        an actor that has delivered nothing for ``stall_s`` seconds while the batch
        waits for it (Ray then restarts it or the run fails, as for any dead actor).
        """
        ray = self.ray
        self.top_up()
        heads = [fifo[0] if fifo else None for fifo in self.pending]
        refs = [ref for ref in heads if ref is not None]
        if not refs:  # every actor is restarting
            time.sleep(timeout)
            return None
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout, fetch_local=True)
        done = set(ready)
        results = {}
        for actor, ref in enumerate(heads):
            if ref is None or ref not in done:
                continue
            try:
                results[actor] = ray.get(ref)
            except getattr(ray.exceptions, "ActorUnavailableError", ()):  # older Ray: a RayActorError
                self._restarting(actor)
            except (ray.exceptions.RayActorError, ray.exceptions.RayTaskError) as err:
                self._fault(actor, err)
        if len(results) < len(heads):
            self._kill_stuck([a for a in range(len(heads)) if a not in results], stall_s)
            if len(done) == len(refs):  # nothing left to wait for: an actor is restarting
                time.sleep(timeout)
            return None
        now = time.monotonic()
        batch = []
        for actor, (record, segment) in results.items():
            self.pending[actor].popleft()
            self.last_seen[actor] = now
            batch.append((actor, record, segment))
        return batch

    def _kill_stuck(self, actors: list[int], stall_s: float) -> None:
        now = time.monotonic()
        for actor in actors:
            if now - self.last_seen[actor] > stall_s:
                self.log(f"actor {actor} sent no segment for {stall_s:.0f} s; killing it")
                self.ray.kill(self.handles[actor], no_restart=not self.config.runtime.restart_actors)
                self.last_seen[actor] = now

    def _fault(self, actor: int, err: Exception) -> None:
        """Actor ``actor``'s oldest call failed: log it, then restart it or raise ActorFailure."""
        ray = self.ray
        died = isinstance(err, ray.exceptions.RayActorError)
        what = f"actor {actor} (generation {self.generation[actor]}) " + ("died" if died else "raised")
        if isinstance(cause := getattr(err, "cause", None), NonFiniteValue):
            self.log(f"{what}: {cause}")
            raise cause from None  # the environment's own fault: a restarted actor would meet it again
        self.log(f"{what}:\n{err}".rstrip())
        if not self._may_restart(actor):
            raise ActorFailure(f"{what}: {err}".rstrip())
        # Ray restarts a dead process by itself (max_restarts); a live one just starts over.
        self._drop(actor)
        self.last_seen[actor] = time.monotonic()
        self.top_up()
        self.log(f"restarted actor {actor} (generation {self.generation[actor]}); its streams start new episodes")

    def _restarting(self, actor: int) -> None:
        """Ray is still restarting the actor's process: resubmit after a pause, as a new
        generation (whether the failed calls ran is unknown, so its streams start afresh)."""
        self._drop(actor)
        self.hold[actor] = time.monotonic() + RESTARTING_WAIT_S
        self.last_seen[actor] = time.monotonic()

    def _drop(self, actor: int) -> None:
        """Start a new generation of ``actor``: cancel and forget its calls in flight."""
        self.generation[actor] += 1
        for ref in self.pending[actor]:
            self.ray.cancel(ref)
        self.pending[actor].clear()

    # The process runtime's restart policy (reads config, restarts and log): at most
    # MAX_RESTARTS per actor within RESTART_WINDOW_S, and only with runtime.restart_actors.
    _may_restart = Supervisor._may_restart

    def pids(self, timeout: float = 30.0) -> list[int]:
        """Process ids of the actors (after the calls in flight; for tests)."""
        return self.ray.get([handle.pid.remote() for handle in self.handles], timeout=timeout)

    def stop(self) -> None:
        """Cancel what is queued, let actors close their environments, then kill them. Idempotent."""
        if self.stopped:
            return
        self.stopped = True
        ray = self.ray
        for fifo in self.pending:
            for ref in fifo:
                ray.cancel(ref)  # queued calls never start; one already running finishes
            fifo.clear()
        closing = [handle.close.remote() for handle in self.handles]
        ray.wait(closing, num_returns=len(closing), timeout=STOP_GRACE_S)
        for handle in self.handles:
            ray.kill(handle, no_restart=True)
