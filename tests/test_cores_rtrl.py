"""Exact RTRL of the element-wise cores against autograd (docs/rtrl.md, "Verification protocol")."""

import pytest
import torch

from rtrl_rl.agents.cores import elementwise_cores, make_core
from rtrl_rl.agents.cores.verification import random_resets, relative_error, run_protocol

CORES = elementwise_cores()
F64 = torch.float64


def test_every_elementwise_core_is_covered():
    assert set(CORES) == {"elstm", "mingru", "lru", "rtu", "rtu_nonlinear"}


@pytest.mark.parametrize("core", CORES)
@pytest.mark.parametrize("path", ["segment", "step"])
@pytest.mark.parametrize("length, batch, d, n", [(5, 3, 4, 5), (1, 2, 3, 3), (4, 1, 6, 2)])
def test_protocol_rtrl_equals_full_stream_bptt(core, path, length, batch, d, n):
    report = run_protocol(core, segments=4, length=length, batch=batch, input_size=d, hidden_size=n,
                          rtrl_path=path, seed=length + batch)
    assert report.max_error < 1e-10, report
    assert report.reset_effect > 1e-3, "ignoring the resets must change the gradient"


@pytest.mark.parametrize("core", CORES)
@pytest.mark.parametrize("input_grad", ["step", "segment"])
def test_protocol_holds_for_both_input_grad_modes(core, input_grad):
    report = run_protocol(core, segments=3, length=4, input_grad=input_grad, seed=7)
    assert report.max_error < 1e-10, report


def _pair(core, **options):
    """Two cores with equal random parameters: rtrl with the given options, and tbptt."""
    torch.manual_seed(3)
    model = make_core(core, 4, 3, **options).double()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.5)
    return model


def _data(model, T=6, B=3, d=4, seed=0):
    """Inputs, resets and loss weights (T, B, output size) for a core made by ``_pair``."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(T, B, d, generator=gen, dtype=F64)
    return x, random_resets(T, B, 3, gen), torch.randn(T, B, model.output_size, generator=gen, dtype=F64)


@pytest.mark.parametrize("core", CORES)
def test_segment_path_equals_per_step_path(core):
    seg, step = _pair(core, rtrl_path="segment"), _pair(core, rtrl_path="step")
    x, reset, w = _data(seg, T=9)
    carries = [seg.initial_carry(3), step.initial_carry(3)]
    for k in range(3):
        rows = slice(3 * k, 3 * k + 3)
        outs = []
        for i, model in enumerate((seg, step)):
            y, carries[i] = model(x[rows], carries[i], reset[rows])
            (w[rows] * y).sum().backward()
            outs.append(y)
        torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=1e-14)
    assert carries[0].keys() == carries[1].keys() and any("/" in k for k in carries[0])
    for key in carries[0]:
        torch.testing.assert_close(carries[0][key], carries[1][key], rtol=1e-12, atol=1e-14)
    for (name, p), q in zip(seg.named_parameters(), step.parameters()):
        assert relative_error(p.grad, q.grad) < 1e-12, name


@pytest.mark.parametrize("core", CORES)
def test_tbptt_equals_autograd_with_detached_start(core):
    tbptt = _pair(core, learning="tbptt")
    x, reset, w = _data(tbptt)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    carry = tbptt.initial_carry(3)
    carry[tbptt.state_key].normal_()
    assert list(carry) == [tbptt.state_key], "a tbptt carry holds the state only"
    y, _ = tbptt(x1, carry, reset)
    (w * y).sum().backward()
    got = [p.grad.clone() for p in tbptt.parameters()] + [x1.grad]
    tbptt.zero_grad()
    y_ref = tbptt.reference_forward(x2, carry[tbptt.state_key].detach(), reset)
    (w * y_ref).sum().backward()
    torch.testing.assert_close(y, y_ref, rtol=0, atol=1e-14)
    for g, p in zip(got, [*tbptt.parameters(), x2]):
        assert relative_error(g, p.grad) < 1e-12


@pytest.mark.parametrize("core", CORES)
def test_rtrl_and_tbptt_forward_outputs_are_identical(core):
    rtrl, tbptt = _pair(core), _pair(core, learning="tbptt")
    x, reset, _ = _data(rtrl)
    y1, c1 = rtrl(x, rtrl.initial_carry(3), reset)
    y2, c2 = tbptt(x, tbptt.initial_carry(3), reset)
    assert torch.equal(y1, y2) and torch.equal(c1[rtrl.state_key], c2[tbptt.state_key])


def _zero_state(model, batch):
    """A zero state (batch, state size) in float64 (the complex cores keep 2n reals)."""
    return torch.zeros(batch, *model.state_shapes()[model.state_key], dtype=F64)


def _same_step_reference(model, x, reset):
    """Plain autograd where the recurrence is cut every step: x gets its same-step gradient."""
    s, states = _zero_state(model, x.shape[1]), []
    for t in range(x.shape[0]):
        s = model.reference_step(x[t], (s * (~reset[t]).to(s.dtype).unsqueeze(-1)).detach())
        states.append(s)
    return model.readout(x, torch.stack(states))


def _input_gradient(model, x, reset, w, one_step_at_a_time: bool = False):
    """x's gradient of (w * y).sum() from the core, over one segment or streamed step by step."""
    x = x.clone().requires_grad_()
    carry = model.initial_carry(x.shape[1])
    steps = [slice(t, t + 1) for t in range(x.shape[0])] if one_step_at_a_time else [slice(None)]
    for rows in steps:
        y, carry = model(x[rows], carry, reset[rows])
        (w[rows] * y).sum().backward()
    return x.grad


