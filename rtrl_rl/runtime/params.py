"""Parameters published by the learner through shared memory, with a version number.

The learner copies its ``state_dict`` (parameters and buffers) into shared CPU tensors
after every update; actors copy them into their own CPU model when the version has
changed. Nothing is pickled per step, and a reader never blocks the writer.

Consistency uses a sequence lock: the writer makes a shared counter odd, copies, and
makes it even again; a reader copies and keeps the result only if the counter was even
and unchanged around its copy. A lock would let a reader that dies mid-copy (killed
from outside) block the learner for ever; a sequence lock cannot.
The published version is the counter divided by two: the number of publications.
"""

from __future__ import annotations

import time

import torch
from torch import nn


class SharedParams:
    """Shared-memory copy of a model's ``state_dict`` plus a version counter.

    Build it in the learner from the model, pass it to actor processes (it pickles as
    shared-memory handles), call :meth:`publish` in the learner and :meth:`pull` in actors.
    """

    def __init__(self, model: nn.Module) -> None:
        self.tensors = {k: v.detach().to("cpu", copy=True).share_memory_() for k, v in model.state_dict().items()}
        self.counter = torch.zeros(1, dtype=torch.int64).share_memory_()
        self._staging: dict[str, torch.Tensor] | None = None

    @property
    def version(self) -> int:
        """Number of completed publications (what an actor acting now would record)."""
        return int(self.counter[0]) // 2

    def publish(self, model: nn.Module) -> int:
        """Copy ``model``'s current state (on any device) into shared memory; returns the new version."""
        state = model.state_dict()
        self.counter += 1  # odd: a copy is in progress
        with torch.no_grad():
            for name, shared in self.tensors.items():
                shared.copy_(state[name])
        self.counter += 1
        return self.version

    def pull(self, model: nn.Module, have: int, attempts: int = 20) -> int:
        """Load the published state into ``model`` if it is newer than version ``have``.

        The shared tensors are first copied into a private staging copy, which is loaded
        into ``model`` only if no publication overlapped the copy; so ``model`` always
        holds exactly one published version. Returns that version: ``have`` when nothing
        newer was published or every attempt overlapped a publication (the actor then
        acts one more segment with its current parameters).
        """
        if self._staging is None:
            self._staging = {k: torch.empty_like(v) for k, v in self.tensors.items()}
        for _ in range(attempts):
            start = int(self.counter[0])
            if start // 2 <= have:
                return have
            if start % 2:
                time.sleep(1e-4)
                continue
            for name, shared in self.tensors.items():
                self._staging[name].copy_(shared)
            if int(self.counter[0]) == start:
                with torch.no_grad():
                    model.load_state_dict(self._staging, strict=True)
                return start // 2
        return have

    def __getstate__(self) -> dict:
        # The staging copy is private to each process; never ship it.
        return {**self.__dict__, "_staging": None}
