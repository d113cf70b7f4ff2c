"""Stacks of element-wise cores: L = 1 is the single core; for L = 2 each layer's RTRL
gradient equals float64 autograd in which the inter-layer signal is detached except at
the same step (the stated approximation), and differs from full BPTT (it is one)."""

import pytest
import torch

from rtrl_rl.agents.cores import CORES, Stack, elementwise_cores, make_core
from rtrl_rl.agents.cores.verification import random_resets, relative_error

F64 = torch.float64
SEGMENTS, LENGTH, B, D, N = 3, 4, 3, 4, 3


def _randomise(model, seed=0):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=gen, dtype=F64))
    return model


def _stream(model, seed=1):
    gen = torch.Generator().manual_seed(seed)
    steps = SEGMENTS * LENGTH
    x = torch.randn(steps, B, D, generator=gen, dtype=F64)
    return x, random_resets(steps, B, LENGTH, gen), torch.randn(steps, B, model.output_size, generator=gen, dtype=F64)


def _rtrl(model, x, reset, w, length=LENGTH):
    """Gradients accumulated segment by segment, carry passed along; and the outputs."""
    model.zero_grad()
    carry, ys = model.initial_carry(B), []
    for start in range(0, x.shape[0], length):
        rows = slice(start, start + length)
        y, carry = model(x[rows], carry, reset[rows])
        (w[rows] * y).sum().backward()
        ys.append(y.detach())
    return {k: p.grad.clone() for k, p in model.named_parameters()}, torch.cat(ys), carry


def layer_reference(core, x, reset, same_step_only: bool):
    """One layer over the whole stream in plain autograd. ``same_step_only``: x reaches the
    output through the same step only (its path into later states is detached)."""
    s = torch.zeros(x.shape[1], *core.state_shapes()[core.state_key], dtype=F64)
    states = []
    for t in range(x.shape[0]):
        prev = s * (~reset[t]).to(F64).unsqueeze(-1)
        if same_step_only:
            s = core.reference_step(x[t].detach(), prev)  # the recurrence sees x as a constant
            # same value as s; the gradient to x[t] flows through this step alone
            same_step = core.reference_step(x[t], prev.detach()) - core.reference_step(x[t].detach(), prev.detach())
            states.append(s + same_step)
        else:
            s = core.reference_step(x[t], prev)
            states.append(s)
    return core.readout(x, torch.stack(states))


def _reference(stack, x, reset, w, same_step_only=True):
    stack.zero_grad()
    y0 = layer_reference(stack.layers[0], x, reset, same_step_only=False)
    y1 = layer_reference(stack.layers[1], y0, reset, same_step_only=same_step_only)
    (w * y1).sum().backward()
    return {k: p.grad.clone() for k, p in stack.named_parameters()}, y1.detach()


@pytest.mark.parametrize("core", elementwise_cores())
@pytest.mark.parametrize("path", ["segment", "step"])
def test_two_layers_equal_the_same_step_reference(core, path):
    stack = _randomise(make_core(core, D, N, layers=2, rtrl_path=path).to(F64))
    x, reset, w = _stream(stack)
    got, y, _ = _rtrl(stack, x, reset, w, length=LENGTH if path == "segment" else 1)
    want, y_ref = _reference(stack, x, reset, w)
    assert (y - y_ref).abs().max() < 1e-12
    for name in want:
        assert relative_error(got[name], want[name]) < 1e-10, name
    # not vacuous: full BPTT through both layers gives layer 0 another gradient
    full, _ = _reference(stack, x, reset, w, same_step_only=False)
    assert max(relative_error(want[k], full[k]) for k in full if k.startswith("layers.0.")) > 1e-3
    assert max(relative_error(want[k], full[k]) for k in full if k.startswith("layers.1.")) < 1e-12


@pytest.mark.parametrize("core", elementwise_cores())
def test_one_layer_stack_equals_the_single_core(core):
    single = _randomise(make_core(core, D, N).to(F64))
    stack = Stack(lambda d, **kw: CORES[core](d, N, **kw), D, N, 1).to(F64)
    stack.layers[0].load_state_dict(single.state_dict())
    x, reset, w = _stream(single)
    g1, y1, c1 = _rtrl(single, x, reset, w)
    g2, y2, c2 = _rtrl(stack, x, reset, w)
    assert torch.equal(y1, y2)
    assert {f"0.{k}" for k in c1} == set(c2) and all(torch.equal(c1[k], c2[f"0.{k}"]) for k in c1)
    assert all(torch.equal(g1[k], g2[f"layers.0.{k}"]) for k in g1)


