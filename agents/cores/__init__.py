"""Recurrent cores: element-wise cores learned by exact RTRL, and an nn.LSTM baseline.

``make_core(name, input_size, hidden_size, learning="rtrl"|"tbptt", **options)`` builds
one; see ``docs/cores.md``.
"""

from __future__ import annotations

from typing import Any

from rtrl_rl.agents.cores.base import ElementwiseCore, RecurrentCore
from rtrl_rl.agents.cores.carry import Carry
from rtrl_rl.agents.cores.elstm import ELSTM
from rtrl_rl.agents.cores.lru import LRU
from rtrl_rl.agents.cores.lstm import LSTM
from rtrl_rl.agents.cores.mingru import MinGRU
from rtrl_rl.agents.cores.rtu import RTU
from rtrl_rl.agents.cores.rtu_nonlinear import RTUNonlinear
from rtrl_rl.agents.cores.stack import Stack, check_layers

#: core name -> class
CORES: dict[str, type[RecurrentCore]] = {"elstm": ELSTM, "mingru": MinGRU, "lstm": LSTM, "lru": LRU, "rtu": RTU,
                                     "rtu_nonlinear": RTUNonlinear}


def available_cores() -> list[str]:
    """Names accepted by :func:`make_core`."""
    return sorted(CORES)


def elementwise_cores() -> list[str]:
    """Names of the cores that support exact RTRL."""
    return sorted(name for name, cls in CORES.items() if issubclass(cls, ElementwiseCore))


def make_core(name: str, input_size: int, hidden_size: int, learning: str = "rtrl", layers: int = 1,
              **options: Any) -> RecurrentCore:
    """Build the core ``name`` for inputs of size d = ``input_size`` and n = ``hidden_size`` units.

    ``learning``: "rtrl" (exact untruncated gradient through carried sensitivities) or
    "tbptt" (gradient truncated at the segment start). ``layers`` > 1 builds a
    :class:`Stack` (per-layer RTRL, inter-layer gradient at the same step only; see
    ``docs/cores.md``). ``options`` go to the core class, e.g. ``forget_bias`` (all cores),
    ``input_grad`` and ``rtrl_path`` (element-wise cores), ``r_min``, ``r_max``,
    ``max_phase`` (lru, rtu).
    """
    if name not in CORES:
        raise ValueError(f"unknown core {name!r}; available cores: {', '.join(available_cores())}")
    if check_layers(layers) > 1:
        return Stack(lambda d, **kw: CORES[name](d, hidden_size, **kw), input_size, hidden_size, layers,
                     learning=learning, **options)
    return CORES[name](input_size, hidden_size, learning=learning, **options)


__all__ = ["Carry", "CORES", "ELSTM", "LRU", "LSTM", "MinGRU", "RTU", "RTUNonlinear", "RecurrentCore", "Stack",
           "ElementwiseCore",
           "available_cores", "elementwise_cores", "make_core"]
