"""What the dense learning rules share: the per-step terms, Jacobian products, and the
interface of a rule that carries (an estimate of) the influence matrix.

The gate parameters of a dense core are handled as one matrix W (G*n, m) whose columns
are [W_ih | b_ih | W_hh | b_hh], m = d + 1 + n + 1; the input of step t to those columns
is u_t = [x_t; 1; h_{t-1}; 1]. The influence M_t = ds_t/dW (S = K*n rows, G*n*m columns)
obeys RTRL's recursion

    M_t = J_t M_{t-1} + I_t,     I_t[(k,i), (g,i',j)] = δ_{ii'} c_{k,g,i} u_{t,j}

where J_t = ds_t/ds_{t-1} and c is the cell's dp for the W_ih, b_ih columns and dq for
the W_hh, b_hh ones (see :mod:`rtrl_rl.agents.cores.dense_cells`). A rule keeps some
representation of M (exact, sparse, or a random low-rank estimate), updates it per step,
and turns the gradient c_0 = dL/ds_0 that reaches a segment's start into the carried
part of the parameter gradient, c_0ᵀ M_0 (the rest is backpropagated inside the segment).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor


@dataclass
class StepTerms:
    """One step's local derivatives for B streams (all detached).

    dp, dq (B,K,G,n); e (B,K,K,n); u (B,m) = [x; 1; h_prev; 1]; w_hh (G*n, n); d: input size.
    """

    dp: Tensor
    dq: Tensor
    e: Tensor
    u: Tensor
    w_hh: Tensor
    d: int


def jacobian_product(terms: StepTerms, v: Tensor) -> Tensor:
    """J_t v for v (B,K,n,r): dq * (W_hh v_h) summed over gates, plus e * v. Returns (B,K,n,r).

    Never forms J (S x S). W_hh v_h is one matrix product: for few columns (UORO's vector,
    KF-RTRL's H̃) over all streams at once, without repeating W_hh per stream; for many
    (exact RTRL's M) per stream. The sums over gates and state parts (G <= 4, K <= 2) are
    broadcast multiply-adds, which need no permuted copy of the (large) operands.
    """
    B, K, G, n = terms.dq.shape
    v_h, r = v[:, 0], v.shape[-1]
    if r < n:
        wv = (terms.w_hh @ v_h.transpose(0, 1).reshape(n, B * r)).view(G, n, B, r).permute(2, 0, 1, 3)
    else:
        wv = torch.matmul(terms.w_hh, v_h).view(B, G, n, r)
    dq = terms.dq.unsqueeze(-1)                                        # (B, K, G, n, 1)
    out = dq[:, :, 0] * wv[:, None, 0]
    for g in range(1, G):
        out.addcmul_(dq[:, :, g], wv[:, None, g])
    e = terms.e.unsqueeze(-1)                                          # (B, K, K, n, 1)
    for part in range(K):
        out.addcmul_(e[:, :, part], v[:, None, part])
    return out


def jacobian_blocks(terms: StepTerms) -> Tensor:
    """The unit-diagonal blocks of J_t: (B,K,K,n), [b,k,l,i] = ds_{k,i}/ds'_{l,i}."""
    B, K, G, n = terms.dq.shape
    w_diag = torch.diagonal(terms.w_hh.view(G, n, n), dim1=1, dim2=2)   # (G, n)
    blocks = terms.e.clone()
    blocks[:, :, 0] += (terms.dq * w_diag).sum(2)
    return blocks


def add_immediate(target: Tensor, terms: StepTerms, unit_first: bool = False) -> None:
    """target += coef[...,None] * u in place, with the columns' coefficient: dp for the
    [x; 1] columns, dq for the [h; 1] ones. target (B,K,G,n,m), or (B,n,K,G,m) when
    ``unit_first`` (SnAp-1's layout)."""
    split = terms.d + 1
    for coef, cols in ((terms.dp, slice(None, split)), (terms.dq, slice(split, None))):
        if unit_first:
            coef = coef.permute(0, 3, 1, 2)
        target[..., cols].addcmul_(coef.unsqueeze(-1), terms.u[:, None, None, None, cols])


class InfluenceRule(ABC):
    """A learning rule that carries a representation of the influence M per stream.

    Subclasses give the carry entries' per-stream shapes, the per-step update and the
    carried gradient. Entries are named with a "/" (a Carry's mark of sensitivities).
    """

    name = "rule"
    #: whether the rule draws random numbers (then the core's generator feeds it)
    random = False

    def __init__(self, cell, input_size: int, hidden_size: int) -> None:
        self.cell, self.d, self.n = cell, input_size, hidden_size
        self.K, self.G = len(cell.parts), cell.gates
        self.m = input_size + hidden_size + 2

    @abstractmethod
    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Per-stream shape of each carry entry of the rule."""

    @abstractmethod
    def step(self, carry: dict[str, Tensor], terms: StepTerms, generator: Optional[torch.Generator]) -> dict[str, Tensor]:
        """The rule's entries after one step (already zeroed where the stream reset)."""

    @abstractmethod
    def carry_gradient(self, carry: dict[str, Tensor], c0: Tensor) -> Tensor:
        """Σ_b c0_bᵀ M̂_b as a (G*n, m) matrix, from c0 = dL/ds_0 (B,K,n)."""


def signs(shape: tuple[int, ...], like: Tensor, generator: Optional[torch.Generator]) -> Tensor:
    """Independent ±1 entries (Rademacher) of ``shape``, drawn on the generator's device
    (CPU) and moved to ``like``'s device and dtype."""
    bits = torch.randint(0, 2, shape, generator=generator, dtype=torch.int8)
    return (bits * 2 - 1).to(device=like.device, dtype=like.dtype)


def ratio_scale(num: Tensor, den: Tensor) -> Tensor:
    """sqrt(num / den) per stream, and 1 where either is zero (nothing to balance yet).

    The variance-minimising factor of UORO and KF-RTRL: it balances the norms of the two
    factors of a rank-one term; any positive value keeps the estimate unbiased.
    """
    ok = (num > 0) & (den > 0)
    return torch.where(ok, (num / torch.where(ok, den, torch.ones_like(den))).sqrt(), torch.ones_like(num))
