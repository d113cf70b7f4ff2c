"""Exact RTRL for element-wise cores: the segment form and the per-step recursion.

Shared by every element-wise core (docs/rtrl.md, "Per-step form", "Segment form"). A core
describes one cell with G gates over n units: ``sequence`` runs the recurrence and
``derivatives`` gives, per step, D (T, B, G, n) = ds_t/d(gate pre-activation) and the
diagonal Jacobian J (T, B, n) = ds_t/ds_{t-1}. Each gate g has three parameter kinds,
stacked over gates, each with its own input u and per-stream sensitivity:

=========  ===========  ====================  ===================
parameter  shape        input u_t             sensitivity
=========  ===========  ====================  ===================
W          (G*n, d)     x_t (outer product)   (B, G*n, d)
b          (G*n,)       1                     (B, G*n)
w (diag)   (G*n,)       s_{t-1}, element-wise  (B, G*n)
=========  ===========  ====================  ===================

The recursion is S_t = J_t ⊙ S_{t-1} + D_t ⊙ u_t. A reset at step t sets s_{t-1} := 0
and S_{t-1} := 0, i.e. J_t := 0 on the carry path (``Jc`` below).
"""

from __future__ import annotations

from typing import Any, Optional, Protocol

import torch
from torch import Tensor


#: Per-stream block size (elements of one stream's W sensitivity, G*n*d) from which the
#: sensitivity passes loop over streams on the CPU. Large blocks: a loop reads S once with
#: the block in cache, and the few microseconds of Python per stream are negligible. Small
#: blocks with many streams (the memory tasks: 128 streams of 2*64*69) are dominated by
#: that per-stream overhead, so whole-batch tensor ops win although they stream S once more.
PER_STREAM_MIN_BLOCK = 1 << 16


def per_stream(s: Tensor) -> bool:
    """Whether the sensitivity ``s`` (B, G*n, d) is processed stream by stream.

    Only on the CPU: on a GPU a loop over streams would launch kernels per stream (B = 256
    in the GPU benchmark), while one batched kernel keeps the device busy.
    """
    return s.device.type == "cpu" and s[0].numel() >= PER_STREAM_MIN_BLOCK


