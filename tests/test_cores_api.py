"""make_core, bad inputs (each a ValueError naming what was expected), the LSTM baseline,
initialisation, and the gradcheck/bench commands."""

import pytest
import torch

from rtrl_rl.agents.cores import available_cores, make_core
from rtrl_rl import cli
from rtrl_rl.bench.cores import measure


def _core(name="elstm", learning="rtrl"):
    return make_core(name, 3, 4, learning=learning)


def test_unknown_core_lists_available():
    with pytest.raises(ValueError, match="elstm.*gru.*lru.*lstm.*mingru.*rnn.*rtu"):
        make_core("gru9", 3, 4)
    assert available_cores() == ["elstm", "gru", "lru", "lstm", "mingru", "rnn", "rtu", "rtu_nonlinear"]


@pytest.mark.parametrize("name", ["elstm", "lru", "rtu", "rtu_nonlinear"])
@pytest.mark.parametrize("options, match", [
    ({"learning": "bptt"}, "learning mode"),
    ({"input_grad": "full"}, "input_grad"),
    ({"rtrl_path": "fast"}, "rtrl_path"),
    ({"learning": "tbptt", "input_grad": "step"}, "segment"),
])
def test_bad_options(name, options, match):
    with pytest.raises(ValueError, match=match):
        make_core(name, 3, 4, **options)


@pytest.mark.parametrize("name", ["lru", "rtu", "rtu_nonlinear"])
@pytest.mark.parametrize("options, match", [
    ({"r_min": 0.5, "r_max": 0.4}, "r_min"),
    ({"r_max": 1.01}, "r_max <= 1"),
    ({"r_min": -0.1}, "0 <= r_min"),
    ({"max_phase": 0.0}, "max_phase"),
])
def test_bad_ring_options(name, options, match):
    with pytest.raises(ValueError, match=match):
        make_core(name, 3, 4, **options)


@pytest.mark.parametrize("name", ["rtu", "rtu_nonlinear"])
def test_bad_rtu_activation(name):
    with pytest.raises(ValueError, match="activation"):
        make_core(name, 3, 4, activation="gelu")


@pytest.mark.parametrize("name", ["lru", "rtu"])
def test_ring_initialisation(name):
    import math

    from rtrl_rl.agents.cores.complex_scan import eigenvalues

    torch.manual_seed(0)
    core = make_core(name, 3, 2000, r_min=0.4, r_max=0.8, max_phase=math.pi / 2)
    lam = eigenvalues(core.nu, core.theta).detach()
    radius, phase = lam.abs(), torch.angle(lam)
    assert 0.4 - 1e-6 <= radius.min() and radius.max() <= 0.8 + 1e-6
    assert 0 <= phase.min() and phase.max() <= math.pi / 2 + 1e-6
    # uniform on the ring's area: |λ|² is uniform in [r_min², r_max²], so its mean is the middle
    assert abs((radius ** 2).mean().item() - (0.16 + 0.64) / 2) < 0.01
    default = make_core(name, 3, 2000)
    radius = eigenvalues(default.nu, default.theta).detach().abs()
    assert 0.9 - 1e-6 <= radius.min() and radius.max() <= 0.999 + 1e-6
    if name == "lru":  # the normalisation γ = sqrt(1 - |λ|²)
        torch.testing.assert_close(torch.exp(default.gamma).detach(), torch.sqrt(1 - radius ** 2))


def test_lstm_refuses_rtrl_above_the_dense_size_limit():
    with pytest.raises(ValueError, match="exact dense RTRL"):
        make_core("lstm", 64, 128, learning="rtrl")


@pytest.mark.parametrize("name", ["elstm", "mingru", "lru", "rtu", "rtu_nonlinear", "lstm"])
def test_bad_inputs_raise_value_errors(name):
    core = _core(name, "tbptt" if name == "lstm" else "rtrl")
    carry, x, reset = core.initial_carry(2), torch.randn(5, 2, 3), torch.zeros(5, 2, dtype=torch.bool)
    other = make_core("mingru" if name != "mingru" else "elstm", 3, 4).initial_carry(2)
    cases = [
        ((torch.randn(5, 3), carry, reset), r"\(T, B, input_size=3\)"),
        ((torch.randn(5, 2, 7), carry, reset), "input_size=3"),
        ((x, carry, torch.zeros(5, 2)), "bool"),
        ((x, carry, torch.zeros(4, 2, dtype=torch.bool)), r"\(5, 2\)"),
        ((x, other, reset), "keys"),
        ((x, core.initial_carry(3), reset), "batch size 2"),
        ((x.double(), carry, reset), "float32"),
        ((x, core.initial_carry(2).to(torch.float64), reset), "float32"),
        ((x, {"c": 1}, reset) if name == "lstm" else (x, [1], reset), "carry"),
        ((x, {k: 1 for k in carry}, reset), "tensors"),
    ]
    for args, match in cases:
        with pytest.raises(ValueError, match=match):
            core(*args)


def test_tbptt_core_rejects_a_carry_with_sensitivities():
    with pytest.raises(ValueError, match="keys"):
        _core(learning="tbptt")(torch.randn(2, 2, 3), _core().initial_carry(2), torch.zeros(2, 2, dtype=torch.bool))


