"""RTU: linear Recurrent Trace Units (Elelimy, White, Bowling et al., NeurIPS 2024), exact RTRL.

The real-valued form of a complex-diagonal recurrence, per unit k (the cos/sin pair):

    c¹_t = r cos θ ⊙ c¹_{t-1} - r sin θ ⊙ c²_{t-1} + W¹ x_t + b¹
    c²_t = r sin θ ⊙ c¹_{t-1} + r cos θ ⊙ c²_{t-1} + W² x_t + b²
    r = exp(-exp(ν)),  θ = exp(φ),          y_t = f([c¹_t ; c²_t])   (2n outputs)

i.e. c = c¹ + i c², λ = r e^{iθ}: the linear RTU of the paper (linear recurrence, non-linear
output f, default ReLU as in the authors' code). No input normalisation (g = 1); the bias
b is this library's addition (zero at initialisation). The parameter named ``theta`` here
is the paper's φ (the phase is exp(φ)).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from rtrl_rl.agents.cores.complex_core import MAX_PHASE, R_MAX, R_MIN, ComplexDiagonalCore

#: output non-linearities f accepted by ``activation``
ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh, "identity": lambda v: v}


class RTU(ComplexDiagonalCore):
    """Linear RTU core: ``weight`` = [W¹ ; W²] (2n, d), ``bias`` (2n), ``nu``, ``theta`` (n).
    Output [f(c¹) ; f(c²)], size 2n. Option ``activation``: relu (default), tanh, identity."""

    name = "rtu"
    activations: dict = ACTIVATIONS

    def __init__(self, input_size: int, hidden_size: int, learning: str = "rtrl", forget_bias: float = 3.0,
                 input_grad: Optional[str] = None, rtrl_path: str = "auto", r_min: float = R_MIN,
                 r_max: float = R_MAX, max_phase: float = MAX_PHASE, activation: str = "relu") -> None:
        if activation not in self.activations:
            raise ValueError(f"unknown activation {activation!r}; expected one of {sorted(self.activations)}")
        self.activation = activation
        super().__init__(input_size, hidden_size, learning, forget_bias, input_grad, rtrl_path, r_min, r_max,
                         max_phase)

    @property
    def output_size(self) -> int:
        """2n: the pair (c¹, c²) of every unit."""
        return 2 * self.hidden_size

    def readout(self, x: Tensor, states: Tensor) -> Tensor:
        """y = f([c¹ ; c²]), (T, B, 2n)."""
        return ACTIVATIONS[self.activation](states)