def _reference_input_gradient(model, x, reset, w, same_step: bool):
    """x's gradient through plain autograd: cut every step (same-step) or through the segment."""
    x = x.clone().requires_grad_()
    full = lambda m, xx, r: m.reference_forward(xx, _zero_state(m, x.shape[1]), r)
    y = (_same_step_reference if same_step else full)(model, x, reset)
    (w * y).sum().backward()
    return x.grad


@pytest.mark.parametrize("core", CORES)
@pytest.mark.parametrize("input_grad", ["step", "segment"])
def test_input_gradient_modes(core, input_grad):
    model = _pair(core, input_grad=input_grad)
    x, reset, w = _data(model)
    got = _input_gradient(model, x, reset, w)
    assert relative_error(got, _reference_input_gradient(model, x, reset, w, input_grad == "step")) < 1e-12
    # the other mode gives a different input gradient
    assert relative_error(got, _reference_input_gradient(model, x, reset, w, input_grad != "step")) > 1e-6


@pytest.mark.parametrize("core", CORES)
@pytest.mark.parametrize("input_grad", ["step", "segment"])
def test_streaming_one_step_at_a_time_gives_x_its_same_step_gradient(core, input_grad):
    # T = 1 takes its own backward (from the new sensitivities); for one step both
    # input_grad modes are the same-step gradient
    model = _pair(core, input_grad=input_grad)
    x, reset, w = _data(model)
    got = _input_gradient(model, x, reset, w, one_step_at_a_time=True)
    assert relative_error(got, _reference_input_gradient(model, x, reset, w, same_step=True)) < 1e-12


@pytest.mark.parametrize("core", CORES)
def test_float32_stays_close_to_float64(core):
    model64 = _pair(core)
    model32 = make_core(core, 4, 3)
    model32.load_state_dict({k: v.float() for k, v in model64.state_dict().items()})
    x, reset, w = _data(model64, T=12)
    for model, dtype in ((model64, F64), (model32, torch.float32)):
        carry = model.initial_carry(3)
        assert all(v.dtype == dtype for v in carry.values())
        for rows in (slice(0, 6), slice(6, 12)):
            y, carry = model(x[rows].to(dtype), carry, reset[rows])
            (w[rows].to(dtype) * y).sum().backward()
    for p64, p32 in zip(model64.parameters(), model32.parameters()):
        assert relative_error(p32.grad.double(), p64.grad) < 1e-4


