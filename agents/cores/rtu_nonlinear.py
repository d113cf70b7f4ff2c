"""Non-linear RTU (Elelimy, White, Bowling et al., NeurIPS 2024), learned by exact RTRL.

The non-linearity sits inside the recurrence, per unit k (z = z¹ + i z², c = c¹ + i c²):

    z_t = λ ⊙ c_{t-1} + W x_t + b,     c¹_t = f(z¹_t),  c²_t = f(z²_t),     y_t = [c¹_t ; c²_t]

with λ = r e^{iθ} as in the linear RTU. The Jacobian per unit, w ↦ A_t(λ w) with
A_t(w) = f'(z¹) Re w + i f'(z²) Im w, is a general 2×2 block: still element-wise in the
unit index, but no longer a complex number. Any real-linear map of C is w ↦ μ w + ν conj(w)
(a pair of complex numbers, ν = 0 for a rotation-scaling), and the machinery of
``complex_scan.py`` runs with such maps: composition (μ₂, ν₂)∘(μ₁, ν₁) = (μ₂μ₁ + ν₂ conj(ν₁),
μ₂ν₁ + ν₂ conj(μ₁)), transpose (conj(μ), ν). Because A breaks the holomorphy, ∂c/∂W_im is
no longer i ∂c/∂W_re: both are carried (``dh/dW``, ``dh/dWi``; 4nd floats per stream, twice
the linear RTU's), as the paper's RTRL does.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor

from rtrl_rl.agents.cores import complex_scan as cs
from rtrl_rl.agents.cores.carry import Carry
from rtrl_rl.agents.cores.rtu import RTU

#: f and its derivative, as functions of the pre-activation
ACTIVATIONS = {"relu": (torch.relu, lambda z: (z > 0).to(z.dtype)),
               "tanh": (torch.tanh, lambda z: 1 - torch.tanh(z) ** 2)}
SENSITIVITIES = ("W", "Wi", "b", "bi", "nu", "theta")


def _apply(mu: Tensor, nu: Optional[Tensor], w: Tensor) -> Tensor:
    """(μ, ν)(w) = μ w + ν conj(w)."""
    return mu * w if nu is None else mu * w + nu * w.conj()


def _split(w: Tensor, a_re: Tensor, a_im: Tensor) -> Tensor:
    """A(w) = a_re Re w + i a_im Im w (A is symmetric: also its own transpose)."""
    return torch.complex(a_re * w.real, a_im * w.imag)


class _Cell:
    """One segment of the non-linear recurrence and its derivatives (see the module docstring)."""

    def __init__(self, x, c0, keep, weight, bias, nu, theta, activation: str) -> None:
        T, B, d_in = x.shape
        f, df = ACTIVATIONS[activation]
        lam = cs.eigenvalues(nu, theta)
        p = cs.to_complex(torch.addmm(bias, x.reshape(T * B, d_in), weight.t()).view(T, B, -1))
        self.prev, z = torch.empty_like(p), torch.empty_like(p)
        states = torch.empty(p.shape[:2] + (2 * p.shape[2],), dtype=x.dtype, device=x.device)
        keep = keep.unsqueeze(-1).to(x.dtype)
        c = cs.to_complex(c0)
        for t in range(T):
            torch.mul(c, keep[t], out=self.prev[t])
            torch.addcmul(p[t], lam, self.prev[t], out=z[t])
            states[t] = f(cs.to_pairs(z[t]))
            c = cs.to_complex(states[t])
        self.states, self.z, self.lam, self.keep, self.df = states, z, lam, keep, df
        self.g, self.nu, self.theta = None, nu, theta

    def derive(self) -> None:
        """A_t's diagonal, J_t = (μ_t, ν_t) on the carry path, and the direct terms."""
        self.a_re, self.a_im = self.df(self.z.real), self.df(self.z.imag)
        lam = self.lam * self.keep
        self.mu = 0.5 * (self.a_re + self.a_im) * lam
        self.nu_map = 0.5 * (self.a_re - self.a_im) * lam.conj()
        # ν and θ act on z through -exp(ν) λ c_{t-1} and i exp(θ) λ c_{t-1}: D = A(factor · c_{t-1})
        self.direct = [_split(f * self.prev, self.a_re, self.a_im)
                       for f in (-torch.exp(self.nu) * self.lam, 1j * torch.exp(self.theta) * self.lam)]
        self.terms = [(self.prev, [-torch.exp(self.nu) * self.lam, 1j * torch.exp(self.theta) * self.lam])]

    gain = staticmethod(lambda coef: coef)  # no input gain
    direct_sums = cs.ComplexCell.direct_sums


