"""Dense cores (rnn, gru, lstm): the cells against torch.nn's, exact dense RTRL against
full-stream BPTT (the float64 protocol), SnAp-1 where it must be exact, and the contract
(refusals, carries, resets, seeds, the agent)."""

import io

import pytest
import torch

from rtrl_rl.agents.cores import DENSE_CORES, LSTM, DenseCore, make_core
from rtrl_rl.agents.cores.carry import Carry
from rtrl_rl.agents.cores.verification import random_resets, relative_error, run_protocol
from rtrl_rl.bench.gradients import bptt_gradient, stream_gradient

F64 = torch.float64
DENSE = ["rnn", "gru", "lstm"]
RULES = {"rnn": ["rtrl", "snap1", "uoro", "kfrtrl"], "gru": ["rtrl", "snap1", "uoro"],
         "lstm": ["rtrl", "snap1", "uoro", "kfrtrl"]}
PAIRS = [(core, rule) for core in DENSE for rule in RULES[core]]


def _core(name, learning, d=3, n=4, init_seed=0, scale=0.5, **options):
    torch.manual_seed(init_seed)
    core = DENSE_CORES[name](d, n, learning=learning, **options).double()   # lstm tbptt: dense too
    with torch.no_grad():
        for p in core.parameters():
            p.normal_(0, scale)
    return core


def _data(T, B, d, n, seed=0, segment=3):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(T, B, d, generator=gen, dtype=F64)
    return x, random_resets(T, B, segment, gen), torch.randn(T, B, n, generator=gen, dtype=F64)


def _stream_gradient(core, x, reset, w, length):
    return stream_gradient(core, x, w, reset, length)


@pytest.mark.parametrize("name, torch_cell", [("rnn", torch.nn.RNNCell), ("gru", torch.nn.GRUCell),
                                              ("lstm", torch.nn.LSTMCell)])
def test_cells_equal_torch_cells_with_resets(name, torch_cell):
    core = _core(name, "tbptt")
    ref = torch_cell(3, 4).double()
    ref.load_state_dict({k: v for k, v in core.state_dict().items()})
    x, reset, _ = _data(7, 2, 3, 4)
    y, carry = core(x, core.initial_carry(2), reset)
    state = [torch.zeros(2, 4, dtype=F64) for _ in core.cell.parts]
    for t in range(7):
        state = [s * (~reset[t]).to(F64).unsqueeze(1) for s in state]
        out = ref(x[t], tuple(state) if name == "lstm" else state[0])
        state = list(out) if name == "lstm" else [out]
        torch.testing.assert_close(y[t], state[0], rtol=0, atol=1e-14)
    for part, value in zip(core.cell.parts, state):
        torch.testing.assert_close(carry[part], value, rtol=0, atol=1e-14)


@pytest.mark.parametrize("core", DENSE)
@pytest.mark.parametrize("length, batch, d, n", [(5, 3, 4, 5), (1, 2, 3, 3), (4, 1, 6, 2)])
def test_protocol_dense_rtrl_equals_full_stream_bptt(core, length, batch, d, n):
    report = run_protocol(core, segments=4, length=length, batch=batch, input_size=d, hidden_size=n,
                          seed=length + batch)
    assert report.max_error < 1e-10, report
    assert report.reset_effect > 1e-3, "ignoring the resets must change the gradient"


@pytest.mark.parametrize("core", DENSE)
def test_tbptt_is_autograd_on_the_segment(core):
    tbptt, rtrl = _core(core, "tbptt"), _core(core, "rtrl")
    x, reset, w = _data(6, 2, 3, 4)
    g_tbptt, carry = _stream_gradient(tbptt, x, reset, w, 3)
    assert not carry.has_sensitivities
    g_rtrl, _ = _stream_gradient(rtrl, x, reset, w, 3)
    assert relative_error(g_tbptt, g_rtrl) > 1e-3, "tbptt must drop the carried gradient"
    g_first, _ = _stream_gradient(tbptt, x[:3], reset[:3], w[:3], 3)
    g_rtrl_first, _ = _stream_gradient(rtrl, x[:3], reset[:3], w[:3], 3)
    assert relative_error(g_first, g_rtrl_first) < 1e-12, "one segment from a zero carry: no carried part"


