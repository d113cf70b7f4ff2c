"""The Carry container: selection, persistence, transfer between processes, dtype/device."""

import io
import pickle
import subprocess
import sys

import pytest
import torch

from rtrl_rl.agents.cores import Carry, make_core

CHILD = """
import pickle, sys, torch
carry = pickle.loads(sys.stdin.buffer.read())
loaded = torch.load(sys.argv[1], weights_only=True)
assert type(carry).__name__ == type(loaded).__name__ == "Carry", (type(carry), type(loaded))
assert carry.keys() == loaded.keys() and all(torch.equal(carry[k], loaded[k]) for k in carry)
picked = carry[torch.tensor([2, 0])]
picked["c"].add_(1.0)
torch.save(picked, sys.argv[2])
"""


@pytest.fixture
def carry():
    model = make_core("elstm", 3, 4)
    c = model.initial_carry(4)
    for v in c.values():
        v.normal_()
    return c


def test_round_trip_through_torch_save_weights_only(carry):
    buffer = io.BytesIO()
    torch.save(carry, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    assert isinstance(loaded, Carry) and loaded.keys() == carry.keys()
    assert all(torch.equal(loaded[k], carry[k]) for k in carry)


def test_round_trip_through_a_subprocess(carry, tmp_path):
    torch.save(carry, tmp_path / "in.pt")
    proc = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "in.pt"), str(tmp_path / "out.pt")],
                          input=pickle.dumps(carry), capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    back = torch.load(tmp_path / "out.pt", weights_only=True)
    assert isinstance(back, Carry) and back.batch_size == 2
    torch.testing.assert_close(back["c"], carry["c"][[2, 0]] + 1.0)
    torch.testing.assert_close(back["dc/dW"], carry["dc/dW"][[2, 0]])


def test_selection_assign_cat(carry):
    part = carry[torch.tensor([1, 3])]
    assert isinstance(part, Carry) and part.batch_size == 2
    assert torch.equal(part["dc/dW"], carry["dc/dW"][[1, 3]])
    assert carry[1:3].batch_size == 2 and carry[[0]].batch_size == 1
    fresh = part.clone()
    for v in fresh.values():
        v.zero_()
    carry.assign(torch.tensor([1, 3]), fresh)
    assert carry["c"][[1, 3]].abs().max() == 0 and carry["c"][[0, 2]].abs().min() > 0
    joined = Carry.cat([carry[:1], carry[1:]])
    assert all(torch.equal(joined[k], carry[k]) for k in carry)
    with pytest.raises(ValueError, match="keys"):
        carry.assign(0, carry.state()[[0]])


def test_to_detach_and_state(carry):
    double = carry.to(torch.float64)
    assert all(v.dtype == torch.float64 for v in double.values()) and isinstance(double, Carry)
    assert carry.to("cpu").keys() == carry.keys()
    with torch.enable_grad():
        c = Carry({"c": torch.ones(2, 3, requires_grad=True) * 2})
        assert not c.detach()["c"].requires_grad
    assert carry.state_keys == ["c"] and carry.has_sensitivities and not carry.state().has_sensitivities


@pytest.mark.parametrize("name", ["elstm", "mingru", "lru", "rtu", "rtu_nonlinear", "lstm"])
def test_initial_carry_follows_module_dtype(name):
    learning = "tbptt" if name == "lstm" else "rtrl"
    core = make_core(name, 3, 4, learning=learning).double()
    carry = core.initial_carry(2)
    assert all(v.dtype == torch.float64 and v.shape[0] == 2 for v in carry.values())
    assert all(v.abs().max() == 0 for v in carry.values())


@pytest.mark.parametrize("name", ["elstm", "mingru"])
def test_carry_contents_by_learning_mode(name):
    rtrl, tbptt = make_core(name, 3, 4), make_core(name, 3, 4, learning="tbptt")
    assert rtrl.initial_carry(2).has_sensitivities
    assert not rtrl.initial_carry(2, sensitivities=False).has_sensitivities
    assert not tbptt.initial_carry(2).has_sensitivities
    assert rtrl.initial_carry(2)[f"d{rtrl.state_key}/dW"].shape == (2, 8, 3)


@pytest.mark.parametrize("name", ["lru", "rtu", "rtu_nonlinear"])
def test_complex_carry_is_real_and_round_trips(name, tmp_path):
    core = make_core(name, 3, 4)
    _, carry = core(torch.randn(5, 2, 3), core.initial_carry(2), torch.zeros(5, 2, dtype=torch.bool))
    assert all(not v.is_complex() for v in carry.values()) and carry["dh/dW"].shape == (2, 3, 8)
    torch.save(carry, tmp_path / "c.pt")
    back = torch.load(tmp_path / "c.pt", weights_only=True)
    assert back.keys() == carry.keys() and all(torch.equal(back[k], carry[k]) for k in carry)
