"""From full slots to learner batches, keeping every stream's segments in order.

The learner holds one RTRL carry per stream, so it must see each stream's segments in
the order they were collected, without gaps. Each actor owns fixed streams and reports
its full slots, in collection order, over its *own* one-way pipe; :class:`Batcher` keeps
a FIFO per actor and forms a batch from the *oldest* pending slot of every actor, so a
batch has one segment per stream (all streams, as in the synchronous trainer) and no
stream ever gets a later segment before an earlier one. :class:`OrderCheck` verifies this
on every batch from the sequence numbers the actors write into the slots, and resets the
carry of an actor's streams when a restarted actor starts a new generation of episodes.

Why a pipe per actor and not one shared ``multiprocessing.Queue``: a queue's writers
share a lock and hand messages to a background feeder thread. An actor that exits (or is
killed) while its feeder holds that lock wedges the queue for every other actor, and one
that exits before its feeder ran loses the message. A pipe per actor has one writer, no
lock and no thread: ``send`` returns when the message is in the pipe.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait

import torch

from rtrl_rl.runtime.slots import LEARNING, SlotPool
from rtrl_rl.training.rollout import Segment

#: messages an actor sends: ("ready",) once it has built its environments and model,
#: then ("segment", slot, episodes) per segment, or ("error", report, fatal): the report of
#: ``runtime.actor.failure_report`` (type, message, env, traceback), and fatal an exception
#: that must stop the run (no restart), or None
READY, SEGMENT, ERROR = "ready", "segment", "error"


@dataclass
class Batch:
    """One update's worth of slots: ``actors[i]`` wrote ``slots[i]``; their finished episodes."""

    actors: list[int]
    slots: list[int]
    episodes: list


class Batcher:
    """Reads every actor's pipe and yields one slot per actor per batch.

    :meth:`attach` gives it an actor's read end (again after a restart). Segment messages
    queue up per actor; an error message is kept for :meth:`report`; end of file (the
    actor exited) closes that actor's read end until a replacement is attached.
    """

    def __init__(self, num_actors: int) -> None:
        self.pending: list[deque] = [deque() for _ in range(num_actors)]
        self.readers: list[Connection | None] = [None] * num_actors
        self.reports: dict[int, dict] = {}
        self.fatal: dict[int, BaseException] = {}  # what an actor sent that stops the run (see ERROR)
        self.last_seen = [time.monotonic()] * num_actors
        self.ready = [False] * num_actors

    def attach(self, actor: int, reader: Connection) -> None:
        """Read ``actor``'s messages from ``reader`` from now on; its silence clock restarts.

        Segments still pending from an earlier incarnation stay pending, ahead of the new
        ones, so they are used first.
        """
        self._close(actor)
        self.readers[actor] = reader
        self.reports.pop(actor, None)
        self.fatal.pop(actor, None)
        self.last_seen[actor] = time.monotonic()
        self.ready[actor] = False

    def waiting_for(self, seconds: float, starting_s: float) -> list[int]:
        """Actors the next batch waits for that look stuck: silent for ``seconds`` since
        their last message, or for ``starting_s`` while they start (before ``ready``)."""
        now = time.monotonic()
        return [a for a, fifo in enumerate(self.pending)
                if not fifo and now - self.last_seen[a] > (seconds if self.ready[a] else starting_s)]

    def next(self, timeout: float) -> Batch | None:
        """The next batch, or None if it is not complete within ``timeout`` seconds.

        Messages read meanwhile stay pending, so a later call picks up where this one
        stopped; the caller checks actor liveness and signals between calls.
        """
        deadline = time.monotonic() + timeout
        while self._read_ready(0.0):  # drain what is there, so no actor's pipe fills up
            pass
        while not all(self.pending):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._read_ready(remaining):
                return None
        heads = [fifo.popleft() for fifo in self.pending]
        return Batch(
            actors=list(range(len(heads))),
            slots=[slot for slot, _ in heads],
            episodes=[ep for _, episodes in heads for ep in episodes],
        )

    def pending_slots(self, actor: int) -> set[int]:
        """The slots of ``actor`` that arrived and wait to be batched."""
        return {slot for slot, _ in self.pending[actor]}

    def report(self, actor: int) -> dict | None:
        """Read what a dead ``actor`` left in its pipe; its failure report (None if it sent none).

        Call it only once the process has exited: everything it sent is then in the pipe,
        so this never waits. Segments it sent before dying become pending as usual.
        """
        reader = self.readers[actor]
        while reader is not None and self.readers[actor] is reader and reader.poll(0):
            self._read(actor)
        self._close(actor)
        return self.reports.pop(actor, None)

    def close(self) -> None:
        """Close every read end (actors still writing then get a broken pipe and exit)."""
        for actor in range(len(self.readers)):
            self._close(actor)

    def _read_ready(self, timeout: float) -> bool:
        """Read one message from each pipe that has one within ``timeout``; False if none did."""
        open_readers = [r for r in self.readers if r is not None]
        if not open_readers:  # every actor is gone; the caller restarts them or fails
            time.sleep(timeout)
            return False
        ready = wait(open_readers, timeout)
        for reader in ready:
            self._read(self.readers.index(reader))
        return bool(ready)

    def _read(self, actor: int) -> None:
        try:
            message = self.readers[actor].recv()
        except (EOFError, OSError):  # the actor exited (a half-written message counts as lost)
            self._close(actor)
            return
        self.last_seen[actor] = time.monotonic()
        if message[0] == READY:
            self.ready[actor] = True
        elif message[0] == SEGMENT:
            self.pending[actor].append(message[1:])
        elif message[0] == ERROR:
            self.reports[actor] = message[1]
            if len(message) > 2 and message[2] is not None:
                self.fatal[actor] = message[2]

    def _close(self, actor: int) -> None:
        if self.readers[actor] is not None:
            self.readers[actor].close()
            self.readers[actor] = None


class OrderError(RuntimeError):
    """A stream's segments reached the learner out of order or with a gap (a bug)."""


class OrderCheck:
    """Checks per-actor segment numbers; reports actors whose new generation starts now.

    Within a generation the numbers must go 0, 1, 2, ... without gaps; a restarted actor
    (higher generation) starts again at 0 with fresh episodes in all of its streams.
    """

    def __init__(self, num_actors: int) -> None:
        self.last: list[tuple[int, int] | None] = [None] * num_actors

    def admit(self, actor: int, generation: int, seq: int) -> bool:
        """Accept the next segment of ``actor``; True when it starts a new generation."""
        last = self.last[actor]
        fresh = last is None or generation > last[0]
        expected = 0 if fresh else last[1] + 1
        if seq != expected or (last is not None and generation < last[0]):
            raise OrderError(
                f"actor {actor}: got segment {seq} of generation {generation} after {last} "
                f"(expected segment {expected}); per-stream order is broken"
            )
        self.last[actor] = (generation, seq)
        return fresh and last is not None


def gather(pool: SlotPool, batch: Batch) -> tuple[Segment, torch.Tensor]:
    """The batch's slots joined along the stream dimension, and their stream ids (B,).

    Marks the slots as being learned from; the caller releases them after the update.
    """
    for slot in batch.slots:
        pool.mark(slot, LEARNING)
    segments = [pool.segments[slot] for slot in batch.slots]
    stream_ids = torch.cat([pool.streams[actor] for actor in batch.actors])
    if len(segments) == 1:
        return dict(segments[0]), stream_ids
    joined = {key: torch.cat([seg[key] for seg in segments], dim=1) for key in segments[0]}
    return joined, stream_ids
