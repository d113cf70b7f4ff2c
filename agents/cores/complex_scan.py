"""Exact RTRL for complex-diagonal linear recurrences (the LRU and the linear RTU).

    s_t = λ ⊙ s_{t-1} + g ⊙ p_t,   p_t = W x_t + b,   W = W_re + i W_im,  b = b_re + i b_im
    λ_k = exp(-exp(ν_k) + i exp(θ_k)),   g_k = exp(γ_k) (the LRU's normalisation) or 1 (RTU)

Each complex unit is a 2×2 real block (a rotation-scaling), so the recurrence is still
element-wise in the unit index and the machinery of ``scan.py`` carries over with complex
J, D, adjoint and suffix products (small (T, B, n) tensors, torch complex arithmetic:
``scan.adjoint`` and ``scan.suffix_products`` are reused as they are). Everything kept
between calls is real, each complex number stored as its (Re, Im) pair: a vector z of n
units is [Re z_0, Im z_0, Re z_1, Im z_1, ...] (2n reals), so the carry survives
``torch.save``, processes and ``.to(device)`` like the others, and ``torch.view_as_complex``
reads it without a copy.

Sensitivities (per stream, complex, stored as pairs):

==========  =====================  ======================  ===================
parameter   shape                  D_t u_t (direct term)   sensitivity
==========  =====================  ======================  ===================
W_re, W_im  (2n, d) rows re, im     g x_tᵀ                  S_W (B, d, 2n)
b_re, b_im  (2n,)                  g                       S_b (B, 2n)
ν           (n,)                   -exp(ν) λ s_{t-1}       S_ν (B, 2n)
θ           (n,)                   i exp(θ) λ s_{t-1}      S_θ (B, 2n)
γ (LRU)     (n,)                   g p_t                   S_γ (B, 2n)
==========  =====================  ======================  ===================

S_W = ∂s/∂W_re; since p depends on W_im through i x, ∂s/∂W_im = i S_W needs no storage
(likewise for b). The recursion is S_t = J_t S_{t-1} + D_t u_t with J_t = λ (0 after a
reset). With E_t = ∂L/∂Re s_t + i ∂L/∂Im s_t, a real parameter's gradient is
Σ_t Re(conj(E_t) S_t), W_im's is Σ_t -Im(conj(E_t) S_W,t), and the adjoint runs with
conj(J): a_t = E_t + conj(J_{t+1}) a_{t+1}.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from rtrl_rl.agents.cores import scan

#: names of the per-stream sensitivities, in the order the Function takes them
SENSITIVITIES = ("W", "b", "nu", "theta", "gamma")


def to_complex(pairs: Tensor) -> Tensor:
    """[Re z_0, Im z_0, Re z_1, ...] (..., 2n) -> z (..., n) complex, a view (no copy) when contiguous.

    A complex view needs an even storage offset: a contiguous slice that starts at an odd
    one (an incoming gradient can be such a slice) is copied first."""
    pairs = pairs.contiguous()
    if pairs.storage_offset() % 2:
        pairs = pairs.clone()
    return torch.view_as_complex(pairs.view(*pairs.shape[:-1], -1, 2))


def to_pairs(z: Tensor) -> Tensor:
    """z (..., n) complex -> [Re z_0, Im z_0, Re z_1, ...] (..., 2n) real, a view when contiguous."""
    return torch.view_as_real(z.resolve_conj()).reshape(*z.shape[:-1], -1)


def eigenvalues(nu: Tensor, theta: Tensor) -> Tensor:
    """λ = exp(-exp(ν) + i exp(θ)) (n,) complex: modulus exp(-exp(ν)) < 1, phase exp(θ) > 0."""
    return torch.exp(torch.complex(-torch.exp(nu), torch.exp(theta)))


def _weight_update(s: Tensor, scale: Tensor, coef: Tensor, x: Tensor, scale_conj: Tensor | None = None) -> Tensor:
    """S' = scale ⊙ S (+ scale_conj ⊙ conj(S)) + Σ_t x_t coef_tᵀ for S_W (B, d, 2n), as a new tensor.

    S_W is kept transposed, d outermost and the units' (Re, Im) pairs innermost, so that
    the complex scaling is one complex multiply (each unit's 2×2 rotation-scaling) and
    the sum over steps is one real product (d, T) × (T, 2n) with no wasted flops.
    scale (B, n) complex; coef (T, B, n) complex; ``scale_conj`` (B, n) makes the map any
    real-linear one (a general 2×2 block, the non-linear RTU's). Stream by stream for large blocks (each
    block read while in cache, the product added in place), whole-batch ops otherwise,
    as ``scan.update``.
    """
    new = torch.empty_like(s)
    lefts, rights = x.permute(1, 2, 0), to_pairs(coef).transpose(0, 1)  # (B, d, T), (B, T, 2n)
    s_c, new_c, scale = to_complex(s), to_complex(new), scale.unsqueeze(1)  # (B, d, n), (B, 1, n)
    conj = scale_conj.unsqueeze(1) if scale_conj is not None else None
    if scan.per_stream(s):
        for b, (block, out, out_c, left, right) in enumerate(zip(s_c.unbind(0), new.unbind(0), new_c.unbind(0),
                                                                lefts.unbind(0), rights.unbind(0))):
            torch.mul(block, scale[b], out=out_c)
            if conj is not None:
                out_c.addcmul_(block.conj(), conj[b])
            out.addmm_(left, right)
        return new
    torch.mul(s_c, scale, out=new_c)
    if conj is not None:
        new_c.addcmul_(s_c.conj(), conj)
    return new.baddbmm_(lefts, rights)


def _weight_carry_gradient(v: Tensor, s: Tensor) -> Tensor:
    """The weight rows' gradient (2n, d) from S_W (B, d, 2n) read with v (B, n) complex.

    Re row of unit k: Σ_b Re(conj(v_b) S_b); Im row: Σ_b -Im(conj(v_b) S_b), i.e. the
    pairs of conj(Σ_b S_b conj(v_b)), accumulated in one complex multiply-add per stream.
    """
    s_c, w = to_complex(s), v.conj().resolve_conj().unsqueeze(1)  # (B, d, n), (B, 1, n)
    if scan.per_stream(s):
        blocks, factors = s_c.unbind(0), w.unbind(0)
        total = torch.mul(blocks[0], factors[0])
        for block, factor in zip(blocks[1:], factors[1:]):
            total.addcmul_(block, factor)
    else:
        total = (s_c * w).sum(0)
    return to_pairs(total.conj()).t()


class ComplexCell:
    """The per-segment quantities of the recurrence, computed once in the forward pass.

    x (T,B,d), s0 (B,2n) pairs, keep (T,B); parameters as in the module docstring
    (``gamma`` None: g = 1). Holds p, the states s and s_{t-1} (complex), and after
    :meth:`derive` J (with resets) and the direct terms of ν, θ, γ.
    """

    def __init__(self, x: Tensor, s0: Tensor, keep: Tensor, weight: Tensor, bias: Tensor, nu: Tensor,
                 theta: Tensor, gamma: Tensor | None) -> None:
        T, B, d_in = x.shape
        self.lam = eigenvalues(nu, theta)
        self.g = torch.exp(gamma) if gamma is not None else None
        self.p = to_complex(torch.addmm(bias, x.reshape(T * B, d_in), weight.t()).view(T, B, -1))
        self.u = self.p * self.g if self.g is not None else self.p
        self.states, self.prev = torch.empty_like(self.u), torch.empty_like(self.u)
        s = to_complex(s0)
        self.keep = keep.unsqueeze(-1).to(self.u.real.dtype)
        for s_t, prev_t, u_t, k_t in zip(self.states.unbind(0), self.prev.unbind(0), self.u.unbind(0),
                                         self.keep.unbind(0)):
            torch.mul(s, k_t, out=prev_t)
            s = torch.addcmul(u_t, self.lam, prev_t, out=s_t)
        self.nu, self.theta, self.has_gamma = nu, theta, gamma is not None

    def derive(self) -> None:
        """J and the direct terms, needed for RTRL and gradients only (not for acting).

        D_ν = -exp(ν) λ s_{t-1} and D_θ = i exp(θ) λ s_{t-1} share the base s_{t-1}: each
        sum over steps is taken once per base and scaled per unit (``terms``: pairs of a
        base (T,B,n) and its per-unit factors, None meaning 1).
        """
        self.jc = self.lam * self.keep  # (T, B, n): J_t on the carry path, 0 where an episode starts
        self.terms: list[tuple[Tensor, list[Tensor | None]]] = [
            (self.prev, [-torch.exp(self.nu) * self.lam, 1j * torch.exp(self.theta) * self.lam])]
        if self.has_gamma:
            self.terms.append((self.u, [None]))

    def direct_sums(self, reduce) -> list[Tensor]:
        """``reduce(base)`` per base, scaled by each factor: one entry per ν, θ (, γ)."""
        out = []
        for base, factors in self.terms:
            total = reduce(base)
            out += [total if f is None else f * total for f in factors]
        return out

    def gain(self, coef: Tensor) -> Tensor:
        """coef ⊙ g (g real, so conj(g) = g): the W and b coefficient from a state coefficient."""
        return coef * self.g if self.g is not None else coef


def _update(sens: list[Tensor | None], cell: ComplexCell, scale: Tensor, q: Tensor, x: Tensor,
            rows: slice) -> list[Tensor | None]:
    """S' = scale ⊙ S + Σ_t q_t D_t u_t for every sensitivity, over the steps ``rows``.

    Segment form: scale = P, q = suffix products; one step t: scale = J_t, q = 1.
    """
    s_w, s_b, *s_diag = sens
    coef = cell.gain(q)
    new = [_weight_update(s_w, scale, coef, x[rows]), to_pairs(scale * to_complex(s_b) + coef.sum(0))]
    sums = cell.direct_sums(lambda base: (q * base[rows]).sum(0))
    for s, total in zip(s_diag, sums):
        new.append(None if s is None else to_pairs(scale * to_complex(s) + total))
    return new + [None] * (len(sens) - len(new))


def _carry_gradients(v: Tensor, sens: list[Tensor | None]) -> list[Tensor | None]:
    """Σ_b of each sensitivity read with v (B, n) complex: the W, b rows, then ν, θ, γ."""
    s_w, s_b, *s_diag = sens
    read = (to_complex(s_b).conj() * v).sum(0)  # conj(S) v: Re is the re-row gradient, Im the im-row one
    out = [_weight_carry_gradient(v, s_w), to_pairs(read)]
    return out + [None if s is None else (to_complex(s).conj() * v).real.sum(0) for s in s_diag]


def _direct_gradients(cell: ComplexCell, coef: Tensor, x: Tensor) -> list[Tensor | None]:
    """Σ_t Re(conj(coef_t) D_t u_t) for W, b (rows in pairs) and ν, θ, γ, for coef (T,B,n)."""
    T, B, n = coef.shape
    flat = to_pairs(cell.gain(coef)).reshape(T * B, 2 * n)
    grads = [flat.t() @ x.reshape(T * B, -1), flat.sum(0)]
    # Σ_{t,b} Re(conj(coef) f base) = Re(f Σ_{t,b} conj(coef) base), vecdot conjugating coef
    flat_coef = coef.reshape(T * B, n)
    sums = cell.direct_sums(lambda base: torch.linalg.vecdot(flat_coef, base.reshape(T * B, n), dim=0))
    return grads + [total.real for total in sums]


def _input_gradient(cell: ComplexCell, coef: Tensor, weight: Tensor) -> Tensor:
    """x's gradient (T,B,d) from a state coefficient (T,B,n): Re(conj(g coef) ∂p/∂x)."""
    T, B, n = coef.shape
    return (to_pairs(cell.gain(coef)).reshape(T * B, 2 * n) @ weight).view(T, B, -1)


class ComplexDiagonalRTRL(torch.autograd.Function):
    """The recurrence plus exact RTRL; backward maps dL/ds_t (T,B,2n pairs) to gradients.

    Inputs: options (input_grad "step"|"segment", path "segment"|"step"), x (T,B,d),
    s0 (B,2n), keep (T,B), weight (2n,d), bias (2n), nu, theta (n), gamma (n) or None, then
    the sensitivities S_W, S_b, S_ν, S_θ, S_γ (S_γ None without γ), or none (no RTRL).
    Outputs: states (T,B,2n) pairs, then the new sensitivities if any were given.
    """

    @staticmethod
    def forward(ctx: Any, options: tuple[str, str], x: Tensor, s0: Tensor, keep: Tensor, weight: Tensor,
                bias: Tensor, nu: Tensor, theta: Tensor, gamma: Tensor | None, *sens: Tensor | None):
        with torch.no_grad():
            cell = ComplexCell(x, s0, keep, weight, bias, nu, theta, gamma)
            states = to_pairs(cell.states)
            if not (sens or any(ctx.needs_input_grad)):  # acting: no sensitivities, no gradient
                return (states,)
            cell.derive()
            new_sens: list = []
            if sens:
                if options[1] == "step":
                    new_sens = list(sens)
                    one = torch.ones_like(cell.jc[:1])
                    for t in range(x.shape[0]):
                        new_sens = _update(new_sens, cell, cell.jc[t], one, x, slice(t, t + 1))
                else:
                    q, p = scan.suffix_products(cell.jc)
                    new_sens = _update(list(sens), cell, p, q, x, slice(None))
        ctx.set_materialize_grads(False)
        ctx.cell, ctx.options, ctx.has_gamma, ctx.num_sens = cell, options, gamma is not None, len(sens)
        ctx.one_step = bool(sens) and x.shape[0] == 1  # backward from the new sensitivities (see scan.py)
        ctx.save_for_backward(x, weight, *(new_sens if ctx.one_step else sens))
        outputs = [states] + [s for s in new_sens if s is not None]
        ctx.mark_non_differentiable(*outputs[1:])
        return tuple(outputs)

    @staticmethod
    def backward(ctx: Any, grad_states: Tensor | None, *unused: Any):
        x, weight, *saved = ctx.saved_tensors
        cell, (input_grad, path) = ctx.cell, ctx.options
        e = to_complex(grad_states) if grad_states is not None else torch.zeros_like(cell.jc)
        sens = list(saved) + [None] * (ctx.num_sens - len(saved)) if ctx.num_sens else None
        with torch.no_grad():
            if ctx.one_step:
                grads = _carry_gradients(e[0], sens)
                grad_x = _input_gradient(cell, e, weight) if ctx.needs_input_grad[1] else None
                return _outputs(ctx, grad_x, grads)
            stepwise = sens is not None and path == "step"
            a = None if (stepwise and input_grad == "step") else scan.adjoint(e, cell.jc.conj().resolve_conj())
            grads = _direct_gradients(cell, e if stepwise else a, x)
            if sens is not None:
                carry = (_replay_steps(sens, cell, e, x) if stepwise
                         else _carry_gradients(cell.jc[0].conj() * a[0], sens))
                grads = scan._add(grads, carry)
            grad_x = None
            if ctx.needs_input_grad[1]:
                grad_x = _input_gradient(cell, e if input_grad == "step" else a, weight)
        return _outputs(ctx, grad_x, grads)


def _outputs(ctx: Any, grad_x: Tensor | None, grads: list[Tensor | None]) -> tuple:
    """The backward's return tuple: options, x, s0, keep, weight, bias, ν, θ, γ, sensitivities."""
    g_gamma = grads[4] if ctx.has_gamma else None
    return (None, grad_x, None, None, grads[0], grads[1], grads[2], grads[3], g_gamma) + (None,) * ctx.num_sens


def _replay_steps(sens: list[Tensor | None], cell: ComplexCell, e: Tensor, x: Tensor) -> list[Tensor | None]:
    """Σ_t Re(conj(conj(J_t) E_t) S_{t-1}): the per-step recursion replayed from S_0."""
    total = None
    one = torch.ones_like(cell.jc[:1])
    for t in range(e.shape[0]):
        grads = _carry_gradients(cell.jc[t].conj() * e[t], sens)
        total = grads if total is None else scan._add(total, grads)
        if t < e.shape[0] - 1:
            sens = _update(sens, cell, cell.jc[t], one, x, slice(t, t + 1))
    return total
