"""KF-RTRL (Mujika, Meier & Steger, NeurIPS 2018) for the dense cores: an unbiased
Kronecker-factored estimate of the influence, M̂ = ũᵀ ⊗ H̃, O(n^3) per step and stream.

When every gate parameter column j of unit i' reads the same input u_j with one
coefficient per (state, gate, unit), the immediate influence is one Kronecker product,
I_t = u_tᵀ ⊗ D̄_t with D̄_t[(k,i),(g,i')] = δ_{ii'} dp_{k,g,i} (S x G*n). This holds for
the Elman RNN (the paper's case) and the LSTM (the paper's extension: all four gates read
[x; h]), not for the GRU, whose candidate gate scales W_hh's input by r; that core is
refused. Per step, with independent signs c1, c2 per stream and the variance-minimising
p1 = sqrt(|J H̃| / |ũ|), p2 = sqrt(|D̄| / |u|):

    ũ_t = c1 p1 ũ_{t-1} + c2 p2 u_t         H̃_t = c1 J_t H̃_{t-1} / p1 + c2 D̄_t / p2

E[ũ_tᵀ ⊗ H̃_t] = ũᵀ ⊗ J H̃ + uᵀ ⊗ D̄ = J M̂ + I: unbiased, with a variance that the paper
shows to be smaller than UORO's (asymptotically by a factor n).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from rtrl_rl.agents.cores.influence import InfluenceRule, StepTerms, jacobian_product, ratio_scale, signs

INPUT_KEY, STATE_KEY = "kf/u", "kf/H"


class KFRTRL(InfluenceRule):
    """Kronecker-factored unbiased influence estimate (RNN and LSTM)."""

    name = "kfrtrl"
    random = True

    def __init__(self, cell, input_size: int, hidden_size: int) -> None:
        if not cell.shared_coefficients:
            raise ValueError(
                f"learning='kfrtrl' does not apply to the {cell.name} core: its candidate gate reads "
                "r * (W_hh h + b_hh), so W_ih and W_hh get different coefficients and one step's influence "
                "is not a single Kronecker product (KF-RTRL covers the rnn and lstm cores); use 'uoro' or "
                "'snap1' for the gru")
        super().__init__(cell, input_size, hidden_size)

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """ũ (m,) and H̃ (K*n, G*n) per stream."""
        return {INPUT_KEY: (self.m,), STATE_KEY: (self.K * self.n, self.G * self.n)}

    def step(self, carry: dict[str, Tensor], terms: StepTerms, generator: Optional[torch.Generator]) -> dict[str, Tensor]:
        """One KF-RTRL update (two signs per stream)."""
        u_prev, h_prev = carry[INPUT_KEY], carry[STATE_KEY]
        B, K, G, n = terms.dp.shape
        jh = jacobian_product(terms, h_prev.view(B, K, n, G * n)).reshape(B, K * n, G * n)
        d_bar = h_prev.new_zeros(B, K, n, G, n)
        torch.diagonal(d_bar, dim1=2, dim2=4).copy_(terms.dp)
        d_bar = d_bar.view(B, K * n, G * n)
        c = signs((B, 2), u_prev, generator)
        p1 = ratio_scale(jh.flatten(1).norm(dim=1), u_prev.norm(dim=1))
        p2 = ratio_scale(terms.dp.flatten(1).norm(dim=1), terms.u.norm(dim=1))
        c1, c2 = c[:, 0], c[:, 1]
        new_u = (c1 * p1).unsqueeze(1) * u_prev + (c2 * p2).unsqueeze(1) * terms.u
        new_h = (c1 / p1).view(B, 1, 1) * jh + (c2 / p2).view(B, 1, 1) * d_bar
        return {INPUT_KEY: new_u, STATE_KEY: new_h}

    def carry_gradient(self, carry: dict[str, Tensor], c0: Tensor) -> Tensor:
        """Σ_b (c0_bᵀ H̃_b)ᵀ ũ_bᵀ as (G*n, m)."""
        left = torch.matmul(c0.reshape(c0.shape[0], 1, -1), carry[STATE_KEY]).squeeze(1)   # (B, G*n)
        return left.t() @ carry[INPUT_KEY]
