"""minGRU (Feng et al. 2024, "Were RNNs all we needed?"), plain (not log-space) form:

    z_t = σ(W_z x_t + b_z)     h̃_t = W_h x_t + b_h     h_t = (1 - z_t) ⊙ h_{t-1} + z_t ⊙ h̃_t
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from rtrl_rl.agents.cores.base import ElementwiseCore


class MinGRU(ElementwiseCore):
    """minGRU core; (z, h̃) are stacked in ``weight`` (2n, d) and ``bias`` (2n).

    Initialisation keeps memory alive: the update-gate bias b_z = -``forget_bias`` (default
    3.0, so 1 - z ≈ σ(3) = 0.95 is the fraction of h kept per step, as an LSTM forget gate).
    """

    name = "mingru"
    gates = 2
    has_diag = False
    state_key = "h"

    def reset_parameters(self) -> None:
        """U(±1/sqrt(d)) weights; update-gate bias -``forget_bias``."""
        self._uniform(self.weight, self.input_size)
        self._uniform(self.bias, self.input_size)
        with torch.no_grad():
            self.bias[: self.hidden_size].fill_(-self.forget_bias)

    def sequence(self, pre: Tensor, s0: Tensor, keep: Tensor, diag: Optional[Tensor]):
        """The gates do not read h, so they are computed for all T at once; the loop is a
        linear scan, two tensor ops per step. act[t] holds (z_t, h̃_t)."""
        act = pre
        z, h_tilde = act[:, :, 0].sigmoid_(), act[:, :, 1]
        states, prev = torch.empty_like(h_tilde), torch.empty_like(h_tilde)
        h = s0
        for t in range(pre.shape[0]):
            h_prev = torch.mul(h, keep[t], out=prev[t])
            h = torch.addcmul(h_prev, z[t], h_tilde[t] - h_prev, out=states[t])
        return states, prev, act

    def derivatives(self, act: Tensor, prev: Tensor, states: Tensor, diag: Optional[Tensor]):
        """D_z = (h̃ - h_{t-1}) z (1-z), D_h = z, J = 1 - z."""
        z, h_tilde = act[:, :, 0], act[:, :, 1]
        one_minus_z = 1 - z
        return torch.stack([(h_tilde - prev) * z * one_minus_z, z], dim=2), one_minus_z

    def reference_step(self, x: Tensor, s_prev: Tensor) -> Tensor:
        """h_t from x_t and h_{t-1}, written out in plain autograd."""
        n = self.hidden_size
        z = torch.sigmoid(x @ self.weight[:n].t() + self.bias[:n])
        h_tilde = x @ self.weight[n:].t() + self.bias[n:]
        return (1 - z) * s_prev + z * h_tilde
