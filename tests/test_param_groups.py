"""train.recurrent_lr_scale: which parameters are recurrent, their optimizer group and learning
rate (with the schedule), and checkpoint restore across a change of scale."""

import pytest
import torch
from gymnasium import spaces

from rtrl_rl.agents import ActorCritic, Learner
from rtrl_rl.agents.param_groups import group_names, is_recurrent
from rtrl_rl.config import AgentConfig, ConfigError, load_config
from test_agent_learner import random_stream, segment_of, train_config

OBS, ACT = spaces.Box(-1, 1, (3,)), spaces.Discrete(3)


def _model(core="lru", learning="rtrl", layers=1):
    torch.manual_seed(0)
    return ActorCritic(OBS, ACT, AgentConfig(core=core, learning=learning, core_layers=layers, hidden_size=4,
                                             encoder_size=4, encoder="mlp", encoder_grad="segment")).double()


@pytest.mark.parametrize("core, learning, layers, expected", [
    ("lru", "rtrl", 1, {"core.nu", "core.theta", "core.gamma"}),
    ("lru", "rtrl", 2, {f"core.layers.{i}.{n}" for i in (0, 1) for n in ("nu", "theta", "gamma")}),
    ("rtu", "rtrl", 1, {"core.nu", "core.theta"}),
    ("elstm", "rtrl", 1, {"core.recurrent"}),
    ("mingru", "rtrl", 1, set()),
    ("gru", "tbptt", 1, {"core.weight_hh", "core.bias_hh"}),
    ("gru", "rtrl", 1, {"core.weight_hh", "core.bias_hh"}),
    ("lstm", "tbptt", 1, {"core.weight_hh", "core.bias_hh"}),
])
def test_recurrent_parameters_of_every_core(core, learning, layers, expected):
    model = _model(core, learning, layers)
    assert {n for n, _ in model.named_parameters() if is_recurrent(n)} == expected
    assert not is_recurrent("encoder.nu")  # only the core's parameters count


def test_scale_one_keeps_one_group_and_others_get_two():
    model = _model()
    assert group_names(model, 1.0) == [[n for n, _ in model.named_parameters()]]
    learner = Learner(model, train_config(lr=1e-2), num_streams=2)
    assert len(learner.optimizer.param_groups) == 1
    learner = Learner(model, train_config(lr=1e-2, recurrent_lr_scale=0.5, lr_decay=True, total_steps=16),
                      num_streams=2)
    groups = learner.optimizer.param_groups
    assert [g["lr"] for g in groups] == pytest.approx([1e-2, 5e-3])
    recurrent = {id(p) for p in groups[1]["params"]}
    assert recurrent == {id(model.core.nu), id(model.core.theta), id(model.core.gamma)}
    learner.update(segment_of(random_stream(8, 2, seed=1), 0, 4), torch.arange(2))  # 8 of 16 steps: half
    assert [g["lr"] for g in groups] == pytest.approx([5e-3, 2.5e-3])


def test_the_recurrent_group_moves_at_its_own_rate():
    """Adam's first step moves every parameter by about lr: the recurrent ones by about scale x lr."""
    seg = segment_of(random_stream(4, 2, seed=2), 0, 4)
    moved = {}
    for scale in (1.0, 0.25):
        model = _model()
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        Learner(model, train_config(lr=1e-3, recurrent_lr_scale=scale), num_streams=2).update(seg, torch.arange(2))
        moved[scale] = {n: float((p.detach() - before[n]).abs().max()) for n, p in model.named_parameters()}
    assert moved[0.25]["core.theta"] == pytest.approx(0.25 * moved[1.0]["core.theta"], rel=1e-3)
    assert moved[0.25]["core.out_weight"] == pytest.approx(moved[1.0]["core.out_weight"], rel=1e-6)


@pytest.mark.parametrize("saved_scale, scale", [(1.0, 0.5), (0.5, 1.0), (0.5, 0.25)])
def test_checkpoint_restores_across_a_change_of_scale(saved_scale, scale):
    stream = random_stream(8, 2, seed=3)
    model = _model()
    learner = Learner(model, train_config(lr=1e-2, recurrent_lr_scale=saved_scale), num_streams=2)
    learner.update(segment_of(stream, 0, 4), torch.arange(2))
    state = learner.state_dict()
    moments = {n: learner.optimizer.state[p]["exp_avg"].clone() for n, p in model.named_parameters()}
    other_model = _model()
    other = Learner(other_model, train_config(lr=1e-2, recurrent_lr_scale=scale), num_streams=2)
    other.load_state_dict(state)
    for name, p in other_model.named_parameters():  # each parameter keeps its own moments
        assert torch.equal(other.optimizer.state[p]["exp_avg"], moments[name])
    lrs = [g["lr"] for g in other.optimizer.param_groups]
    assert lrs == pytest.approx([1e-2] if scale == 1.0 else [1e-2, 1e-2 * scale])
    other.update(segment_of(stream, 1, 4), torch.arange(2))


def test_a_state_saved_before_groups_existed_still_loads():
    model = _model()
    learner = Learner(model, train_config(lr=1e-2), num_streams=2)
    learner.update(segment_of(random_stream(4, 2, seed=4), 0, 4), torch.arange(2))
    state = learner.state_dict()
    del state["groups"]  # the layout of older checkpoints: one group in named_parameters() order
    other = Learner(_model(), train_config(lr=1e-2, recurrent_lr_scale=0.5), num_streams=2)
    other.load_state_dict(state)
    assert len(other.optimizer.param_groups) == 2 and other.updates == 1


def test_bad_scale_is_refused():
    with pytest.raises(ConfigError, match="recurrent_lr_scale"):
        load_config(None, ["train.recurrent_lr_scale=0"])