def test_stack_carry_and_options():
    stack = make_core("lru", 5, 4, layers=3)
    carry = stack.initial_carry(2)
    assert carry.state_keys == ["0.h", "1.h", "2.h"] and carry.has_sensitivities
    assert [layer.input_grad for layer in stack.layers] == ["step", "step", "step"]
    seg = make_core("elstm", 5, 4, layers=2, input_grad="segment")
    assert [layer.input_grad for layer in seg.layers] == ["segment", "step"]
    tb = make_core("rtu", 5, 4, layers=2, learning="tbptt")
    assert not tb.initial_carry(2).has_sensitivities and tb.output_size == 8
    assert tb.layers[1].input_size == 8
    acting = stack.initial_carry(2, sensitivities=False)
    with torch.no_grad():  # acting: a state-only carry is allowed without gradients
        y, state = stack(torch.randn(3, 2, 5), acting, torch.zeros(3, 2, dtype=torch.bool))
    assert y.shape == (3, 2, 4) and not state.has_sensitivities
    with pytest.raises(ValueError, match="state-only carry"):
        stack(torch.randn(3, 2, 5), acting, torch.zeros(3, 2, dtype=torch.bool))
    y, _ = stack(torch.randn(3, 2, 5), acting, torch.zeros(3, 2, dtype=torch.bool), truncate=True)
    y.sum().backward()  # asked for explicitly: the gradient truncated at the segment start
    deep_lstm = make_core("lstm", 5, 4, layers=2, learning="tbptt")
    assert deep_lstm.initial_carry(2).state_keys == ["0.h", "0.c", "1.h", "1.c"]


@pytest.mark.parametrize("layers", [0, -1, 1.5, True])
def test_bad_layer_counts(layers):
    with pytest.raises(ValueError, match="layers"):
        make_core("lru", 3, 4, layers=layers)


def test_stack_rejects_bad_inputs_like_a_core():
    stack = make_core("rtu", 3, 4, layers=2)
    x, reset = torch.randn(5, 2, 3), torch.zeros(5, 2, dtype=torch.bool)
    with pytest.raises(ValueError, match="keys"):
        stack(x, make_core("rtu", 3, 4).initial_carry(2), reset)
    with pytest.raises(ValueError, match="input_size=3"):
        stack(torch.randn(5, 2, 7), stack.initial_carry(2), reset)
    with pytest.raises(ValueError, match="batch size 2"):
        stack(x, stack.initial_carry(3), reset)


@pytest.mark.parametrize("core, layers", [("rtu", 2), ("lru", 2), ("rtu_nonlinear", 1)])
def test_agent_builds_and_unrolls_stacks_and_2n_outputs(core, layers):
    from types import SimpleNamespace

    from gymnasium import spaces

    from rtrl_rl.agents import ActorCritic

    config = SimpleNamespace(core=core, core_layers=layers, hidden_size=6, encoder="mlp", encoder_size=5)
    model = ActorCritic(spaces.Box(-1, 1, (3,)), spaces.Discrete(2), config)
    T, Bs = 4, 2
    first = torch.zeros(T, Bs, dtype=torch.bool)
    params, values, carry = model.unroll(torch.randn(T, Bs, 3), torch.zeros(T, Bs, dtype=torch.long),
                                         torch.zeros(T, Bs), first, model.initial_carry(Bs))
    assert params.shape == (T, Bs, 2) and values.shape == (T, Bs) and carry.has_sensitivities
    (params.sum() + values.sum()).backward()
    assert all(p.grad is not None for p in model.core.parameters())
    with pytest.raises(ValueError, match="layers must be an int >= 1"):  # the core refuses it
        ActorCritic(spaces.Box(-1, 1, (3,)), spaces.Discrete(2), SimpleNamespace(core=core, core_layers=0))
