"""eLSTM (Irie, Gopalakrishnan & Schmidhuber, ICLR 2024); docs/rtrl.md, "The cores".

    z_t = tanh(W_z x_t + w_z ⊙ c_{t-1} + b_z)      f_t = σ(W_f x_t + w_f ⊙ c_{t-1} + b_f)
    c_t = f_t ⊙ c_{t-1} + (1 - f_t) ⊙ z_t           (the only recurrence: through c)
    o_t = σ(W_o [x_t ; c_t] + b_o)                  h_t = o_t ⊙ c_t  (output, feed-forward)
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from rtrl_rl.agents.cores.base import ElementwiseCore


class ELSTM(ElementwiseCore):
    """eLSTM core. Gates (z, f) are stacked in ``weight`` (2n, d), ``bias`` and the diagonal
    recurrent weights ``recurrent`` (2n); the output gate is ``out_weight`` (n, d+n), ``out_bias``.

    Initialisation keeps memory alive: the forget-gate bias b_f = ``forget_bias`` (default
    3.0, so f ≈ σ(3) = 0.95 and c decays over ~20 steps at first); the other weights
    follow PyTorch's U(±1/sqrt(fan_in)).
    """

    name = "elstm"
    gates = 2
    has_diag = True
    state_key = "c"

    def build(self) -> None:
        """The output gate's parameters (trained by ordinary same-step backprop)."""
        self.out_weight = nn.Parameter(torch.empty(self.hidden_size, self.input_size + self.hidden_size))
        self.out_bias = nn.Parameter(torch.empty(self.hidden_size))

    def reset_parameters(self) -> None:
        """U(±1/sqrt(fan_in)) weights; forget-gate bias set to ``forget_bias``."""
        n = self.hidden_size
        self._uniform(self.weight, self.input_size)
        self._uniform(self.bias, self.input_size)
        self._uniform(self.recurrent, n)
        self._uniform(self.out_weight, self.input_size + n)
        self._uniform(self.out_bias, self.input_size + n)
        with torch.no_grad():
            self.bias[n:].fill_(self.forget_bias)

    def sequence(self, pre: Tensor, s0: Tensor, keep: Tensor, diag: Optional[Tensor]):
        """The recurrence; act[t] holds (z_t, f_t). Six tensor ops per step."""
        states = s0.new_empty((pre.shape[0], *s0.shape))
        prev, act = torch.empty_like(states), torch.empty_like(pre)
        c = s0
        for t in range(pre.shape[0]):
            c_prev = torch.mul(c, keep[t], out=prev[t])
            gates = torch.addcmul(pre[t], diag, c_prev.unsqueeze(1), out=act[t])
            z, f = gates[:, 0].tanh_(), gates[:, 1].sigmoid_()
            c = torch.addcmul(z, f, c_prev - z, out=states[t])
        return states, prev, act

    def derivatives(self, act: Tensor, prev: Tensor, states: Tensor, diag: Optional[Tensor]):
        """D_z = (1-f)(1-z²), D_f = (c_{t-1}-z) f (1-f), J = f + D_z w_z + D_f w_f."""
        z, f = act[:, :, 0], act[:, :, 1]
        one_minus_f = 1 - f
        d = torch.stack([one_minus_f * (1 - z * z), (prev - z) * f * one_minus_f], dim=2)
        j = f + (d * diag).sum(2)
        return d, j

    def readout(self, x: Tensor, states: Tensor) -> Tensor:
        """h_t = σ(W_o [x_t ; c_t] + b_o) ⊙ c_t."""
        o = torch.sigmoid(nn.functional.linear(torch.cat([x, states], -1), self.out_weight, self.out_bias))
        return o * states

    def reference_step(self, x: Tensor, s_prev: Tensor) -> Tensor:
        """c_t from x_t and c_{t-1}, written out in plain autograd."""
        n = self.hidden_size
        w_z, w_f = self.weight[:n], self.weight[n:]
        z = torch.tanh(x @ w_z.t() + self.recurrent[:n] * s_prev + self.bias[:n])
        f = torch.sigmoid(x @ w_f.t() + self.recurrent[n:] * s_prev + self.bias[n:])
        return f * s_prev + (1 - f) * z