@pytest.mark.parametrize("core", ["elstm", "mingru"])
def test_jacobian_of_one_step_is_diagonal_and_matches_the_core(core):
    model = _pair(core)
    x, s_prev = torch.randn(1, 4, dtype=F64), torch.randn(1, 3, dtype=F64)
    jac = torch.autograd.functional.jacobian(lambda s: model.reference_step(x, s), s_prev)[0, :, 0, :]
    off_diagonal = jac - torch.diag(torch.diagonal(jac))
    assert off_diagonal.abs().max() == 0 and torch.diagonal(jac).abs().min() > 0
    with torch.no_grad():
        G, n = model.gates, model.hidden_size
        pre = (x @ model.weight.t() + model.bias).view(1, 1, G, n)
        diag = model.recurrent.view(G, n) if model.recurrent is not None else None
        states, prev, act = model.sequence(pre, s_prev, torch.ones(1, 1, 1, dtype=F64), diag)
        _, j = model.derivatives(act, prev, states, diag)
    torch.testing.assert_close(j[0, 0], torch.diagonal(jac), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("core", CORES)
def test_acting_with_a_state_only_carry_computes_no_sensitivities(core):
    model = _pair(core)
    x, reset, _ = _data(model)
    with torch.no_grad():
        y_act, state = model(x, model.initial_carry(3, sensitivities=False), reset)
    y_learn, full = model(x, model.initial_carry(3), reset)
    assert list(state) == [model.state_key] and state.state_keys == [model.state_key]
    assert torch.equal(y_act, y_learn.detach()) and torch.equal(state[model.state_key], full[model.state_key])
    assert list(full.state()) == list(state)


@pytest.mark.parametrize("core", ["lru", "rtu"])
def test_complex_jacobian_is_a_rotation_scaling_block_per_unit(core):
    from rtrl_rl.agents.cores.complex_scan import eigenvalues

    model = _pair(core)
    n = model.hidden_size
    x, s_prev = torch.randn(1, 4, dtype=F64), torch.randn(1, 2 * n, dtype=F64)
    jac = torch.autograd.functional.jacobian(lambda s: model.reference_step(x, s), s_prev)[0, :, 0, :]
    lam = eigenvalues(model.nu, model.theta).detach()
    want = torch.zeros(2 * n, 2 * n, dtype=F64)
    idx = torch.arange(n)
    re, im = 2 * idx, 2 * idx + 1  # each unit's (Re, Im) pair
    want[re, re] = want[im, im] = lam.real
    want[im, re], want[re, im] = lam.imag, -lam.imag
    torch.testing.assert_close(jac, want, rtol=1e-12, atol=1e-14)
    assert lam.abs().max() < 1 and lam.imag.abs().min() > 0


def test_nonlinear_rtu_jacobian_is_a_general_2x2_block_per_unit():
    model = _pair("rtu_nonlinear", activation="tanh")
    n = model.hidden_size
    x, s_prev = torch.randn(1, 4, dtype=F64), torch.randn(1, 2 * n, dtype=F64)
    jac = torch.autograd.functional.jacobian(lambda s: model.reference_step(x, s), s_prev)[0, :, 0, :]
    blocks = torch.block_diag(*(jac[2 * k:2 * k + 2, 2 * k:2 * k + 2] for k in range(n)))
    assert torch.equal(jac, blocks)  # element-wise in the unit index
    # not a rotation-scaling: f' differs between the pair, so the diagonal entries differ
    assert max(abs(jac[2 * k, 2 * k] - jac[2 * k + 1, 2 * k + 1]).item() for k in range(n)) > 1e-6


@pytest.mark.parametrize("path", ["segment", "step"])
def test_nonlinear_rtu_protocol_with_tanh(path):
    report = run_protocol("rtu_nonlinear", segments=4, length=3, rtrl_path=path, activation="tanh", seed=5)
    assert report.max_error < 1e-10, report
    assert report.reset_effect > 1e-3
