"""UORO and KF-RTRL are unbiased: over many independent noise draws the mean gradient
estimate converges to the exact (full-stream BPTT) gradient.

The draws run as N identical streams of one batch (each stream draws its own noise), with
the benchmark's ``per_stream_estimates``: the batch's .grad / N is the mean estimate,
through the public path, and the per-stream estimates (for the variance) must average to it.

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
from rtrl_rl.bench.gradients import like, per_stream_estimates, stream_gradient

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


@pytest.mark.parametrize("core_name, rule", [("rnn", "uoro"), ("rnn", "kfrtrl"), ("lstm", "uoro"),
                                             ("lstm", "kfrtrl"), ("gru", "uoro")])
def test_mean_estimate_converges_to_the_exact_gradient(core_name, rule):
    core, x, w, reset, segment = _setup(core_name, rule)
    exact = stream_gradient(like(core, "rtrl"), x, w, reset, segment)[0]
    draws, public = per_stream_estimates(core, x, w, reset, segment, DRAWS)
    mean, trace = draws.mean(0), draws.var(0).sum()
    torch.testing.assert_close(mean, public, rtol=1e-10, atol=1e-12)
    bound = BOUND * trace / DRAWS
    assert trace > 1e-6 * exact.pow(2).sum(), "the estimate must be random"
    assert (mean - exact).pow(2).sum() < bound, ((mean - exact).pow(2).sum(), bound)
    # power: any bias above 15% of the gradient's norm fails, and truncation's bias does
    assert bound.sqrt() < 0.15 * exact.norm(), (bound.sqrt() / exact.norm())
    truncated = stream_gradient(like(core, "tbptt"), x, w, reset, segment)[0]
    assert (truncated - exact).pow(2).sum() > bound


def test_one_draw_is_not_the_exact_gradient():
    core, x, w, reset, segment = _setup("rnn", "uoro")
    exact = stream_gradient(like(core, "rtrl"), x, w, reset, segment)[0]
    assert (stream_gradient(core, x, w, reset, segment)[0] - exact).abs().max() > 1e-6
