"""SnAp-1 (Menick et al., ICLR 2021) for the dense cores: the influence entries that one
step makes non-zero, and only those.

One step's influence I_t is non-zero only where the state unit and the parameter's unit
agree (ds_{k,i}/dW_{(g,i'),j} with i = i'). SnAp-1 keeps exactly that pattern, K*G*n*m
entries per stream (like an element-wise core's sensitivities), and propagates it with the
unit-diagonal blocks of J_t only:

    M̂_t[k,g,i,j] = Σ_l J_t[(k,i),(l,i)] M̂_{t-1}[l,g,i,j] + I_t[k,g,i,j]

It drops the paths through other units: biased, deterministic (zero variance), O(n^2) per
step like the forward pass. It equals exact RTRL when J is unit-diagonal (a diagonal W_hh)
and for the first two one-step segments from a zero carry (M_1 = I_1 has the pattern).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from rtrl_rl.agents.cores.influence import InfluenceRule, StepTerms, add_immediate, jacobian_blocks

KEY = "ds/dW:snap1"


class SnAp1(InfluenceRule):
    """SnAp-1: the influence restricted to its one-step sparsity pattern."""

    name = "snap1"

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """(n, K, G, m) per stream: entry [i,k,g,j] is ds_{k,i}/dW_{(g,i),j}."""
        return {KEY: (self.n, self.K, self.G, self.m)}

    def step(self, carry: dict[str, Tensor], terms: StepTerms, generator: Optional[torch.Generator]) -> dict[str, Tensor]:
        """Propagate by the diagonal blocks of J, then add I_t."""
        m_prev = carry[KEY]
        K = m_prev.shape[2]
        blocks = jacobian_blocks(terms).permute(0, 3, 1, 2)                # (B, n, K, K)
        # Σ_l over K <= 2 parts as broadcast multiply-adds (measured faster than a batched
        # matrix product of 2 x 2 blocks)
        factors = blocks[..., None, None]                                  # (B, n, K, K, 1, 1)
        new = factors[:, :, :, 0] * m_prev[:, :, :1]
        for part in range(1, K):
            new.addcmul_(factors[:, :, :, part], m_prev[:, :, part:part + 1])
        add_immediate(new, terms, unit_first=True)
        return {KEY: new}

    def carry_gradient(self, carry: dict[str, Tensor], c0: Tensor) -> Tensor:
        """Σ_b Σ_k c0[b,k,i] M̂[b,i,k,g,j] as (G*n, m)."""
        m_hat = carry[KEY]
        B, n, K = m_hat.shape[:3]
        # a broadcast product and a sum read M̂ once; einsum would first permute it for a bmm
        flat = (c0.transpose(1, 2).reshape(B, n, K, 1, 1) * m_hat).sum((0, 2))   # (n, G, m)
        return flat.transpose(0, 1).reshape(self.G * self.n, self.m)