class Cell(Protocol):
    """What a core tells the machinery about its cell."""

    gates: int

    def sequence(self, pre: Tensor, s0: Tensor, keep: Tensor, diag: Optional[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """Run the recurrence: pre (T,B,G,n), s0 (B,n), keep (T,B,1) -> states, prev (T,B,n), act (T,B,G,n)."""

    def derivatives(self, act: Tensor, prev: Tensor, states: Tensor, diag: Optional[Tensor]) -> tuple[Tensor, Tensor]:
        """Per-step D (T,B,G,n) and diagonal Jacobian J (T,B,n), given the sequence's outputs."""


def adjoint(e: Tensor, jc: Tensor) -> Tensor:
    """Backward scan a_t = e_t + J_{t+1} ⊙ a_{t+1} (a_T = e_T): (T,B,n) -> (T,B,n).

    It is truncated BPTT's state gradient inside the segment; resets are cut by Jc = 0.
    """
    a = torch.empty_like(e)
    a[-1] = e[-1]
    _scan(e.unbind(0), jc.unbind(0), a.unbind(0))
    return a


def _scan(src: tuple[Tensor, ...], jc: tuple[Tensor, ...], out: tuple[Tensor, ...]) -> None:
    """out[t] = src[t] + jc[t+1] ⊙ out[t+1] for t = T-2 ... 0 (out[T-1] already set).

    The per-step slices come from one ``unbind`` each: indexing in the loop would cost
    as much as the small multiply-adds themselves.
    """
    for t in range(len(src) - 2, -1, -1):
        torch.addcmul(src[t], jc[t + 1], out[t + 1], out=out[t])


def suffix_products(jc: Tensor) -> tuple[Tensor, Tensor]:
    """q_t = prod_{t<j<=T} J_j (T,B,n) and P = prod_{1<=j<=T} J_j (B,n).

    A loop of T small products: faster on CPU than torch.cumprod, and exact with zeros.
    """
    q = torch.empty_like(jc)
    q[-1] = 1
    steps, factors = q.unbind(0), jc.unbind(0)
    for t in range(jc.shape[0] - 2, -1, -1):
        torch.mul(steps[t + 1], factors[t + 1], out=steps[t])
    return q, steps[0] * factors[0]


def update(sens: list[Optional[Tensor]], scale: Tensor, coef: Tensor, x: Tensor, prev: Tensor,
           gates: int) -> list[Optional[Tensor]]:
    """New sensitivities S' = scale ⊙ S + Sum_t coef_t ⊙ u_t for W, b and w, as new tensors.

    One update serves both forms: the segment form (scale = P, coef_t = q_t ⊙ D_t) and one
    step of the per-step recursion (T = 1, scale = J_t, coef = D_t).
    scale (B,n); coef (T,B,G,n); x (T,B,d); prev (T,B,n).

    Stream by stream (large blocks), each S_b block is read once: the scaled block is
    written and the matrix multiply adds Sum_t coef_t x_tᵀ into it in place while it is in
    cache (no temporary product). The per-stream slices come from one ``unbind`` each,
    since indexing inside the loop costs as much as a small op.
    """
    T, B, G, n = coef.shape
    s_w, s_b, s_diag = sens
    new_w = torch.empty_like(s_w)
    view, new_view = s_w.view(B, G, n, -1), new_w.view(B, G, n, -1)
    scale4 = scale.view(B, 1, n, 1)
    lefts, rights = coef.view(T, B, G * n).permute(1, 2, 0), x.transpose(0, 1)  # (B, G*n, T), (B, T, d)
    if per_stream(s_w):
        blocks = zip(view.unbind(0), new_view.unbind(0), new_w.unbind(0), scale4.unbind(0),
                     lefts.unbind(0), rights.unbind(0))
        for block, new_block, new_flat, scale_b, left, right in blocks:
            torch.mul(block, scale_b, out=new_block)
            new_flat.addmm_(left, right)
    else:
        torch.mul(view, scale4, out=new_view)
        new_w.baddbmm_(lefts, rights)
    new = [new_w, _scaled_sum(s_b, scale, coef)]
    new.append(None if s_diag is None else _scaled_sum(s_diag, scale, coef * prev.unsqueeze(2)))
    return new


def _scaled_sum(s: Tensor, scale: Tensor, coef: Tensor) -> Tensor:
    """scale ⊙ s + Sum_t coef_t for a small (B, G*n) sensitivity; coef (T,B,G,n)."""
    B, n = scale.shape
    return torch.addcmul(coef.sum(0), s.view(B, -1, n), scale.view(B, 1, n)).view_as(s)


def carry_gradients(v: Tensor, sens: list[Optional[Tensor]], gates: int) -> list[Optional[Tensor]]:
    """Sum_b v[b,k] S[b,g,k,...] for each sensitivity: the part truncated BPTT drops.

    A loop over streams of in-place multiply-adds reads S once and keeps the (G*n, d)
    accumulator in cache; einsum would first copy S into another layout.
    """
    B, n = v.shape
    out: list[Optional[Tensor]] = []
    for s in sens:
        if s is None:
            out.append(None)
            continue
        view, v4 = s.view(B, gates, n, -1), v.view(B, 1, n, 1)
        if s.dim() < 3 or not per_stream(s):  # biases and diagonals are always small
            out.append((view * v4).sum(0).view(s.shape[1:]))
            continue
        blocks, factors = view.unbind(0), v4.unbind(0)
        total = torch.mul(blocks[0], factors[0])
        for block, factor in zip(blocks[1:], factors[1:]):
            total.addcmul_(block, factor)
        out.append(total.view(s.shape[1:]))
    return out


def direct_gradients(cd: Tensor, x: Tensor, prev: Tensor, has_diag: bool) -> list[Optional[Tensor]]:
    """Sum_t (coef_t ⊙ D_t) u_t^T for W, b, w in one matmul, given cd = coef ⊙ D (T,B,G,n)."""
    T, B, G, n = cd.shape
    flat = cd.reshape(T * B, G * n)
    g_w = flat.t() @ x.reshape(T * B, -1)
    g_b = flat.sum(0)
    g_diag = (cd * prev.unsqueeze(2)).sum((0, 1)).reshape(G * n) if has_diag else None
    return [g_w, g_b, g_diag]


def segment_update(sens, jc, d, x, prev, gates: int) -> list[Optional[Tensor]]:
    """Segment form of the carry: S_T = P ⊙ S_0 + Sum_t (q_t ⊙ D_t) u_t^T (one matmul per stream)."""
    q, p = suffix_products(jc)
    return update(sens, p, d * q.unsqueeze(2), x, prev, gates)


def step_updates(sens, jc, d, x, prev, gates: int) -> list[Optional[Tensor]]:
    """The per-step recursion S_t = J_t ⊙ S_{t-1} + D_t ⊙ u_t over the T steps."""
    for t in range(d.shape[0]):
        sens = update(sens, jc[t], d[t:t + 1], x[t:t + 1], prev[t:t + 1], gates)
    return sens


class ElementwiseRTRL(torch.autograd.Function):
    """Cell sequence plus exact RTRL; backward maps dL/ds_t (T,B,n) to parameter gradients.

    Inputs: cell, options (input_grad "step"|"segment", path "segment"|"step"),
    x (T,B,d), s0 (B,n), keep (T,B) (0 where an episode starts), W, b, w (or None),
    then the sensitivities S_W, S_b, S_w (or None: no RTRL, gradient truncated at the start).
    Outputs: states (T,B,n), then the new sensitivities if any were given.
    """

    @staticmethod
    def forward(ctx: Any, cell: Cell, options: tuple[str, str], x: Tensor, s0: Tensor, keep: Tensor,
                weight: Tensor, bias: Tensor, diag: Optional[Tensor], *sens: Optional[Tensor]):
        T, B, d_in = x.shape
        G, n = cell.gates, s0.shape[1]
        with torch.no_grad():
            pre = torch.addmm(bias, x.reshape(T * B, d_in), weight.t()).view(T, B, G, n)
            diag_gn = diag.view(G, n) if diag is not None else None
            states, prev, act = cell.sequence(pre, s0, keep.unsqueeze(-1), diag_gn)
            has_sens = len(sens) > 0 and sens[0] is not None
            if not (has_sens or any(ctx.needs_input_grad)):
                return (states,)
            d, j = cell.derivatives(act, prev, states, diag_gn)
            jc = j * keep.unsqueeze(-1)
            new_sens: list = []
            if has_sens:
                sens = list(sens)
                new_sens = (step_updates if options[1] == "step" else segment_update)(sens, jc, d, x, prev, G)
        ctx.set_materialize_grads(False)  # the sensitivities get no gradient: skip zero-filling them
        ctx.cell, ctx.options, ctx.has_sens = cell, options, has_sens
        ctx.has_diag, ctx.num_sens = diag is not None, len(sens)
        # One step: the gradient is Sum_b e_b ⊙ S_1,b, so the backward needs only the new
        # sensitivities (just written, still in cache), not the old ones (see backward).
        ctx.one_step = has_sens and T == 1
        ctx.save_for_backward(x, weight, prev, d, jc, *(new_sens if ctx.one_step else sens if has_sens else ()))
        outputs = [states] + [s for s in new_sens if s is not None]
        ctx.mark_non_differentiable(*outputs[1:])
        return tuple(outputs)

    @staticmethod
    def backward(ctx: Any, grad_states: Optional[Tensor], *unused: Any):
        x, weight, prev, d, jc, *saved = ctx.saved_tensors
        input_grad, path = ctx.options
        e = grad_states if grad_states is not None else torch.zeros_like(prev)
        sens = list(saved) if ctx.has_sens else None
        stepwise = sens is not None and path == "step"
        G = ctx.cell.gates
        if ctx.one_step:
            return _one_step_backward(ctx, e, sens, d, weight, x)
        # per-step RTRL takes the same-step gradient e for the parameters; the segment form
        # (and tbptt) the adjoint a, which input_grad="segment" also needs for x
        a = None if (stepwise and input_grad == "step") else adjoint(e, jc)
        with torch.no_grad():
            cd = d * (e if stepwise else a).unsqueeze(2)
            grads = direct_gradients(cd, x, prev, ctx.has_diag)
            if sens is not None:
                carry = (_replay_steps(sens, jc, e, d, x, prev, G) if stepwise
                         else carry_gradients(jc[0] * a[0], sens, G))
                grads = _add(grads, carry)
            grad_x = None
            if ctx.needs_input_grad[2]:
                if (input_grad == "step") != stepwise:  # cd was built from the other coefficient
                    cd = d * (e if input_grad == "step" else a).unsqueeze(2)
                grad_x = _input_gradient(cd, weight, x)
        return (None, None, grad_x, None, None, *grads) + (None,) * ctx.num_sens


def _one_step_backward(ctx: Any, e: Tensor, new_sens: list[Optional[Tensor]], d: Tensor, weight: Tensor,
                       x: Tensor):
    """Backward of a one-step segment (T = 1, per-step RTRL) from the new sensitivities S_1.

    RTRL's gradient is Sum_b e_b ⊙ S_1,b: the direct term (e ⊙ D) uᵀ and the carry term
    (J ⊙ e) ⊙ S_0 together, since S_1 = J ⊙ S_0 + D ⊙ u. One pass over the S_1 that the
    forward has just written replaces a pass over the older S_0 plus a matrix product.
    For T = 1 the adjoint is e, so both input_grad modes give x the same gradient.
    """
    with torch.no_grad():
        grads = carry_gradients(e[0], new_sens, ctx.cell.gates)
        grad_x = None
        if ctx.needs_input_grad[2]:
            grad_x = _input_gradient(d * e.unsqueeze(2), weight, x)
    return (None, None, grad_x, None, None, *grads) + (None,) * ctx.num_sens


def _input_gradient(cd: Tensor, weight: Tensor, x: Tensor) -> Tensor:
    """x's gradient (T,B,d) from cd = coef ⊙ D (T,B,G,n) through the gates' W (G*n, d)."""
    return (cd.reshape(-1, cd.shape[2] * cd.shape[3]) @ weight).view_as(x)


def _replay_steps(sens, jc, e, d, x, prev, gates: int):
    """Sum_t (J_t ⊙ e_t) ⊙ S_{t-1}: the per-step recursion replayed from S_0."""
    total = None
    for t in range(e.shape[0]):
        grads = carry_gradients(jc[t] * e[t], sens, gates)
        total = grads if total is None else _add(total, grads)
        if t < e.shape[0] - 1:
            sens = update(sens, jc[t], d[t:t + 1], x[t:t + 1], prev[t:t + 1], gates)
    return total


def _add(xs: list[Optional[Tensor]], ys: list[Optional[Tensor]]) -> list[Optional[Tensor]]:
    """Element-wise sum of two gradient lists whose entries may be None."""
    return [x if y is None else (y if x is None else x + y) for x, y in zip(xs, ys)]
