"""LRU: Linear Recurrent Unit (Orvieto et al., ICML 2023), learned by exact RTRL.

    h_t = λ ⊙ h_{t-1} + γ ⊙ (B x_t + b),   λ_j = exp(-exp(ν_j) + i exp(θ_j)),   B complex n×d
    y_t = GELU(C [Re h_t ; Im h_t] + D x_t + c)

γ is a trained parameter (log-parametrised, initialised to sqrt(1 - |λ|²), the paper's
normalisation, as in its reference code). The readout is the paper's Re(C h) + D x (C
complex n×n is a real n×2n map of [Re h ; Im h]; D here a full n×d matrix) followed by the
GELU the paper places after each layer, so that a single core and a stack are non-linear.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rtrl_rl.agents.cores.complex_core import ComplexDiagonalCore


class LRU(ComplexDiagonalCore):
    """LRU core: ``weight`` = [B_re ; B_im] (2n, d), ``bias``, ``nu``, ``theta``, ``gamma``
    (n each), readout ``out_weight`` (n, d + 2n) = [D | C], ``out_bias`` (n)."""

    name = "lru"
    has_gamma = True

    def build_readout(self) -> None:
        """[D | C] and c: same-step, trained by ordinary backprop (no sensitivities)."""
        n = self.hidden_size
        self.out_weight = nn.Parameter(torch.empty(n, self.input_size + 2 * n))
        self.out_bias = nn.Parameter(torch.empty(n))

    def reset_readout(self) -> None:
        """PyTorch's U(±1/sqrt(fan_in)) for [D | C] and c."""
        fan_in = self.input_size + 2 * self.hidden_size
        self._uniform(self.out_weight, fan_in)
        self._uniform(self.out_bias, fan_in)

    def readout(self, x: Tensor, states: Tensor) -> Tensor:
        """y = GELU(D x + C [Re h ; Im h] + c), (T, B, n)."""
        return nn.functional.gelu(nn.functional.linear(torch.cat([x, states], -1), self.out_weight, self.out_bias))
