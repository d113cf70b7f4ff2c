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

from rtrl_rl.agents.cores.influence import InfluenceRule, StepTerms, add_immediate, jacobian_product, ratio_scale, signs

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
        B = s.shape[0]
        js = jacobian_product(terms, s.unsqueeze(-1)).squeeze(-1)           # (B, K, n)
        nu = signs(tuple(s.shape), s, generator)
        nu_i = w.new_zeros(B, 1, self.G, self.n, self.m)
        add_immediate(nu_i, terms, weight=nu)
        nu_i = nu_i.view(B, self.G * self.n, self.m)
        norm = lambda v: v.flatten(1).norm(dim=1)
        rho0 = ratio_scale(norm(w), norm(js))
        rho1 = ratio_scale(norm(nu_i), norm(nu))
        new_s = js * rho0.view(B, 1, 1) + nu * rho1.view(B, 1, 1)
        new_w = w / rho0.view(B, 1, 1) + nu_i / rho1.view(B, 1, 1)
        return {STATE_KEY: new_s, PARAM_KEY: new_w}

    def carry_gradient(self, carry: dict[str, Tensor], c0: Tensor) -> Tensor:
        """Σ_b (c0_b · s̃_b) w̃_b."""
        dots = (c0 * carry[STATE_KEY]).flatten(1).sum(1)
        return torch.einsum("b,bpm->pm", dots, carry[PARAM_KEY])
