"""Shared base of the complex-diagonal cores (``lru``, ``rtu``): parameters, ring
initialisation, carry layout, and the forward pass through
:class:`rtrl_rl.agents.cores.complex_scan.ComplexDiagonalRTRL`.

    s_t = λ ⊙ s_{t-1} + g ⊙ (W x_t + b),   λ = exp(-exp(ν) + i exp(θ)),   g = exp(γ) or 1

n = ``hidden_size`` complex units; the state is kept as (Re, Im) pairs,
[Re s_0, Im s_0, Re s_1, ...] (2n reals); the weight's rows follow the same order.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor, nn

from rtrl_rl.agents.cores.base import ElementwiseCore
from rtrl_rl.agents.cores.carry import Carry
from rtrl_rl.agents.cores.complex_scan import SENSITIVITIES, ComplexDiagonalRTRL

#: ring initialisation defaults: |λ| in [R_MIN, R_MAX] (uniform on the ring's area), phase in [0, MAX_PHASE]
R_MIN, R_MAX, MAX_PHASE = 0.9, 0.999, 2 * math.pi


class ComplexDiagonalCore(ElementwiseCore):
    """A complex-diagonal linear recurrence learned by exact RTRL (or truncated BPTT).

    Parameters: ``weight`` (2n, d) and ``bias`` (2n), rows W_re[0], W_im[0], W_re[1], ... (the
    complex input projection), ``nu`` and ``theta`` (n: λ = exp(-exp(ν) + i exp(θ))), ``gamma``
    (n, log of the input gain g, only where ``has_gamma``), then the subclass's readout.

    Options beyond :class:`ElementwiseCore`'s: ``r_min``, ``r_max`` (0 <= r_min <= r_max <= 1)
    and ``max_phase`` (> 0) of the ring initialisation. ``forget_bias`` is accepted for a
    uniform interface and unused: the memory at initialisation is set by the ring.
    """

    gates = 2  # the re and im rows of the input projection
    has_diag = False
    state_key = "h"
    has_gamma = False

    def __init__(self, input_size: int, hidden_size: int, learning: str = "rtrl", forget_bias: float = 3.0,
                 input_grad: Optional[str] = None, rtrl_path: str = "auto", r_min: float = R_MIN,
                 r_max: float = R_MAX, max_phase: float = MAX_PHASE) -> None:
        if not (0 <= r_min <= r_max <= 1):  # |λ| is then clamped into (0, 1) (see reset_parameters)
            raise ValueError(f"ring initialisation needs 0 <= r_min <= r_max <= 1, got r_min={r_min}, r_max={r_max}")
        if not max_phase > 0:
            raise ValueError(f"max_phase must be > 0, got {max_phase}")
        self.ring = (r_min, r_max, max_phase)
        super().__init__(input_size, hidden_size, learning, forget_bias, input_grad, rtrl_path)

    def build(self) -> None:
        """ν, θ (and γ) per unit, then the readout (``build_readout``)."""
        n = self.hidden_size
        self.nu, self.theta = nn.Parameter(torch.empty(n)), nn.Parameter(torch.empty(n))
        self.register_parameter("gamma", nn.Parameter(torch.empty(n)) if self.has_gamma else None)
        self.build_readout()

    def build_readout(self) -> None:
        """Create the readout's parameters (none by default)."""

    def reset_parameters(self) -> None:
        """Ring initialisation of λ (Orvieto et al. 2023): |λ|² uniform in [r_min², r_max²],
        phase uniform in [0, max_phase]; γ = log sqrt(1 - |λ|²); W ~ N(0, 1/(2d)) per part; b = 0."""
        r_min, r_max, max_phase = self.ring
        n = self.hidden_size
        with torch.no_grad():
            radius = torch.sqrt(torch.rand(n) * (r_max ** 2 - r_min ** 2) + r_min ** 2).clamp(1e-6, 1 - 1e-7)
            self.nu.copy_(torch.log(-torch.log(radius)))
            self.theta.copy_(torch.log((torch.rand(n) * max_phase).clamp_min(1e-6)))
            if self.gamma is not None:
                self.gamma.copy_(0.5 * torch.log1p(-radius ** 2))
            self.weight.normal_(0, 1 / math.sqrt(2 * self.input_size))
            self.bias.zero_()
        self.reset_readout()

    def reset_readout(self) -> None:
        """Initialise the readout's parameters."""

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        """The state as (Re, Im) pairs: 2n per stream."""
        return {self.state_key: (2 * self.hidden_size,)}

    def sensitivity_shapes(self) -> dict[str, tuple[int, ...]]:
        """dh/dW (d, 2n: transposed) and dh/db, dh/dnu, dh/dtheta (, dh/dgamma) (2n) per stream,
        complex numbers as (Re, Im) pairs."""
        if self.learning != "rtrl":
            return {}
        two_n, s = 2 * self.hidden_size, self.state_key
        return {f"d{s}/d{name}": ((self.input_size, two_n) if name == "W" else (two_n,))
                for name in SENSITIVITIES if name != "gamma" or self.has_gamma}

    def forward(self, x: Tensor, carry: Carry, reset: Tensor, truncate: bool = False) -> tuple[Tensor, Carry]:
        """Run T steps: x (T,B,d), reset (T,B) bool -> y (T,B,output_size), new carry.
        ``truncate``: accept a state-only carry with gradients enabled (the gradient is
        then truncated at the segment start; see :meth:`RecurrentCore.validate`)."""
        has_sens = self.validate(x, carry, reset, truncate)
        keys = list(self.sensitivity_shapes()) if has_sens else []
        s = self.state_key
        sens = [carry[f"d{s}/d{name}"].contiguous() if f"d{s}/d{name}" in keys else None
                for name in SENSITIVITIES] if has_sens else []
        path = self.rtrl_path if self.rtrl_path != "auto" else ("step" if x.shape[0] == 1 else "segment")
        outputs = ComplexDiagonalRTRL.apply((self.input_grad, path), x, carry[s], (~reset).to(x.dtype),
                                            self.weight, self.bias, self.nu, self.theta, self.gamma, *sens)
        new_carry = Carry({s: outputs[0][-1].detach()})
        new_carry.update(zip(keys, outputs[1:]))
        return self.readout(x, outputs[0]), new_carry

    def reference_step(self, x: Tensor, s_prev: Tensor) -> Tensor:
        """One step in plain real autograd: the 2×2 rotation-scaling per unit, written out."""
        radius, angle = torch.exp(-torch.exp(self.nu)), torch.exp(self.theta)
        lam_re, lam_im = radius * torch.cos(angle), radius * torch.sin(angle)
        p = x @ self.weight.t() + self.bias
        if self.gamma is not None:
            p = p * torch.exp(self.gamma).repeat_interleave(2)
        s_re, s_im, p_re, p_im = s_prev[:, 0::2], s_prev[:, 1::2], p[:, 0::2], p[:, 1::2]
        pairs = [lam_re * s_re - lam_im * s_im + p_re, lam_im * s_re + lam_re * s_im + p_im]
        return torch.stack(pairs, -1).flatten(-2)