def test_forget_bias_initialisation():
    n = 4
    assert torch.all(make_core("elstm", 3, n).bias[n:] == 3.0)
    assert torch.all(make_core("mingru", 3, n, forget_bias=2.0).bias[:n] == -2.0)
    for learning in ("tbptt", "snap1"):  # torch's kernel and the dense core: the same parameters
        lstm = make_core("lstm", 3, n, learning=learning, forget_bias=2.5)
        assert torch.all(lstm.bias_ih[n:2 * n] + lstm.bias_hh[n:2 * n] == 2.5)


def test_lstm_resets_mid_segment_equal_separate_runs():
    torch.manual_seed(0)
    core = _core("lstm", "tbptt")
    x = torch.randn(6, 2, 3)
    reset = torch.zeros(6, 2, dtype=torch.bool)
    reset[3, 0] = True
    y, carry = core(x, core.initial_carry(2), reset)
    y_tail, _ = core.kernel(x[3:, :1])  # stream 0 restarts from zeros at step 3
    torch.testing.assert_close(y[3:, :1], y_tail)
    y_whole, (h, _) = core.kernel(x[:, 1:])  # stream 1 never resets
    torch.testing.assert_close(y[:, 1:], y_whole)
    torch.testing.assert_close(carry["h"][1:], h[0])


def test_gradcheck_command_passes(capsys):
    assert cli.main(["gradcheck", "--segments", "3", "--length", "4"]) == 0
    out = capsys.readouterr().out
    assert "elstm" in out and "mingru" in out and "FAIL" not in out


@pytest.mark.parametrize("name", ["lru", "rtu", "rtu_nonlinear"])
def test_gradcheck_command_checks_the_complex_cores(capsys, name):
    assert cli.main(["gradcheck", "--core", name, "--segments", "3", "--length", "3"]) == 0
    out = capsys.readouterr().out
    assert f"{name} (path=segment" in out and f"{name} (path=step" in out and "nu" in out and "FAIL" not in out


@pytest.mark.parametrize("name", ["rnn", "gru", "lstm"])
def test_gradcheck_command_checks_exact_dense_rtrl(capsys, name):
    assert cli.main(["gradcheck", "--core", name, "--segments", "3", "--length", "3"]) == 0
    out = capsys.readouterr().out
    assert f"{name} (path=auto" in out and "PASS" in out and "FAIL" not in out


def test_gradcheck_command_rejects_an_unknown_core(capsys):
    assert cli.main(["gradcheck", "--core", "gru9"]) == 2
    assert "cores with exact RTRL" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["mingru", "rtu"])
def test_bench_measures_every_variant(name):
    row = measure(name, 8, 4, 2, 3, torch.device("cpu"), repeats=1)
    assert set(row["ms"]) == {"forward", "rtrl", "tbptt", "step", "forward_step", "lstm"}
    assert all(v > 0 for v in row["ms"].values()) and set(row["ratios"]) == {"rtrl/tbptt", "rtrl/lstm",
                                                                          "step/forward_step"}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_bench_on_cuda_adds_graph_replays_that_match_eager_gradients():
    from rtrl_rl.bench.cores import _graphed

    row = measure("elstm", 16, 8, 4, 5, torch.device("cuda"), repeats=1)
    assert {"rtrl_graph", "tbptt_graph", "lstm_graph"} <= set(row["ms"])
    assert "rtrl_graph/lstm" in row["ratios"]
    device = torch.device("cuda")
    core = make_core("elstm", 8, 16, learning="rtrl").to(device)
    x = torch.randn(5, 4, 8, device=device, requires_grad=True)
    reset = torch.rand(5, 4, device=device) < 0.3
    carry = core.initial_carry(4)
    for k in carry:  # a non-zero carry, so the carry term counts
        carry[k].normal_()

    def segment():
        y, _ = core(x, carry, reset)
        y.square().sum().backward()

    core.zero_grad(set_to_none=True)
    segment()
    eager = [p.grad.clone() for p in core.parameters()]
    replay = _graphed(segment, device, [core], x)
    replay()
    torch.cuda.synchronize()
    for got, want in zip([p.grad for p in core.parameters()], eager):
        torch.testing.assert_close(got, want)


def test_breakdown_times_every_piece_and_restores_the_machinery():
    from rtrl_rl.agents.cores import scan
    from rtrl_rl.bench.cores_breakdown import PIECES, measure as breakdown

    before = {name: getattr(scan, name) for name in PIECES}
    result = breakdown(n=8, d=4, batch=2, length=3, segments=2, warmup=1)
    assert set(result) == {*PIECES, "forward (whole)", "backward (whole)"}
    assert all(ms >= 0 for ms in result.values())
    assert {name: getattr(scan, name) for name in PIECES} == before


def test_bench_grid_and_memory_experiment_have_the_complex_cores():
    from rtrl_rl.bench.cores import CPU_GRID
    from rtrl_rl.config import load_config
    from rtrl_rl.bench.memory import GRIDS, RULES, specs

    assert {"lru", "rtu"} <= {row[0] for row in CPU_GRID if row[1:] == (256, 256, 16, 50)}
    new = {"rtrl-lru", "rtrl-rtu", "rtrl-rtu-nonlinear"}
    assert new <= set(RULES) and not new & {s["rule"] for s in specs(GRIDS["quick"])}
    specs = specs(GRIDS["cores"])
    assert {s["rule"] for s in specs} == {"rtrl-elstm", *new}
    for spec in specs:
        config = load_config(None, spec["overrides"])
        assert config.agent.core == spec["rule"][5:].replace("-", "_") and config.agent.learning == "rtrl"
