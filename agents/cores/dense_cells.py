"""The dense recurrent cells (tanh Elman RNN, GRU, LSTM) and their local derivatives.

Each cell follows PyTorch's parametrisation (``nn.RNNCell``, ``nn.GRUCell``,
``nn.LSTMCell``): G gates over n units read an input pre-activation p = W_ih x + b_ih and a
hidden pre-activation q = W_hh h_{t-1} + b_hh, both (B, G, n). The state has K parts of
n units (``h``; ``h`` and ``c`` for the LSTM), stacked as s (B, K, n); the output is h.

For the learning rules (exact RTRL and its approximations) a cell gives, per step, three
element-wise coefficient tensors. Every dependence of unit i's state on a pre-activation
is on that same unit's pre-activation, which is what makes them element-wise:

- dp (B, K, G, n): ds_{k,i} / dp_{g,i}
- dq (B, K, G, n): ds_{k,i} / dq_{g,i} (the same tensor as dp for the RNN and the LSTM,
  where the gate reads p + q; the GRU's candidate reads p_n + r * q_n)
- e (B, K, K, n): ds_{k,i} / ds'_{l,i}, the direct dependence on the previous state
  that does not go through q (LSTM: c_t = f c_{t-1} + ...; GRU: h_t = ... + z h_{t-1})

With them the full Jacobian is ds_t/ds_{t-1} v = dq * (W_hh v_h) + e * v (see
:func:`rtrl_rl.agents.cores.dense.jacobian_product`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch
from torch import Tensor


class DenseCell(ABC):
    """What a dense core needs from its cell: sizes, one step, and the coefficients."""

    name = "cell"
    gates = 1
    parts: tuple[str, ...] = ("h",)
    #: whether dp and dq are the same tensor (one Kronecker factor for W_ih and W_hh)
    shared_coefficients = True

    @abstractmethod
    def step(self, p: Tensor, q: Tensor, prev: Tensor) -> tuple[Tensor, Any]:
        """One step in autograd: p, q (B,G,n), prev (B,K,n) -> state (B,K,n) and a tuple of
        (B, n) values for ``coefficients``."""

    @abstractmethod
    def coefficients(self, saved: Any, prev: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """dp, dq (B,K,G,n) and e (B,K,K,n) from ``step``'s saved values (detached) and prev.

        Element-wise in the batch: the dense core passes T steps of B streams as T*B rows."""


class RNNCell(DenseCell):
    """h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh) (Elman; ``nn.RNNCell``)."""

    name = "rnn"

    def step(self, p: Tensor, q: Tensor, prev: Tensor) -> tuple[Tensor, Any]:
        h = torch.tanh(p[:, 0] + q[:, 0])
        return h.unsqueeze(1), (h,)

    def coefficients(self, saved: Any, prev: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        h = saved[0].detach()
        dp = (1 - h * h).view(h.shape[0], 1, 1, -1)
        return dp, dp, h.new_zeros(h.shape[0], 1, 1, h.shape[-1])


class GRUCell(DenseCell):
    """``nn.GRUCell``: gates (r, z, n); r = σ(p_r + q_r), z = σ(p_z + q_z),
    n = tanh(p_n + r ⊙ q_n), h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}."""

    name = "gru"
    gates = 3
    shared_coefficients = False

    def step(self, p: Tensor, q: Tensor, prev: Tensor) -> tuple[Tensor, Any]:
        rz = torch.sigmoid(p[:, :2] + q[:, :2])
        r, z = rz[:, 0], rz[:, 1]
        cand = torch.tanh(p[:, 2] + r * q[:, 2])
        h = cand + z * (prev[:, 0] - cand)
        return h.unsqueeze(1), (r, z, cand, q[:, 2])

    def coefficients(self, saved: Any, prev: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        r, z, cand, q_n = (v.detach() for v in saved)
        d_cand = (1 - z) * (1 - cand * cand)        # dh / d(candidate pre-activation)
        d_r = d_cand * q_n * r * (1 - r)
        d_z = (prev[:, 0] - cand) * z * (1 - z)
        dp = torch.stack([d_r, d_z, d_cand], 1).unsqueeze(1)
        dq = torch.stack([d_r, d_z, d_cand * r], 1).unsqueeze(1)
        return dp, dq, z.view(z.shape[0], 1, 1, -1)


class LSTMCell(DenseCell):
    """``nn.LSTMCell``: gates (i, f, g, o); c_t = f ⊙ c_{t-1} + i ⊙ g, h_t = o ⊙ tanh(c_t).
    State parts (h, c)."""

    name = "lstm"
    gates = 4
    parts = ("h", "c")

    def step(self, p: Tensor, q: Tensor, prev: Tensor) -> tuple[Tensor, Any]:
        a = p + q
        ifo = torch.sigmoid(a[:, (0, 1, 3)])
        i, f, o = ifo.unbind(1)
        g = torch.tanh(a[:, 2])
        c = f * prev[:, 1] + i * g
        tc = torch.tanh(c)
        return torch.stack([o * tc, c], 1), (i, f, g, o, tc)

    def coefficients(self, saved: Any, prev: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        i, f, g, o, tc = (v.detach() for v in saved)
        dc = torch.stack([g * i * (1 - i), prev[:, 1] * f * (1 - f), i * (1 - g * g), torch.zeros_like(i)], 1)
        dh_dc = o * (1 - tc * tc)
        dh = dc * dh_dc.unsqueeze(1)
        dh[:, 3] = tc * o * (1 - o)
        dp = torch.stack([dh, dc], 1)
        zero = torch.zeros_like(f)
        e = torch.stack([torch.stack([zero, dh_dc * f], 1), torch.stack([zero, f], 1)], 1)
        return dp, dp, e


CELLS: dict[str, DenseCell] = {cell.name: cell for cell in (RNNCell(), GRUCell(), LSTMCell())}