def _suffix_maps(mu: Tensor, nu: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """q_t = J_{T-1}∘...∘J_{t+1} (q_{T-1} = identity) as (μ, ν) (T,B,n) each, and P = q_0∘J_0."""
    qm, qn = torch.empty_like(mu), torch.empty_like(nu)
    qm[-1], qn[-1] = 1, 0
    for t in range(mu.shape[0] - 2, -1, -1):
        m2, n2, m1, n1 = qm[t + 1], qn[t + 1], mu[t + 1], nu[t + 1]
        qm[t], qn[t] = m2 * m1 + n2 * n1.conj(), m2 * n1 + n2 * m1.conj()
    return qm, qn, qm[0] * mu[0] + qn[0] * nu[0].conj(), qm[0] * nu[0] + qn[0] * mu[0].conj()


def _update(sens, cell: _Cell, pm: Tensor, pn: Tensor, qm: Tensor, qn: Tensor, rows: slice) -> list[Tensor]:
    """S' = P(S) + Σ_t q_t(A_t δ_t) for every sensitivity, over the steps ``rows``."""
    s_w, s_wi, s_b, s_bi, s_nu, s_theta = sens
    a_re, a_im, x = cell.a_re[rows], cell.a_im[rows], cell.x[rows]
    coef_re, coef_im = (qm + qn) * a_re, 1j * (qm - qn) * a_im  # q(A(1)), q(A(i))
    small = lambda s, total: cs.to_pairs(_apply(pm, pn, cs.to_complex(s)) + total)
    return [cs._weight_update(s_w, pm, coef_re, x, pn), cs._weight_update(s_wi, pm, coef_im, x, pn),
            small(s_b, coef_re.sum(0)), small(s_bi, coef_im.sum(0)),
            *(small(s, _apply(qm, qn, d[rows]).sum(0)) for s, d in zip((s_nu, s_theta), cell.direct))]


def _carry_gradients(v: Tensor, sens: list[Tensor]) -> list[Tensor]:
    """Σ_b Re(conj(v_b) S_b) for each sensitivity, as the weight, bias, ν, θ gradients."""
    s_w, s_wi, s_b, s_bi, s_nu, s_theta = sens
    real_rows = lambda g: g.view(-1, 2, *g.shape[1:])[:, 0]  # the Re(conj(v) S) entries
    g_w = torch.stack([real_rows(cs._weight_carry_gradient(v, s)) for s in (s_w, s_wi)], 1).flatten(0, 1)
    read = lambda s: (cs.to_complex(s).conj() * v).real.sum(0)
    return [g_w, torch.stack([read(s_b), read(s_bi)], -1).flatten(-2), read(s_nu), read(s_theta)]


class NonlinearRTRL(torch.autograd.Function):
    """The non-linear RTU's recurrence plus exact RTRL (inputs and outputs as
    :class:`complex_scan.ComplexDiagonalRTRL`, without γ; sensitivities S_W, S_Wi, S_b, S_bi,
    S_ν, S_θ)."""

    @staticmethod
    def forward(ctx: Any, options: tuple[str, str, str], x: Tensor, c0: Tensor, keep: Tensor, weight: Tensor,
                bias: Tensor, nu: Tensor, theta: Tensor, *sens: Tensor):
        with torch.no_grad():
            cell = _Cell(x, c0, keep, weight, bias, nu, theta, options[2])
            if not (sens or any(ctx.needs_input_grad)):
                return (cell.states,)
            cell.derive()
            cell.x = x
            new_sens = list(sens)
            if sens and options[1] == "step":
                one, zero = torch.ones_like(cell.mu[:1]), torch.zeros_like(cell.mu[:1])
                for t in range(x.shape[0]):
                    new_sens = _update(new_sens, cell, cell.mu[t], cell.nu_map[t], one, zero, slice(t, t + 1))
            elif sens:
                qm, qn, pm, pn = _suffix_maps(cell.mu, cell.nu_map)
                new_sens = _update(new_sens, cell, pm, pn, qm, qn, slice(None))
        ctx.set_materialize_grads(False)
        ctx.cell, ctx.options, ctx.num_sens = cell, options, len(sens)
        ctx.one_step = bool(sens) and x.shape[0] == 1
        ctx.save_for_backward(x, weight, *(new_sens if ctx.one_step else sens))
        ctx.mark_non_differentiable(*new_sens)
        return (cell.states, *new_sens) if sens else (cell.states,)

    @staticmethod
    def backward(ctx: Any, grad_states: Optional[Tensor], *unused: Any):
        x, weight, *sens = ctx.saved_tensors
        cell, (input_grad, path, _) = ctx.cell, ctx.options
        e = cs.to_complex(grad_states) if grad_states is not None else torch.zeros_like(cell.z)
        with torch.no_grad():
            e_pre = _split(e, cell.a_re, cell.a_im)  # A_t(e_t): the same-step gradient at z
            if ctx.one_step:
                grads = _carry_gradients(e[0], sens)
                grad_x = cs._input_gradient(cell, e_pre, weight) if ctx.needs_input_grad[1] else None
                return (None, grad_x, None, None, *grads) + (None,) * ctx.num_sens
            stepwise = bool(sens) and path == "step"
            a_pre = None
            if not (stepwise and input_grad == "step"):
                a = torch.empty_like(e)
                a[-1] = e[-1]
                for t in range(e.shape[0] - 2, -1, -1):  # a_t = e_t + J_{t+1}ᵀ a_{t+1}, Jᵀ = (conj μ, ν)
                    a[t] = e[t] + _apply(cell.mu[t + 1].conj(), cell.nu_map[t + 1], a[t + 1])
                a_pre = _split(a, cell.a_re, cell.a_im)
            grads = cs._direct_gradients(cell, e_pre if stepwise else a_pre, x)
            if sens:
                if stepwise:
                    carry = None
                    one, zero = torch.ones_like(cell.mu[:1]), torch.zeros_like(cell.mu[:1])
                    for t in range(e.shape[0]):
                        part = _carry_gradients(_apply(cell.mu[t].conj(), cell.nu_map[t], e[t]), sens)
                        carry = part if carry is None else cs.scan._add(carry, part)
                        if t < e.shape[0] - 1:
                            sens = _update(sens, cell, cell.mu[t], cell.nu_map[t], one, zero, slice(t, t + 1))
                else:
                    carry = _carry_gradients(_apply(cell.mu[0].conj(), cell.nu_map[0], a[0]), sens)
                grads = cs.scan._add(grads, carry)
            grad_x = None
            if ctx.needs_input_grad[1]:
                grad_x = cs._input_gradient(cell, e_pre if input_grad == "step" else a_pre, weight)
        return (None, grad_x, None, None, *grads) + (None,) * ctx.num_sens


class RTUNonlinear(RTU):
    """Non-linear RTU core: ``weight`` = rows W¹[0], W²[0], W¹[1], ... (2n, d), ``bias`` (2n),
    ``nu``, ``theta`` (n). Output [c¹ ; c²] as pairs (2n). Option ``activation`` f: relu
    (default, as the authors' code) or tanh."""

    name = "rtu_nonlinear"
    activations = ACTIVATIONS

    def sensitivity_shapes(self) -> dict[str, tuple[int, ...]]:
        """dh/dW, dh/dWi (d, 2n: transposed) and dh/db, dh/dbi, dh/dnu, dh/dtheta (2n) per stream."""
        if self.learning != "rtrl":
            return {}
        two_n = 2 * self.hidden_size
        return {f"dh/d{k}": ((self.input_size, two_n) if k.startswith("W") else (two_n,)) for k in SENSITIVITIES}

    def forward(self, x: Tensor, carry: Carry, reset: Tensor, truncate: bool = False) -> tuple[Tensor, Carry]:
        """Run T steps: x (T,B,d), reset (T,B) bool -> y (T,B,2n), new carry.
        ``truncate``: accept a state-only carry with gradients enabled (the gradient is
        then truncated at the segment start; see :meth:`RecurrentCore.validate`)."""
        has_sens = self.validate(x, carry, reset, truncate)
        keys = list(self.sensitivity_shapes()) if has_sens else []
        path = self.rtrl_path if self.rtrl_path != "auto" else ("step" if x.shape[0] == 1 else "segment")
        outputs = NonlinearRTRL.apply((self.input_grad, path, self.activation), x, carry["h"], (~reset).to(x.dtype),
                                      self.weight, self.bias, self.nu, self.theta,
                                      *(carry[k].contiguous() for k in keys))
        new_carry = Carry({"h": outputs[0][-1].detach()})
        new_carry.update(zip(keys, outputs[1:]))
        return outputs[0], new_carry

    def reference_step(self, x: Tensor, s_prev: Tensor) -> Tensor:
        """One step in plain real autograd: f of the linear RTU's step (which has no γ)."""
        return ACTIVATIONS[self.activation][0](super().reference_step(x, s_prev))

    def readout(self, x: Tensor, states: Tensor) -> Tensor:
        """y = [c¹ ; c²]: f is already inside the recurrence."""
        return states
