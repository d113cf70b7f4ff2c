"""Recurrent cores: element-wise cores learned by exact RTRL, an nn.LSTM baseline, and
dense cores (rnn, gru, lstm) learned by tbptt, exact RTRL or its approximations.

``make_core(name, input_size, hidden_size, learning=..., **options)`` builds one; see
``docs/cores.md`` and ``docs/approximations.md``.
"""

from __future__ import annotations

from typing import Any, Optional

from rtrl_rl.agents.cores.base import ElementwiseCore, RecurrentCore
from rtrl_rl.agents.cores.carry import Carry
from rtrl_rl.agents.cores.complex_core import ComplexDiagonalCore
from rtrl_rl.agents.cores.dense import DENSE_LEARNING, DenseCore, DenseGRU, DenseLSTM, DenseRNN
from rtrl_rl.agents.cores.elstm import ELSTM
from rtrl_rl.agents.cores.lru import LRU
from rtrl_rl.agents.cores.lstm import LSTM
from rtrl_rl.agents.cores.mingru import MinGRU
from rtrl_rl.agents.cores.rtu import RTU
from rtrl_rl.agents.cores.rtu_nonlinear import RTUNonlinear
from rtrl_rl.agents.cores.stack import Stack, check_layers

#: core name -> class
CORES: dict[str, type[RecurrentCore]] = {"elstm": ELSTM, "mingru": MinGRU, "lstm": LSTM, "lru": LRU, "rtu": RTU,
                                     "rtu_nonlinear": RTUNonlinear, "rnn": DenseRNN, "gru": DenseGRU}
#: core name -> the dense class used when it learns by anything but its default
DENSE_CORES: dict[str, type[DenseCore]] = {"rnn": DenseRNN, "gru": DenseGRU, "lstm": DenseLSTM}


def available_cores() -> list[str]:
    """Names accepted by :func:`make_core`."""
    return sorted(CORES)


def elementwise_cores() -> list[str]:
    """Names of the cores that support exact RTRL."""
    return sorted(name for name, cls in CORES.items() if issubclass(cls, ElementwiseCore))


def ring_cores() -> list[str]:
    """Names of the complex-diagonal cores, whose λ takes the ring initialisation (``r_min``, ``r_max``)."""
    return sorted(name for name, cls in CORES.items() if issubclass(cls, ComplexDiagonalCore))


def make_core(name: str, input_size: int, hidden_size: int, learning: Optional[str] = None, layers: int = 1,
              **options: Any) -> RecurrentCore:
    """Build the core ``name`` for inputs of size d = ``input_size`` and n = ``hidden_size`` units.

    ``learning``: "rtrl" (exact untruncated gradient through carried sensitivities) or
    "tbptt" (gradient truncated at the segment start); the dense cores (rnn, gru, lstm) also
    take "snap1", "uoro" and "kfrtrl". None: the core's default (rtrl for the element-wise
    cores, tbptt for the dense ones; lstm with tbptt is ``nn.LSTM``). ``layers`` > 1 builds
    a :class:`Stack` (per-layer learning, inter-layer gradient at the same step only; see
    ``docs/cores.md``). ``options`` go to the core class, e.g. ``forget_bias`` (all cores),
    ``input_grad`` and ``rtrl_path`` (element-wise cores), ``r_min``, ``r_max``,
    ``max_phase`` (lru, rtu), ``seed`` (dense cores: the uoro/kfrtrl noise).
    """
    if name not in CORES:
        raise ValueError(f"unknown core {name!r}; available cores: {', '.join(available_cores())}")
    if check_layers(layers) > 1:
        learning = learning or ("tbptt" if name in DENSE_CORES else "rtrl")
        return Stack(lambda d, **kw: _single(name, d, hidden_size, **kw), input_size, hidden_size, layers,
                     learning=learning, **options)
    return _single(name, input_size, hidden_size, learning, **options)


def _single(name: str, input_size: int, hidden_size: int, learning: Optional[str] = None,
            **options: Any) -> RecurrentCore:
    """One core (no stack): the class that ``name`` and ``learning`` select."""
    if learning is None:
        return CORES[name](input_size, hidden_size, **options)
    if name in DENSE_CORES and learning != "tbptt":
        return DENSE_CORES[name](input_size, hidden_size, learning=learning, **options)
    if learning in DENSE_LEARNING and name not in DENSE_CORES and learning not in ("rtrl", "tbptt"):
        raise ValueError(f"learning={learning!r} approximates RTRL for the dense cores "
                         f"({', '.join(sorted(DENSE_CORES))}); the {name} core learns by exact 'rtrl' or 'tbptt'")
    return CORES[name](input_size, hidden_size, learning=learning, **options)


__all__ = ["Carry", "CORES", "DENSE_CORES", "DENSE_LEARNING", "DenseCore", "ELSTM", "LRU", "LSTM", "MinGRU", "RTU",
           "RTUNonlinear", "RecurrentCore", "Stack", "ElementwiseCore",
           "available_cores", "elementwise_cores", "make_core", "ring_cores"]
