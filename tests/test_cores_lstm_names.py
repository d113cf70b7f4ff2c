"""The dense ``lstm`` core keeps one set of parameter names under every learning rule: a
tbptt state dict (torch's fused kernel) loads into rtrl, snap1, uoro and kfrtrl (the
DenseLSTM) and gives the same outputs, and back; earlier nn.LSTM-named state dicts load."""

import copy

import pytest
import torch
from gymnasium import spaces

from rtrl_rl.agents import ActorCritic
from rtrl_rl.agents.cores import LSTM, DenseCore, make_core
from rtrl_rl.config import AgentConfig

RULES = ["rtrl", "snap1", "uoro", "kfrtrl"]
NAMES = ["bias_hh", "bias_ih", "weight_hh", "weight_ih"]


def _inputs(T=6, B=3, d=3, seed=1):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(T, B, d, generator=gen)
    reset = torch.zeros(T, B, dtype=torch.bool)
    reset[0] = True
    reset[3, 1] = True  # one stream starts a new episode inside the segment
    return x, reset


@pytest.mark.parametrize("rule, layers", [(rule, 1) for rule in RULES] + [("rtrl", 2)])  # stacks: rtrl, tbptt
def test_a_tbptt_state_dict_loads_into_every_rule_and_gives_the_same_outputs(rule, layers):
    torch.manual_seed(0)
    tbptt = make_core("lstm", 3, 4, learning="tbptt", layers=layers)
    other = make_core("lstm", 3, 4, learning=rule, layers=layers)
    assert sorted(tbptt.state_dict()) == sorted(other.state_dict())
    if layers == 1:
        assert isinstance(tbptt, LSTM) and isinstance(other, DenseCore)
        assert sorted(tbptt.state_dict()) == NAMES and [n for n, _ in tbptt.named_parameters()] == [
            "weight_ih", "weight_hh", "bias_ih", "bias_hh"]
    other.load_state_dict(tbptt.state_dict(), strict=True)
    x, reset = _inputs()
    y_tbptt, carry_tbptt = tbptt(x, tbptt.initial_carry(3), reset)
    y_other, carry_other = other(x, other.initial_carry(3), reset)
    torch.testing.assert_close(y_other, y_tbptt, rtol=1e-5, atol=1e-6)
    for key in carry_tbptt:  # the state parts (the other rule's carry adds its influence entries)
        torch.testing.assert_close(carry_other[key], carry_tbptt[key], rtol=1e-5, atol=1e-6)
    back = make_core("lstm", 3, 4, learning="tbptt", layers=layers)
    back.load_state_dict(other.state_dict(), strict=True)  # and the way back
    torch.testing.assert_close(back(x, back.initial_carry(3), reset)[0], y_tbptt, rtol=1e-5, atol=1e-6)


def test_an_agent_trained_with_tbptt_acts_the_same_under_snap1():
    obs, act = spaces.Box(-1, 1, (5,)), spaces.Discrete(3)
    torch.manual_seed(0)
    tbptt = ActorCritic(obs, act, AgentConfig(core="lstm", learning="tbptt", hidden_size=8, encoder_size=6))
    snap1 = ActorCritic(obs, act, AgentConfig(core="lstm", learning="snap1", hidden_size=8, encoder_size=6))
    snap1.load_state_dict(tbptt.state_dict(), strict=True)
    T, B = 5, 2
    args = (torch.rand(T, B, 5), torch.randint(0, 3, (T, B)), torch.randn(T, B), torch.zeros(T, B, dtype=torch.bool))
    want, _, _ = tbptt.unroll(*args, tbptt.initial_carry(B))
    got, _, _ = snap1.unroll(*args, snap1.initial_carry(B))
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("learning", ["tbptt", "snap1"])
def test_state_dicts_with_torch_lstm_names_still_load(learning):
    torch.manual_seed(0)
    old = torch.nn.LSTM(3, 4)  # what earlier versions held as the core's ``lstm`` child
    saved = {f"core.lstm.{name}": value for name, value in old.state_dict().items()}
    holder = torch.nn.Module()
    holder.core = make_core("lstm", 3, 4, learning=learning)
    holder.load_state_dict(saved, strict=True)
    torch.testing.assert_close(holder.core.weight_hh, old.weight_hh_l0)
    x, reset = _inputs()
    reset[:] = False
    h0 = torch.zeros(1, 3, 4)
    want, _ = old(x, (h0, h0))
    torch.testing.assert_close(holder.core(x, holder.core.initial_carry(3), reset)[0], want, rtol=1e-5, atol=1e-6)


def test_the_kernel_follows_copies_dtype_changes_and_loads():
    core = make_core("lstm", 3, 4, learning="tbptt")
    twin = copy.deepcopy(core)
    assert twin.kernel.weight_ih_l0 is twin.weight_ih and twin.weight_ih is not core.weight_ih
    with torch.no_grad():
        twin.weight_hh.add_(1.0)
    x, reset = _inputs()
    assert not torch.allclose(twin(x, twin.initial_carry(3), reset)[0], core(x, core.initial_carry(3), reset)[0])
    core.load_state_dict(twin.state_dict())
    torch.testing.assert_close(core(x, core.initial_carry(3), reset)[0], twin(x, twin.initial_carry(3), reset)[0])
    wide = core.double()
    assert wide.kernel.weight_ih_l0.dtype == torch.float64 and wide.kernel.weight_ih_l0 is wide.weight_ih
    assert wide(x.double(), wide.initial_carry(3), reset)[0].dtype == torch.float64
