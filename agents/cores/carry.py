"""The recurrent carry: per-stream core state and RTRL sensitivities as plain tensors.

A :class:`Carry` is a ``dict`` from names to tensors whose first dimension is the stream
(batch). State entries are named after the state (``"c"``, ``"h"``); sensitivity entries
are named ``"d<state>/d<param>"`` (the ``/`` marks them), so an actor can keep only the
state with :meth:`Carry.state`. Being a dict of tensors, it moves through ``torch.save``
(also with ``weights_only=True``), pickling and multiprocessing unchanged.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import Tensor

#: sensitivity keys contain this mark (``"dc/dW"``); state keys never do
SENSITIVITY_MARK = "/"


class Carry(dict):
    """Per-stream recurrent carry: ``str -> Tensor`` with the stream as dimension 0.

    ``carry["c"]`` returns a tensor; ``carry[idx]`` with any other key (an index
    tensor, list or slice) selects streams and returns a new ``Carry``.
    """

    def __getitem__(self, key: Any) -> Any:
        """Look up an entry by name, or select streams by a non-string index."""
        if isinstance(key, str):
            return dict.__getitem__(self, key)
        return Carry({name: value[key] for name, value in self.items()})

    def __reduce__(self):
        # Rebuild through the constructor only, so the weights-only unpickler (which
        # knows Carry as a safe global) accepts it.
        return (Carry, (dict(self),))

    @property
    def batch_size(self) -> int:
        """Number of streams (dimension 0 of every entry)."""
        return next(iter(self.values())).shape[0]

    @property
    def state_keys(self) -> list[str]:
        """Names of the state entries (what an actor needs; no sensitivities)."""
        return [name for name in self if SENSITIVITY_MARK not in name]

    @property
    def has_sensitivities(self) -> bool:
        """Whether any RTRL sensitivity entry is present."""
        return any(SENSITIVITY_MARK in name for name in self)

    def state(self) -> Carry:
        """The state entries only (for acting, which never computes sensitivities)."""
        return Carry({name: self[name] for name in self.state_keys})

    def assign(self, index: Any, other: Carry) -> None:
        """Write ``other`` into the selected streams in place: ``self[k][index] = other[k]``."""
        if set(other) != set(self):
            raise ValueError(f"cannot assign a carry with keys {sorted(other)} into one with keys {sorted(self)}")
        for name, value in self.items():
            value[index] = other[name]

    def to(self, *args: Any, **kwargs: Any) -> Carry:
        """A copy on another device and/or dtype (arguments as for ``Tensor.to``)."""
        return Carry({name: value.to(*args, **kwargs) for name, value in self.items()})

    def detach(self) -> Carry:
        """The same tensors detached from any autograd graph."""
        return Carry({name: value.detach() for name, value in self.items()})

    def clone(self) -> Carry:
        """A deep copy of every tensor."""
        return Carry({name: value.clone() for name, value in self.items()})

    @staticmethod
    def cat(carries: Iterable[Carry]) -> Carry:
        """Concatenate carries with equal keys along the stream dimension."""
        carries = list(carries)
        if not carries:
            raise ValueError("Carry.cat needs at least one carry")
        keys = set(carries[0])
        if any(set(c) != keys for c in carries):
            raise ValueError("Carry.cat needs carries with the same keys")
        return Carry({name: torch.cat([c[name] for c in carries]) for name in carries[0]})

    def __repr__(self) -> str:
        shapes = ", ".join(f"{name!r}: {tuple(value.shape)}" for name, value in self.items())
        return f"Carry({{{shapes}}})"


torch.serialization.add_safe_globals([Carry])