def _diagonal_recurrence(core):
    with torch.no_grad():
        G, n = core.cell.gates, core.hidden_size
        mask = torch.eye(n, dtype=F64).repeat(G, 1)
        core.weight_hh.mul_(mask)
    return core


@pytest.mark.parametrize("core", DENSE)
def test_snap1_equals_exact_rtrl_for_a_diagonal_recurrent_matrix(core):
    x, reset, w = _data(12, 2, 3, 4)
    snap = _diagonal_recurrence(_core(core, "snap1"))
    exact = _diagonal_recurrence(_core(core, "rtrl"))
    g_snap, _ = _stream_gradient(snap, x, reset, w, 4)
    g_exact, _ = _stream_gradient(exact, x, reset, w, 4)
    assert relative_error(g_snap, g_exact) < 1e-12
    assert relative_error(g_exact, bptt_gradient(exact, x, w, reset)) < 1e-12


@pytest.mark.parametrize("core", DENSE)
def test_snap1_one_step_segments_from_zero_are_exact_then_biased(core):
    # M_1 = I_1 has SnAp-1's pattern, so the first two one-step segments are exact; from
    # the third on, the influence through other units (a dense W_hh) is dropped
    x, _, w = _data(3, 2, 3, 4)
    reset = torch.zeros(3, 2, dtype=torch.bool)
    snap, exact = _core(core, "snap1"), _core(core, "rtrl")
    errors = []
    for steps in (1, 2, 3):
        g_snap, _ = _stream_gradient(snap, x[:steps], reset[:steps], w[:steps], 1)
        g_exact, _ = _stream_gradient(exact, x[:steps], reset[:steps], w[:steps], 1)
        errors.append(relative_error(g_snap, g_exact))
    assert errors[0] < 1e-14 and errors[1] < 1e-12 and errors[2] > 1e-4, errors


def test_exact_rtrl_refuses_above_the_size_limit_with_the_memory():
    with pytest.raises(ValueError, match=r"MiB per stream.*snap1"):
        make_core("lstm", 64, 128, learning="rtrl")
    make_core("lstm", 8, 16, learning="rtrl")
    make_core("lstm", 64, 128, learning="rtrl", max_rtrl_elements=1 << 26)


