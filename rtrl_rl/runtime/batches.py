"""From full slots to learner batches, keeping every stream's segments in order.

The learner holds one RTRL carry per stream, so it must see each stream's segments in
the order they were collected, without gaps. Each actor owns fixed streams and sends its
slots over one FIFO queue in collection order; :class:`Batcher` keeps a FIFO per actor
and forms a batch from the *oldest* pending slot of every actor, so a batch has one
segment per stream (all streams, as in the synchronous trainer) and no stream ever gets
a later segment before an earlier one. :class:`OrderCheck` verifies this on every batch
from the sequence numbers the actors write into the slots, and resets the carry of an
actor's streams when a restarted actor starts a new generation of episodes.
"""

from __future__ import annotations

import queue
import time
from collections import deque
from dataclasses import dataclass

import torch

from rtrl_rl.rollout import Segment
from rtrl_rl.runtime.slots import LEARNING, SlotPool


@dataclass
class Batch:
    """One update's worth of slots: ``actors[i]`` wrote ``slots[i]``; their finished episodes."""

    actors: list[int]
    slots: list[int]
    episodes: list


class Batcher:
    """Reads ``(actor, slot, episodes)`` messages and yields one slot per actor per batch."""

    def __init__(self, full_queue, num_actors: int) -> None:
        self.queue = full_queue
        self.pending: list[deque] = [deque() for _ in range(num_actors)]
        self.last_seen = [time.monotonic()] * num_actors

    def waiting_for(self, seconds: float) -> list[int]:
        """Actors the next batch waits for that have sent nothing for ``seconds`` (stuck?)."""
        now = time.monotonic()
        return [a for a, fifo in enumerate(self.pending) if not fifo and now - self.last_seen[a] > seconds]

    def restarted(self, actor: int) -> None:
        """Start the silence clock of a replaced actor afresh."""
        self.last_seen[actor] = time.monotonic()

    def next(self, timeout: float) -> Batch | None:
        """The next batch, or None if it is not complete within ``timeout`` seconds.

        Messages read meanwhile stay pending, so a later call picks up where this one
        stopped; the caller checks actor liveness and signals between calls.
        """
        deadline = time.monotonic() + timeout
        while not all(self.pending):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                actor, slot, episodes = self.queue.get(timeout=remaining)
            except queue.Empty:
                return None
            self.pending[actor].append((slot, episodes))
            self.last_seen[actor] = time.monotonic()
        heads = [fifo.popleft() for fifo in self.pending]
        return Batch(
            actors=list(range(len(heads))),
            slots=[slot for slot, _ in heads],
            episodes=[ep for _, episodes in heads for ep in episodes],
        )


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
