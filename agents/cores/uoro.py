"""UORO (Tallec & Ollivier, ICLR 2018) for the dense cores: an unbiased rank-one estimate
of the influence, M̂ = s̃ w̃ᵀ, O(n^2) per step and stream.

Per step, with ν a vector of independent ±1 signs over the state (drawn from the core's
generator) and the variance-minimising factors ρ0 = sqrt(|w̃| / |J s̃|), ρ1 = sqrt(|νᵀI| / |ν|):

    s̃_t = ρ0 J_t s̃_{t-1} + ρ1 ν            w̃_t = w̃_{t-1} / ρ0 + (νᵀ I_t) / ρ1

E[s̃_t w̃_tᵀ] = J_t s̃ w̃ᵀ + E[ν νᵀ] I_t: the cross terms have zero mean (ρ1 is even in ν),
so M̂ is unbiased for M when its predecessor is; its variance is what the method pays.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from rtrl_rl.agents.cores.influence import InfluenceRule, StepTerms, jacobian_product, ratio_scale, signs

STATE_KEY, PARAM_KEY = "uoro/s", "uoro/w"


class UORO(InfluenceRule):
    """Rank-one unbiased influence estimate."""

    name = "uoro"
    random = True

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """s̃ (K, n) and w̃ (G*n, m) per stream."""
        return {STATE_KEY: (self.K, self.n), PARAM_KEY: (self.G * self.n, self.m)}

    def step(self, carry: dict[str, Tensor], terms: StepTerms, generator: Optional[torch.Generator]) -> dict[str, Tensor]:
        """One UORO update (the noise is drawn per stream)."""
        s, w = carry[STATE_KEY], carry[PARAM_KEY]
        B, split = s.shape[0], terms.d + 1
        js = jacobian_product(terms, s.unsqueeze(-1)).squeeze(-1)           # (B, K, n)
        nu = signs(tuple(s.shape), s, generator)
        # νᵀI_t = [a_p ⊗ (x; 1), a_q ⊗ (h; 1)] with a = Σ_k ν_k coef_k (B, G, n): its norm
        # comes from the factors, and it is written once, straight into the new w̃
        a_p = (terms.dp * nu.unsqueeze(2)).sum(1)
        a_q = a_p if terms.dq is terms.dp else (terms.dq * nu.unsqueeze(2)).sum(1)
        u_x, u_h = terms.u[:, :split], terms.u[:, split:]
        sq = lambda v: v.flatten(1).pow(2).sum(1)
        nu_i_norm = (sq(a_p) * sq(u_x) + sq(a_q) * sq(u_h)).sqrt()
        norm = lambda v: v.flatten(1).norm(dim=1)
        rho0 = ratio_scale(norm(w), norm(js))
        rho1 = ratio_scale(nu_i_norm, norm(nu))
        inv1 = (1 / rho1).view(B, 1, 1)
        new_w = torch.cat([(a_p * inv1).unsqueeze(-1) * u_x[:, None, None],
                           (a_q * inv1).unsqueeze(-1) * u_h[:, None, None]], -1).view_as(w)
        new_w.addcmul_(w, (1 / rho0).view(B, 1, 1))
        new_s = torch.addcmul(nu * rho1.view(B, 1, 1), js, rho0.view(B, 1, 1))
        return {STATE_KEY: new_s, PARAM_KEY: new_w}

    def carry_gradient(self, carry: dict[str, Tensor], c0: Tensor) -> Tensor:
        """Σ_b (c0_b · s̃_b) w̃_b."""
        dots = (c0 * carry[STATE_KEY]).flatten(1).sum(1)
        return torch.einsum("b,bpm->pm", dots, carry[PARAM_KEY])
