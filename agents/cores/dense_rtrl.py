"""Exact RTRL for the dense cores: the full influence matrix, O(n^3) memory and O(n^4)
time per step and stream (Williams & Zipser 1989), the reference the approximations are
measured against.

The carry holds M = ds/dW per stream as (S, G*n, m) with S = K*n state entries and the
parameter columns of :mod:`rtrl_rl.agents.cores.influence`; each step applies
M_t = J_t M_{t-1} + I_t. Above :data:`MAX_ELEMENTS` entries per stream the core is refused
with the memory it would need (see :func:`check_size`).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from rtrl_rl.agents.cores.influence import InfluenceRule, StepTerms, add_immediate, jacobian_product

#: largest exact-RTRL influence matrix per stream (entries): 2^23, 32 MiB in float32;
#: lstm with n = 64 and d <= 126 fits, n = 128 does not
MAX_ELEMENTS = 1 << 23
KEY = "ds/dW"


def check_size(cell_name: str, elements: int, input_size: int, hidden_size: int, limit: int) -> None:
    """Raise ValueError, giving the memory, when ``elements`` per stream exceed ``limit``."""
    if elements <= limit:
        return
    mib = elements * 4 / 2 ** 20
    raise ValueError(
        f"exact dense RTRL for {cell_name} (d={input_size}, n={hidden_size}) keeps {elements:,} influence "
        f"entries per stream: {mib:,.0f} MiB per stream in float32 ({mib * 128 / 1024:,.1f} GiB for 128 "
        f"streams), above the limit of {limit:,} entries; use learning='snap1', 'uoro' or 'kfrtrl', "
        f"a smaller hidden_size, or pass max_rtrl_elements={elements} to accept the cost")


class ExactRTRL(InfluenceRule):
    """The full influence matrix, updated exactly."""

    name = "rtrl"

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """(K*n, G*n, m) per stream."""
        return {KEY: (self.K * self.n, self.G * self.n, self.m)}

    def step(self, carry: dict[str, Tensor], terms: StepTerms, generator: Optional[torch.Generator]) -> dict[str, Tensor]:
        """M_t = J_t M_{t-1} + I_t; I_t lands on the unit diagonal i = i'."""
        m_prev = carry[KEY]
        B, K, G, n, m = m_prev.shape[0], self.K, self.G, self.n, self.m
        new = jacobian_product(terms, m_prev.view(B, K, n, G * n * m)).reshape(B, K, n, G, n, m)
        diag = torch.diagonal(new, dim1=2, dim2=4)                 # (B, K, G, m, n), a view
        immediate = new.new_zeros(B, K, G, n, m)
        add_immediate(immediate, terms)
        diag += immediate.transpose(3, 4)
        return {KEY: new.reshape(m_prev.shape)}

    def carry_gradient(self, carry: dict[str, Tensor], c0: Tensor) -> Tensor:
        """Σ_b c0_bᵀ M_b."""
        m_prev = carry[KEY]
        B = m_prev.shape[0]
        flat = torch.matmul(c0.reshape(B, 1, -1), m_prev.view(B, m_prev.shape[1], -1)).sum(0)
        return flat.view(self.G * self.n, self.m)
