"""Exact RTRL for element-wise cores: the segment form and the per-step recursion.

Shared by every element-wise core (see ``docs/cores.md`` and rtrl.md §1-§4). A core
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

from typing import Any, Iterable, Optional, Protocol

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
    for t in range(e.shape[0] - 2, -1, -1):
        torch.addcmul(e[t], jc[t + 1], a[t + 1], out=a[t])
    return a


def suffix_products(jc: Tensor) -> tuple[Tensor, Tensor]:
    """q_t = prod_{t<j<=T} J_j (T,B,n) and P = prod_{1<=j<=T} J_j (B,n).

    A loop of T small products: faster on CPU than torch.cumprod, and exact with zeros.
    """
    q = torch.empty_like(jc)
    q[-1] = 1
    for t in range(jc.shape[0] - 2, -1, -1):
        torch.mul(q[t + 1], jc[t + 1], out=q[t])
    return q, q[0] * jc[0]


def scaled_plus(s: Tensor, factor: Tensor, gates: int, products) -> Tensor:
    """factor[b,k] ⊙ s[b,g,k,:] + L_b @ R_b for every stream b, as a new tensor like s.

    ``products(batched)`` gives the added term: with ``batched`` True one (B, G*n, d)
    tensor, else an iterator of B factor pairs (L_b (G*n, m), R_b (m, d)), lazily.
    Stream by stream (large blocks) the big sensitivity is read once and written once:
    the scaled block is written and the product accumulated into it by the matrix
    multiply itself while the block is in cache (no temporary product).
    factor (B,n); s (B, G*n, d).
    """
    B, n = factor.shape
    if not per_stream(s):
        out = products(True)
        out.view(B, gates, n, -1).addcmul_(s.view(B, gates, n, -1), factor.view(B, 1, n, 1))
        return out
    out = torch.empty_like(s)
    view, out_view = s.view(B, gates, n, -1), out.view(B, gates, n, -1)
    factor = factor.view(B, 1, n, 1)
    for b, (left, right) in enumerate(products(False)):
        torch.mul(view[b], factor[b], out=out_view[b])
        out[b].addmm_(left, right)
    return out


def direct_gradients(coef: Tensor, d: Tensor, x: Tensor, prev: Tensor, has_diag: bool):
    """Sum_t (coef_t ⊙ D_t) u_t^T for W, b, w in one matmul; coef (T,B,n) is a or e.

    Returns (grads [gW (G*n,d), gb (G*n), gw (G*n) or None], cd (T*B, G*n)).
    """
    T, B, G, n = d.shape
    cd = (d * coef.unsqueeze(2)).reshape(T * B, G * n)
    g_w = cd.t() @ x.reshape(T * B, -1)
    g_b = cd.sum(0)
    g_diag = (cd.view(T, B, G, n) * prev.unsqueeze(2)).sum((0, 1)).reshape(G * n) if has_diag else None
    return [g_w, g_b, g_diag], cd


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
        view = s.view(B, gates, n, -1)
        if s.dim() < 3 or not per_stream(s):  # biases and diagonals are always small
            out.append((view * v.view(B, 1, n, 1)).sum(0).view(s.shape[1:]))
            continue
        rows = zip(view.unbind(0), v.view(B, 1, n, 1).expand(B, gates, n, view.shape[-1]).unbind(0))
        s_0, f_0 = next(rows)
        total = torch.mul(s_0, f_0)
        for s_b, f_b in rows:
            total.addcmul_(s_b, f_b)
        out.append(total.view(s.shape[1:]))
    return out


def step_update(sens: list[Optional[Tensor]], jc: Tensor, d: Tensor, x: Tensor, prev: Tensor) -> list[Optional[Tensor]]:
    """One per-step RTRL update S <- J ⊙ S + D ⊙ u; jc, prev (B,n), d (B,G,n), x (B,d)."""
    B, G, n = d.shape
    s_w, s_b, s_diag = sens
    d_flat = d.reshape(B, G * n)

    def outer(batched: bool):
        if batched:
            return d_flat.unsqueeze(2) * x.unsqueeze(1)
        return ((d_b.unsqueeze(1), x_b.unsqueeze(0)) for d_b, x_b in zip(d_flat.unbind(0), x.unbind(0)))

    new_w = scaled_plus(s_w, jc, G, outer)
    new_b = torch.addcmul(d, s_b.view(B, G, n), jc.unsqueeze(1)).view_as(s_b)
    new_diag = None
    if s_diag is not None:
        new_diag = torch.addcmul(d * prev.unsqueeze(1), s_diag.view(B, G, n), jc.unsqueeze(1)).view_as(s_diag)
    return [new_w, new_b, new_diag]


def segment_update(sens: list[Optional[Tensor]], jc: Tensor, d: Tensor, x: Tensor, prev: Tensor) -> list[Optional[Tensor]]:
    """Segment form of the carry: S_T = P ⊙ S_0 + Sum_t (q_t ⊙ D_t) u_t^T (one matmul per stream)."""
    T, B, G, n = d.shape
    s_w, s_b, s_diag = sens
    q, p = suffix_products(jc)
    qd = d * q.unsqueeze(2)                                       # (T, B, G, n)
    p4 = p.view(B, 1, n)

    def products(batched: bool):
        if batched:
            return torch.bmm(qd.view(T, B, G * n).permute(1, 2, 0), x.transpose(0, 1))
        pairs = zip(qd.view(T, B, G * n).unbind(1), x.unbind(1))  # strided views, no copies
        return ((qd_b.t(), x_b) for qd_b, x_b in pairs)

    new_w = scaled_plus(s_w, p, G, products)
    new_b = (s_b.view(B, G, n) * p4 + qd.sum(0)).view_as(s_b)
    new_diag = None
    if s_diag is not None:
        new_diag = (s_diag.view(B, G, n) * p4 + (qd * prev.unsqueeze(2)).sum(0)).view_as(s_diag)
    return [new_w, new_b, new_diag]


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
                if options[1] == "step":
                    new_sens = sens
                    for t in range(T):
                        new_sens = step_update(new_sens, jc[t], d[t], x[t], prev[t])
                else:
                    new_sens = segment_update(sens, jc, d, x, prev)
        ctx.set_materialize_grads(False)  # the sensitivities get no gradient: skip zero-filling them
        ctx.cell, ctx.options, ctx.has_sens = cell, options, has_sens
        ctx.has_diag, ctx.num_sens = diag is not None, len(sens)
        ctx.save_for_backward(x, weight, prev, d, jc, *(sens if has_sens else ()))
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
        a = None if (stepwise and input_grad == "step") else adjoint(e, jc)
        with torch.no_grad():
            grads, cd = direct_gradients(e if stepwise else a, d, x, prev, ctx.has_diag)
            if sens is not None:
                grads = _add(grads, _carry_terms(sens, jc, e, a, d, x, prev, stepwise, ctx.cell.gates))
            grad_x = None
            if ctx.needs_input_grad[2]:
                if (input_grad == "step") != stepwise:  # cd was built from the other coefficient
                    cd = (d * (e if input_grad == "step" else a).unsqueeze(2)).reshape(cd.shape)
                grad_x = (cd @ weight).view_as(x)
        return (None, None, grad_x, None, None, *grads) + (None,) * ctx.num_sens


def _carry_terms(sens, jc, e, a, d, x, prev, stepwise: bool, gates: int):
    """Gradient through the carried-in sensitivities: one pass over S_0 (segment form), or
    the per-step recursion replayed, Sum_t (J_t ⊙ e_t) ⊙ S_{t-1}."""
    if not stepwise:
        return carry_gradients(jc[0] * a[0], sens, gates)
    total = carry_gradients(jc[0] * e[0], sens, gates)
    for t in range(1, e.shape[0]):
        sens = step_update(sens, jc[t - 1], d[t - 1], x[t - 1], prev[t - 1])
        total = _add(total, carry_gradients(jc[t] * e[t], sens, gates))
    return total


def _add(xs: list[Optional[Tensor]], ys: list[Optional[Tensor]]) -> list[Optional[Tensor]]:
    """Element-wise sum of two gradient lists whose entries may be None."""
    return [x if y is None else (y if x is None else x + y) for x, y in zip(xs, ys)]