@pytest.mark.parametrize("call, match", [
    (lambda: make_core("gru", 3, 4, learning="kfrtrl"), "Kronecker"),
    (lambda: make_core("elstm", 3, 4, learning="snap1"), "dense cores"),
    (lambda: make_core("rnn", 3, 4, learning="bptt"), "learning mode"),
])
def test_refusals(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_lstm_default_is_the_torch_lstm_and_other_rules_are_dense():
    assert isinstance(make_core("lstm", 3, 4), LSTM)
    assert isinstance(make_core("lstm", 3, 4, learning="tbptt"), LSTM)
    assert isinstance(make_core("lstm", 3, 4, learning="snap1"), DenseCore)
    assert make_core("rnn", 3, 4).learning == "tbptt"


@pytest.mark.parametrize("core, rule", PAIRS)
def test_carry_survives_torch_save_and_continues_identically(core, rule):
    model = _core(core, rule)
    x, reset, w = _data(6, 2, 3, 4)
    _, carry = model(x[:3], model.initial_carry(2), reset[:3])
    buffer = io.BytesIO()
    torch.save(carry, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    assert isinstance(loaded, Carry) and loaded.keys() == carry.keys() and carry.has_sensitivities
    outs = []
    for c in (carry, loaded):
        model.reseed(5)
        model.zero_grad()
        y, after = model(x[3:], c, reset[3:])
        (w[3:] * y).sum().backward()
        outs.append((torch.cat([p.grad.flatten() for p in model.parameters()]), after))
    assert torch.equal(outs[0][0], outs[1][0])
    assert all(torch.equal(outs[0][1][k], outs[1][1][k]) for k in carry)


@pytest.mark.parametrize("core, rule", [p for p in PAIRS if p[1] in ("rtrl", "snap1")])
def test_per_stream_slices_run_alone_as_together(core, rule):
    model = _core(core, rule)
    x, reset, w = _data(6, 3, 3, 4)
    _, carry = model(x[:3], model.initial_carry(3), reset[:3])
    _, together = model(x[3:], carry, reset[3:])
    for b in range(3):
        _, alone = model(x[3:, b:b + 1], carry[[b]], reset[3:, b:b + 1])
        for key in together:
            torch.testing.assert_close(alone[key], together[key][[b]], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("core, rule", PAIRS)
def test_reset_clears_state_and_estimate(core, rule):
    model = _core(core, rule)
    x, _, w = _data(6, 2, 3, 4)
    none = torch.zeros(6, 2, dtype=torch.bool)
    _, carry = model(x[:3], model.initial_carry(2), none[:3])
    start = none[3:].clone()
    start[0] = True
    grads = []
    for c in (carry, model.initial_carry(2)):
        model.reseed(1)
        model.zero_grad()
        y, after = model(x[3:], c, start)
        (w[3:] * y).sum().backward()
        grads.append((torch.cat([p.grad.flatten() for p in model.parameters()]), after))
    assert torch.equal(grads[0][0], grads[1][0])
    assert all(torch.equal(grads[0][1][k], grads[1][1][k]) for k in carry)


@pytest.mark.parametrize("core, rule", [p for p in PAIRS if p[1] in ("uoro", "kfrtrl")])
def test_noise_is_reproducible_for_a_seed(core, rule):
    x, _, w = _data(9, 2, 3, 4)
    reset = torch.zeros(9, 2, dtype=torch.bool)  # (a carry one step after a reset is still exact)
    runs = [_stream_gradient(_core(core, rule, seed=s), x, reset, w, 3)[0] for s in (3, 3, 4)]
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])


def test_acting_carry_has_no_estimate_and_same_outputs():
    model = _core("lstm", "uoro")
    x, reset, _ = _data(5, 2, 3, 4)
    with torch.no_grad():
        y_act, state = model(x, model.initial_carry(2, sensitivities=False), reset)
    y, full = model(x, model.initial_carry(2), reset)
    assert list(state) == ["h", "c"] and torch.equal(y_act, y.detach()) and torch.equal(state["c"], full["c"])


@pytest.mark.parametrize("learning", ["snap1", "uoro", "kfrtrl", "rtrl", "tbptt"])
def test_agent_unrolls_and_learns_with_a_dense_lstm(learning):
    from gymnasium import spaces

    from rtrl_rl.agents.model import ActorCritic
    from rtrl_rl.config import load_config

    config = load_config(None, ["agent.core=lstm", f"agent.learning={learning}", "agent.hidden_size=8"])
    model = ActorCritic(spaces.Box(-1, 1, (5,)), spaces.Discrete(3), config)
    T, B = 4, 2
    obs, first = torch.rand(T, B, 5), torch.zeros(T, B, dtype=torch.bool)
    first[0] = True
    carry = model.initial_carry(B)
    assert carry.has_sensitivities == (learning != "tbptt")
    for _ in range(2):
        params, values, carry = model.unroll(obs, torch.zeros(T, B, dtype=torch.long), torch.zeros(T, B), first, carry)
        (params.sum() + values.sum()).backward()
    grads = [p.grad for p in model.core.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_config_rejects_an_unknown_learning_rule():
    from rtrl_rl.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="snap1"):
        load_config(None, ["agent.learning=snap2"])
