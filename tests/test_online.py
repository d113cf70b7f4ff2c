"""The online learning API: exact RTRL gradients while parameters are held, the tbptt and
linear baselines, bad inputs, and short runs of both examples that must improve."""

import numpy as np
import pytest
import torch

from rtrl_rl.agents.cores import elementwise_cores
from rtrl_rl.agents.cores.verification import random_resets, relative_error
from rtrl_rl.online import OnlineLearner
from rtrl_rl.online.examples import henon, plant

F64 = torch.float64


def _stream(T=7, B=2, d=3, k=2, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(T, B, d, generator=gen, dtype=F64)
    return x, torch.randn(T, B, k, generator=gen, dtype=F64), random_resets(T, B, 3, gen)


def _reference_loss(learner, x, target, reset, start=None):
    """Mean over steps of each step's MSE, by plain autograd through the whole stream."""
    core = learner.core
    shape = core.state_shapes()[core.state_key]  # (n,) or, for complex cores, (2n,)
    s0 = torch.zeros(x.shape[1], *shape, dtype=F64) if start is None else start
    y = learner.readout(core.reference_forward(x, s0, reset))
    return torch.stack([torch.nn.functional.mse_loss(y[t], target[t]) for t in range(x.shape[0])]).mean()


@pytest.mark.parametrize("core", elementwise_cores())
def test_rtrl_gradient_over_held_parameters_equals_full_stream_bptt(core):
    # with update_every = T the parameters stay fixed while the T steps' gradients add up:
    # each step's RTRL gradient (through the carried sensitivities) must be the exact one
    x, target, reset = _stream()
    T = x.shape[0]
    torch.manual_seed(1)
    learner = OnlineLearner(3, 2, core, 4, streams=2, update_every=T + 1, dtype=F64)
    for t in range(T):
        learner.step(x[t], target[t], reset[t])
    got = {n: p.grad.clone() for n, p in learner.named_parameters()}
    learner.zero_grad()
    (_reference_loss(learner, x, target, reset) * T / (T + 1)).backward()
    for name, p in learner.named_parameters():
        assert relative_error(got[name], p.grad) < 1e-10, name


def test_tbptt_window_gradient_is_truncated_at_the_window_start():
    x, target, reset = _stream(T=4)
    torch.manual_seed(2)
    learner = OnlineLearner(3, 2, "elstm", 4, streams=2, learning="tbptt", update_every=2, dtype=F64,
                            optimizer=lambda params: torch.optim.SGD(params, lr=0.0))
    for t in range(2):
        learner.step(x[t], target[t], reset[t])
    start = learner.carry["c"].clone()
    learner.step(x[2], target[2], reset[2])
    assert all(p.grad is None for p in learner.parameters()), "no update before the window ends"
    grads = {}
    learner.optimizer.step = lambda: grads.update({n: p.grad.clone() for n, p in learner.named_parameters()})
    learner.step(x[3], target[3], reset[3])
    learner.zero_grad()
    _reference_loss(learner, x[2:], target[2:], reset[2:], start=start).backward()
    for name, p in learner.named_parameters():
        assert relative_error(grads[name], p.grad) < 1e-10, name


def test_update_every_k_changes_the_parameters_only_every_k_steps():
    learner = OnlineLearner(2, 1, "mingru", 4, update_every=3, lr=0.1)
    before = learner.readout.weight.detach().clone()
    for t in range(1, 7):
        learner.step([0.5, -0.5], [1.0])
        changed = not torch.equal(before, learner.readout.weight)
        assert changed == (t % 3 == 0), t
        before = learner.readout.weight.detach().clone()


def test_reset_forgets_the_state_and_single_stream_shapes():
    learner = OnlineLearner(1, 1, "elstm", 4, lr=0.0)
    first = learner.step(np.array([0.3]), np.array([0.0]))
    learner.step([0.7], [0.0])
    assert first.shape == (1,)
    assert not torch.equal(learner.step([0.3], [0.0]), first), "the state changes the prediction"
    learner.reset()
    assert torch.equal(learner.step([0.3], [0.0]), first)
    assert torch.equal(learner.step([0.3], [0.0], reset=True), first)
    assert learner.step(torch.ones(1, 1), torch.zeros(1, 1)).shape == (1, 1)


def test_linear_model_learns_a_linear_map():
    learner = OnlineLearner(2, 1, None, lr=0.05, optimizer="sgd")
    rng = np.random.default_rng(0)
    for _ in range(2000):
        x = rng.standard_normal(2)
        learner.step(x, [2 * x[0] - x[1] + 0.5])
    torch.testing.assert_close(learner.readout.weight.detach(), torch.tensor([[2.0, -1.0]]), atol=1e-3, rtol=0)


@pytest.mark.parametrize("kwargs, match", [
    ({"update_every": 0}, "update_every"),
    ({"hidden_size": 2.5}, "hidden_size"),
    ({"learning": "bptt"}, "learning"),
    ({"optimizer": "rmsprop"}, "optimizer"),
    ({"dtype": torch.int64}, "dtype"),
    ({"core": "gru9"}, "unknown core"),
    ({"core": "lstm", "learning": "snap1"}, "learning"),
])
def test_bad_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        OnlineLearner(**{"input_size": 2, "output_size": 1, **kwargs})


def test_bad_step_inputs_name_what_was_expected():
    single, multi = OnlineLearner(2, 1, "elstm", 4), OnlineLearner(2, 1, "elstm", 4, streams=3)
    cases = [
        (single, ([1.0, 2.0, 3.0], [0.0]), r"x must have shape \(2,\) or \(1, 2\)"),
        (single, ([1.0, 2.0], [0.0, 1.0]), r"target must have shape \(1,\)"),
        (single, (np.array([1, 2]), [0.0]), "floating-point"),
        (single, (torch.tensor([1, 2]), [0.0]), "floating-point"),
        (single, ([1.0, float("nan")], [0.0]), "NaN"),
        (single, ([1.0, 2.0], [float("inf")]), "NaN or infinite"),
        (multi, ([1.0, 2.0], [0.0]), r"\(3, 2\)"),
        (multi, (torch.zeros(3, 2), torch.zeros(3, 1), torch.zeros(3)), "reset must be a bool"),
        (multi, (torch.zeros(3, 2), torch.zeros(3, 1), [True, False]), r"shape \(3,\)"),
    ]
    for learner, args, match in cases:
        with pytest.raises(ValueError, match=match):
            learner.step(*args)


def test_predict_and_learn_misuse():
    learner = OnlineLearner(2, 1, "elstm", 4)
    with pytest.raises(ValueError, match="scalar"):
        learner.learn(learner.predict([0.0, 1.0]))
    with pytest.raises(ValueError, match="scalar"):
        learner.learn(torch.tensor(1.0))
    with pytest.raises(ValueError, match="tbptt"):
        OnlineLearner(2, 1, "elstm", 4, learning="tbptt").predict([0.0, 1.0])


def test_henon_short_run_improves_25_fold():
    # measured (seeds 0, 1, 2): the mean squared error of the last 200 of 2000 steps is
    # 24-31 times lower than that of the first 200; asserted with a 3x margin
    torch.manual_seed(0)
    errors = henon.squared_errors(OnlineLearner(1, 1, "elstm", 16, lr=1e-2), henon.henon_series(2000), 1)
    assert np.mean(errors[:200]) / np.mean(errors[-200:]) > 8


def test_plant_short_run_identifies_and_tracks():
    # measured (seeds 0, 1, 2; 600 identification and 1000 control steps): identification
    # error falls 8.7-13.5 fold, tracking error 55-142 fold, and ends 23-83 times below the
    # error with no control; asserted with a 3x margin or more
    r = plant.run(identify=600, control=1000, hidden=16, seed=0, curve_window=100)
    assert r["identification_first_10pct"] / r["identification_last_10pct"] > 3
    assert r["tracking_first_10pct"] / r["tracking_last_10pct"] > 15
    assert r["tracking_last_10pct"] < r["zero_input_mean"] / 7


def test_plant_equations():
    p = plant.Plant()
    p.y = np.array([0.5, -1.0])
    y = p.step(np.array([3.0, 0.5]))  # u1 is clipped to 2
    expected = [0.3 + 0.2 * -1.0 / 1.25 + np.tanh(2.0) + 0.15,
                -0.5 + 0.3 * np.sin(0.5) + 0.8 * np.tanh(0.5) - 0.2 * 2.0 * 0.5]
    np.testing.assert_allclose(y, expected, rtol=1e-12)


def test_docs_example_runs():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "online.md").read_text()
    example = text.split("```python\n", 1)[1].split("```", 1)[0]
    assert len(example.strip().splitlines()) <= 10
    exec(compile(example, "docs/online.md", "exec"), {})
