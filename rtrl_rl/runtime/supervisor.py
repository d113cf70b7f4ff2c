"""Actor processes: start, watch, restart and stop them; route free slots back to them.

The learner owns one :class:`Supervisor`. It starts actors with the ``spawn`` method (a
fresh interpreter: no torch threads or locks inherited through ``fork``), each with a
new one-way pipe whose read end goes to the :class:`~rtrl_rl.runtime.batches.Batcher`.
Between updates it checks whether any actor has died, and either raises
:class:`ActorFailure` with the actor's traceback or, with ``restart_actors``, starts a
replacement that owns the same streams and slots. An actor stopped by a bad value from its
environment (:class:`~rtrl_rl.envs.values.NonFiniteValue`) is never restarted: that error
itself is raised. :meth:`stop` always leaves no actor
process behind: it asks politely (stop flag), then terminates, then kills.
"""

from __future__ import annotations

import os
import signal
import time
from collections import deque
from typing import Callable

import torch.multiprocessing as mp

from rtrl_rl.config import Config
from rtrl_rl.runtime import ActorFailure
from rtrl_rl.runtime.actor import ActorSpec, Channels, StopFlag, actor_main
from rtrl_rl.runtime.batches import Batcher
from rtrl_rl.runtime.params import SharedParams
from rtrl_rl.runtime.slots import FREE, SlotPool

#: restarting stops (the run fails) after this many restarts of one actor within the window
MAX_RESTARTS, RESTART_WINDOW_S = 5, 300.0
#: how long :meth:`Supervisor.stop` waits for actors to exit by themselves, then after terminate
STOP_GRACE_S, TERMINATE_GRACE_S = 5.0, 2.0


def describe_exit(code: int | None) -> str:
    """``exit code 1`` or ``killed by SIGKILL`` for a process exit code."""
    if code is not None and code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


class Supervisor:
    """Starts one actor process per stream group of ``pool`` and keeps them running.

    Their messages reach ``batcher`` (one pipe per actor incarnation).
    ``log(text)`` prints a line to the run's terminal (the learner's monitor).
    ``seed_salt`` enters every actor's seed (the start step: a resumed run sees new episodes).
    """

    def __init__(self, config: Config, pool: SlotPool, params: SharedParams, batcher: Batcher,
                 log: Callable[[str], None] = print, seed_salt: int = 0) -> None:
        self.config, self.pool, self.params, self.batcher, self.log = config, pool, params, batcher, log
        self.seed_salt = seed_salt
        self.ctx = mp.get_context("spawn")
        self.stop_flag = StopFlag()
        actors = len(pool.streams)
        self.free = [self.ctx.Queue() for _ in range(actors)]
        self.procs: list = [None] * actors
        self.generation = [0] * actors
        self.restarts = [deque() for _ in range(actors)]
        self.stopped = False

    @property
    def num_actors(self) -> int:
        """Number of actors (live or not)."""
        return len(self.procs)

    def start(self) -> None:
        """Hand every slot to its owner's free queue and start all actors."""
        for slot in range(self.pool.num_slots):
            self.release(slot)
        for actor in range(self.num_actors):
            self._spawn(actor)

    def _spawn(self, actor: int) -> None:
        spec = ActorSpec(self.config, actor, self.generation[actor], os.getpid(), self.seed_salt)
        reader, writer = self.ctx.Pipe(duplex=False)
        channels = Channels(self.pool, self.params, self.free[actor], writer, self.stop_flag)
        # Not daemonic: an actor's environment may start worker processes of its own.
        # Actors end through stop(), or by themselves when this process is gone.
        proc = self.ctx.Process(target=actor_main, args=(spec, channels), name=f"rtrl-actor-{actor}")
        # Block SIGINT while forking so the child starts with it blocked: a Ctrl-C during
        # its start-up then cannot kill it with a KeyboardInterrupt; it ignores SIGINT and
        # unblocks. The parent gets a pending SIGINT as soon as the mask is restored.
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            proc.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
            writer.close()  # the child has its own copy; ours would keep end-of-file away
        self.procs[actor] = proc
        self.batcher.attach(actor, reader)

    def release(self, slot: int) -> None:
        """Give ``slot`` back to the actor that owns it (after the learner used it)."""
        self.pool.mark(slot, FREE)
        self.free[self.pool.owner[slot]].put(slot)

    def kill_stuck(self, actors: list[int]) -> None:
        """Kill ``actors`` (the learner found them silent for too long); :meth:`check`
        then handles them like any dead actor (restart or failure), so a hung
        environment cannot hang the run."""
        for actor in actors:
            silent_s = time.monotonic() - self.batcher.last_seen[actor]
            self.log(f"actor {actor} sent nothing for {silent_s:.0f} s (runtime.step_timeout_s); killing it")
            self.procs[actor].kill()
            self.procs[actor].join(timeout=TERMINATE_GRACE_S)

    def check(self) -> None:
        """Look for dead actors; restart them or raise ActorFailure.

        A dead actor's traceback is logged in either case; a replacement's pipe is attached
        to the batcher, which resets its silence clock.
        """
        for actor, proc in enumerate(self.procs):
            if proc is None or proc.is_alive():
                continue
            report = self.batcher.report(actor)
            what = f"actor {actor} (generation {self.generation[actor]}) died: {describe_exit(proc.exitcode)}"
            if (fatal := self.batcher.fatal.pop(actor, None)) is not None:
                self.log(f"{what}: {fatal}")
                raise fatal  # the environment's own fault: a restarted actor would meet it again
            self.log(f"{what}\n{report}".rstrip())
            if not self._may_restart(actor):
                raise ActorFailure(f"{what}\n{report}".rstrip())
            self._restart(actor)

    def _may_restart(self, actor: int) -> bool:
        if not self.config.runtime.restart_actors:
            return False
        now, history = time.monotonic(), self.restarts[actor]
        while history and now - history[0] > RESTART_WINDOW_S:
            history.popleft()
        if len(history) >= MAX_RESTARTS:
            self.log(f"actor {actor} crashed {len(history) + 1} times in {RESTART_WINDOW_S:.0f} s; giving up")
            return False
        history.append(now)
        return True

    def _restart(self, actor: int) -> None:
        """Replace a dead actor: new generation, fresh free queue holding its idle slots."""
        self.procs[actor].join(timeout=0)
        self.generation[actor] += 1
        # The old queue may hold slots the dead actor never took, and a slot it marked full
        # may never have been sent: give the replacement every slot the learner does not hold.
        old, self.free[actor] = self.free[actor], self.ctx.Queue()
        old.cancel_join_thread()
        old.close()
        for slot in self.pool.recoverable(actor, self.batcher.pending_slots(actor)):
            self.release(slot)
        self._spawn(actor)
        self.log(f"restarted actor {actor} (generation {self.generation[actor]}); its streams start new episodes")

    def stop(self) -> None:
        """Stop every actor and release the queues; never leaves a process behind. Idempotent."""
        if self.stopped:
            return
        self.stopped = True
        self.stop_flag.set()
        self.batcher.close()  # an actor blocked on a full pipe gets a broken pipe and exits
        deadline = time.monotonic() + STOP_GRACE_S
        for proc in self.procs:
            if proc is not None:
                proc.join(timeout=max(0.0, deadline - time.monotonic()))
        for proc in self.procs:
            if proc is not None and proc.is_alive():
                proc.terminate()
                proc.join(timeout=TERMINATE_GRACE_S)
            if proc is not None and proc.is_alive():
                proc.kill()
                proc.join()
        for q in self.free:
            q.cancel_join_thread()  # never block this process's exit on undelivered items
            q.close()
