"""UORO and KF-RTRL are unbiased: over many independent noise draws the mean gradient
estimate converges to the exact (full-stream BPTT) gradient.

The draws run as N identical streams of one batch (each stream draws its own noise). The
batch's .grad / N is the mean estimate, through the public path; each stream's own
estimate, needed for the variance, is the truncated gradient plus Σ_k c_kᵀ M̂_k,b over the
segment starts k (c_k = dL/ds_k is the same in every stream, since the state does not
depend on the noise), and their mean must equal the public one.

The tolerance comes from the measured variance. For an unbiased estimator the mean m of
N independent draws satisfies E|m - g|² = tr(Cov)/N, so by Markov's inequality
P(|m - g|² > 25 tr(Cov)/N) <= 1/25 whatever the correlations between coordinates; the
seeds are fixed, so the test is deterministic. Its power is checked on the same draws: the
bound must resolve a bias of 15% of the gradient's norm, and truncation's bias (tbptt's
gradient) must exceed it.
"""

import pytest
import torch

from rtrl_rl.agents.cores import DENSE_CORES

F64 = torch.float64
DRAWS = 20000
BOUND = 25.0


def _setup(core_name, rule, T=12, segment=3, d=2, n=3):
    torch.manual_seed(1)
    core = DENSE_CORES[core_name](d, n, learning=rule).double()
    with torch.no_grad():
        for p in core.parameters():
            p.normal_(0, 0.6)
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(T, 1, d, generator=gen, dtype=F64)
    w = torch.randn(T, 1, n, generator=gen, dtype=F64)
    reset = torch.zeros(T, 1, dtype=torch.bool)
    return core, x, w, reset, segment


def _gradient(core, x, w, reset, segment):
    core.zero_grad()
    carry = core.initial_carry(1)
    for start in range(0, x.shape[0], segment):
        rows = slice(start, start + segment)
        y, carry = core(x[rows], carry, reset[rows])
        (w[rows] * y).sum().backward()
    return torch.cat([p.grad.flatten() for p in core.parameters()])


def _other(core, rule):
    other = DENSE_CORES[core.name](core.input_size, core.hidden_size, learning=rule).double()
    other.load_state_dict(core.state_dict())
    return other


def _start_gradient(core, carry, x, w, reset):
    """c = dL_segment/ds_0 (1,K,n) for stream 0's start state, by autograd."""
    s0 = {p: carry[p][:1].clone().requires_grad_() for p in core.cell.parts}
    (w * core.reference_forward(x, s0, reset)).sum().backward()
    core.zero_grad()
    return torch.stack([s0[p].grad for p in core.cell.parts], 1)


def _draws(core, x, w, reset, segment, N):
    """Per-stream estimates (N, P) of N independent draws, and the batch's .grad / N."""
    T, _, d = x.shape
    xs, ws, rs = x.expand(T, N, d), w.expand(T, N, w.shape[2]), reset.expand(T, N)
    core.zero_grad()
    carry, starts = core.initial_carry(N), []
    for start in range(0, T, segment):
        rows = slice(start, start + segment)
        starts.append((carry, rows))
        y, carry = core(xs[rows], carry, rs[rows])
        (ws[rows] * y).sum().backward()
    public = torch.cat([p.grad.flatten() for p in core.parameters()]) / N
    per_stream = _gradient(_other(core, "tbptt"), x, w, reset, segment).repeat(N, 1)
    order = [0, 2, 1, 3]   # split_gate_gradient's order -> parameter order (W_ih, W_hh, b_ih, b_hh)
    for carry, rows in starts:
        c0 = _start_gradient(core, carry, x[rows], w[rows], reset[rows])
        entries = {k: carry[k] for k in core.sensitivity_shapes()}
        def one_stream(*values):
            flat = core.rule.carry_gradient({k: v.unsqueeze(0) for k, v in zip(entries, values)}, c0)
            parts = core.split_gate_gradient(flat)
            return torch.cat([parts[i].flatten() for i in order])
        per_stream += torch.func.vmap(one_stream)(*entries.values())
    return per_stream, public


@pytest.mark.parametrize("core_name, rule", [("rnn", "uoro"), ("rnn", "kfrtrl"), ("lstm", "uoro"),
                                             ("lstm", "kfrtrl"), ("gru", "uoro")])
def test_mean_estimate_converges_to_the_exact_gradient(core_name, rule):
    core, x, w, reset, segment = _setup(core_name, rule)
    exact = _gradient(_other(core, "rtrl"), x, w, reset, segment)
    draws, public = _draws(core, x, w, reset, segment, DRAWS)
    mean, trace = draws.mean(0), draws.var(0).sum()
    torch.testing.assert_close(mean, public, rtol=1e-10, atol=1e-12)
    bound = BOUND * trace / DRAWS
    assert trace > 1e-6 * exact.pow(2).sum(), "the estimate must be random"
    assert (mean - exact).pow(2).sum() < bound, ((mean - exact).pow(2).sum(), bound)
    # power: any bias above 15% of the gradient's norm fails, and truncation's bias does
    assert bound.sqrt() < 0.15 * exact.norm(), (bound.sqrt() / exact.norm())
    truncated = _gradient(_other(core, "tbptt"), x, w, reset, segment)
    assert (truncated - exact).pow(2).sum() > bound


def test_one_draw_is_not_the_exact_gradient():
    core, x, w, reset, segment = _setup("rnn", "uoro")
    exact = _gradient(_other(core, "rtrl"), x, w, reset, segment)
    assert (_gradient(core, x, w, reset, segment) - exact).abs().max() > 1e-6
