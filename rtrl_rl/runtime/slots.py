"""Preallocated shared-memory rollout slots; only their indices travel between processes.

A slot is one rollout segment (``rtrl_rl.training.rollout`` layout) for the streams of one actor,
allocated once in shared memory before the actors start; only slot *indices* travel
(TorchBeast's pattern). Each actor owns a fixed set of slots, gets free ones from its own
free queue and reports full ones down its own pipe to the learner. Owning slots per actor keeps
recovery simple: after a crash the supervisor rebuilds that actor's free queue from the
slot states, without guessing what a dead process had taken.

Per slot, a small shared ``meta`` row records the writer and the order of segments:
``actor``, ``generation`` (restart count of that actor), ``seq`` (segment number within
the generation), ``version`` (parameter version the actor acted with) and ``state``.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import torch

from rtrl_rl.training.rollout import Segment, allocate_segment

# Slot states: where the slot is in its cycle (free -> acting -> full -> learning -> free).
FREE, ACTING, FULL, LEARNING = 0, 1, 2, 3
META_FIELDS = ("actor", "generation", "seq", "version", "state")
ACTOR, GENERATION, SEQ, VERSION, STATE = range(len(META_FIELDS))


@dataclass
class SlotPool:
    """``segments[i]`` is slot i (shared tensors, B streams of one actor); ``meta`` (N, 5) int64.

    ``owner[i]`` is the actor that writes slot i; ``streams[a]`` the stream ids (B,) of
    actor a, in the order of its vectorised env. The pool pickles into child processes
    as shared-memory handles, never as copies.
    """

    segments: list[Segment]
    meta: torch.Tensor
    owner: list[int]
    streams: list[torch.Tensor]

    @property
    def num_slots(self) -> int:
        """Total number of slots."""
        return len(self.segments)

    def slots_of(self, actor: int) -> list[int]:
        """The slot indices owned by ``actor``."""
        return [i for i, a in enumerate(self.owner) if a == actor]

    def mark(self, slot: int, state: int, **fields: int) -> None:
        """Set the slot's state and any other ``META_FIELDS`` given by name."""
        for name, value in fields.items():
            self.meta[slot, META_FIELDS.index(name)] = int(value)
        self.meta[slot, STATE] = state

    def info(self, slot: int) -> dict[str, int]:
        """The slot's meta row as a dict."""
        return dict(zip(META_FIELDS, self.meta[slot].tolist()))

    def recoverable(self, actor: int, on_the_way: set[int] = frozenset()) -> list[int]:
        """Slots of a dead ``actor`` to hand to its replacement: all but those ``on_the_way``.

        Call it between updates (no slot is being learned from), after reading everything
        the dead actor sent: ``on_the_way`` are its full slots that reached the learner's
        pending list, which frees them as usual after using them. Every other slot was
        free, being written, or marked full by an actor killed before it sent the index:
        nobody else will ever free those, so they go back to the replacement.
        """
        return [i for i in self.slots_of(actor) if i not in on_the_way]


def allocate_slots(
    observation_space: gym.Space,
    action_space: gym.Space,
    length: int,
    num_streams: int,
    actors: int,
    slots_per_actor: int,
) -> SlotPool:
    """Shared slots for ``actors`` actors that split ``num_streams`` streams evenly.

    Actor a owns streams ``[a*B, (a+1)*B)`` with ``B = num_streams // actors`` and
    ``slots_per_actor`` slots of shape (length(+1), B, ...). Raises ValueError when the
    streams do not split evenly (every actor must fill the same segment layout; a run's
    config cannot ask for that, ``rtrl_rl.config`` refuses it first).
    """
    if actors < 1 or num_streams % actors:
        raise ValueError(f"num_streams ({num_streams}) must be a positive multiple of actors ({actors})")
    if slots_per_actor < 1:
        raise ValueError(f"need at least one slot per actor, got {slots_per_actor}")
    per_actor = num_streams // actors
    owner = [a for a in range(actors) for _ in range(slots_per_actor)]
    segments = [
        allocate_segment(observation_space, action_space, length, per_actor, share_memory=True) for _ in owner
    ]
    meta = torch.zeros((len(owner), len(META_FIELDS)), dtype=torch.int64).share_memory_()
    for slot, actor in enumerate(owner):
        meta[slot, ACTOR] = actor
    streams = [torch.arange(a * per_actor, (a + 1) * per_actor) for a in range(actors)]
    return SlotPool(segments, meta, owner, streams)


def slots_per_actor(total_slots: int, actors: int) -> int:
    """Slots each actor owns: ``runtime.slots`` split evenly (0 means 2 per actor plus 2).

    Three slots per actor let it write one while the learner reads another and a third
    waits in its pipe, so acting and learning overlap.
    """
    total = total_slots or 2 * actors + 2
    return max(2, total // actors)
