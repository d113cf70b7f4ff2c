"""POPGym's network shape (agent.encoder=popgym, agent.heads=popgym), the ring options, the
clipped Box action fed back, and the default model left as it was."""

import math
from types import SimpleNamespace

import pytest
import torch
from gymnasium import spaces

from rtrl_rl.agents.cores.complex_core import R_MAX, R_MIN
from rtrl_rl.agents.model import ActorCritic
from rtrl_rl.agents.popgym_net import MLPTrunk, PopgymEncoder
from rtrl_rl.config import AgentConfig, ConfigError, load_config

OBS = spaces.Tuple((spaces.Discrete(4), spaces.Box(-1, 1, (3,))))
REPLICA = dict(core="gru", learning="tbptt", encoder="popgym", heads="popgym", encoder_size=128, hidden_size=256,
               start_flag=True, prev_reward=False)


def _unroll(model, T=3, B=2, prev_action=None):
    obs = (torch.randint(0, 4, (T, B)), torch.randn(T, B, 3))
    prev_action = torch.randint(0, 4, (T, B)) if prev_action is None else prev_action
    first = torch.zeros(T, B, dtype=torch.bool)
    first[0] = True
    return model.unroll(obs, prev_action, torch.zeros(T, B), first, model.initial_carry(B))


def test_popgym_encoder_reads_observation_and_extras():
    torch.manual_seed(0)
    model = ActorCritic(OBS, spaces.Discrete(4), AgentConfig(**REPLICA))
    enc = model.encoder
    assert isinstance(enc, PopgymEncoder)
    # 4 (one-hot obs) + 3 (box) + 4 (one-hot previous action) + 1 (start flag); no reward
    assert enc.net[0].in_features == 12 and enc.output_size == 128
    norm = enc.net[1]
    assert isinstance(norm, torch.nn.LayerNorm) and not norm.elementwise_affine
    assert isinstance(enc.net[3], torch.nn.LeakyReLU)
    assert model.core.input_size == 128  # the encoder's output is the whole core input
    for layer in (enc.net[0], enc.net[2]):  # orthogonal: rows (or columns) orthonormal
        w = layer.weight.detach().double()
        gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
        assert torch.allclose(gram, torch.eye(gram.shape[0], dtype=torch.float64), atol=1e-5)
    # the previous action reaches the core through the encoder
    x0 = model.core_input((torch.zeros(1, 2, dtype=torch.long), torch.zeros(1, 2, 3)), torch.tensor([[0, 1]]),
                          torch.zeros(1, 2), torch.zeros(1, 2, dtype=torch.bool))
    assert not torch.allclose(x0[0, 0], x0[0, 1])
    params, values, _ = _unroll(model)
    assert params.shape == (3, 2, 4) and values.shape == (3, 2)


def test_popgym_heads_are_separate_mlps_with_small_final_layers():
    torch.manual_seed(0)
    model = ActorCritic(OBS, spaces.Discrete(6), AgentConfig(**REPLICA))
    assert isinstance(model.actor_trunk, MLPTrunk) and isinstance(model.critic_trunk, MLPTrunk)
    actor = {id(p) for p in model.actor_trunk.parameters()}
    assert actor.isdisjoint(id(p) for p in model.critic_trunk.parameters())
    layers = [m for m in model.actor_trunk.net if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in layers] == [(256, 128), (128, 128)]
    assert model.policy.linear.in_features == 128 and model.value_head.linear.in_features == 128
    # N(0, 0.01^2): 768 and 128 samples, std within a few standard errors of 0.01
    assert 0.008 < float(model.policy.linear.weight.detach().std()) < 0.012
    assert 0.007 < float(model.value_head.linear.weight.detach().std()) < 0.013
    params, values, _ = _unroll(model, prev_action=torch.randint(0, 6, (3, 2)))
    assert float(values.detach().abs().max()) < 0.5  # small final layers: values start near 0


def test_popgym_shape_around_every_core_kind():
    for core, learning in (("lru", "rtrl"), ("elstm", "rtrl"), ("lstm", "tbptt"), ("none", "none")):
        opts = {**REPLICA, "core": core, "learning": learning, "hidden_size": 16, "encoder_size": 8}
        model = ActorCritic(OBS, spaces.Discrete(4), AgentConfig(**opts))
        params, values, _ = _unroll(model)
        assert params.shape == (3, 2, 4) and torch.isfinite(values).all()


# The default model's state dict (AgentConfig(), Discrete(4) obs, Discrete(3) actions, seed 0) as
# the code built it before the POPGym options existed: shape, sum and sum of squares per entry.
DEFAULT_FINGERPRINT = {
    "encoder.net.0.weight": ((64, 4), -5.765865, 20.910936),
    "policy.linear.weight": ((3, 64), 1.450351, 1.153173),
    "core.weight": ((128, 68), 2.162895, 42.339907),
    "core.bias": ((128,), 192.473936, 576.340297),
    "core.recurrent": ((128,), 0.092069, 0.654787),
    "core.out_weight": ((64, 132), 5.545198, 21.421881),
    "value_head.linear.weight": ((1, 64), -0.106156, 0.396007),
}


def test_default_model_is_unchanged():
    torch.manual_seed(0)
    model = ActorCritic(spaces.Discrete(4), spaces.Discrete(3), AgentConfig())
    state = model.state_dict()
    assert model.actor_trunk is None and model.critic_trunk is None
    assert sorted(state) == sorted(["reward_clip", "encoder.net.0.weight", "encoder.net.0.bias", "policy.linear.weight",
                                    "policy.linear.bias", "core.weight", "core.bias", "core.recurrent",
                                    "core.out_weight", "core.out_bias", "value_head.linear.weight",
                                    "value_head.linear.bias"])
    for key, (shape, total, squares) in DEFAULT_FINGERPRINT.items():
        value = state[key].double()
        assert tuple(value.shape) == shape
        assert float(value.sum()) == pytest.approx(total, abs=1e-5)
        assert float(value.pow(2).sum()) == pytest.approx(squares, abs=1e-5)


def test_bad_heads_is_refused():
    with pytest.raises(ValueError, match="agent.heads"):
        ActorCritic(OBS, spaces.Discrete(4), SimpleNamespace(heads="mlp"))
    with pytest.raises(ConfigError, match="agent.heads"):
        load_config(None, ["agent.heads=mlp"])


def test_box_action_fed_back_is_clipped_so_the_loop_stays_bounded():
    """A policy whose mean is 10x the previous action: fed back raw, the action grows as 10^t
    within the episode; clipped to the Box bounds, the core input stays within them."""
    torch.manual_seed(0)
    box = spaces.Box(-2.0, 2.0, (1,))
    model = ActorCritic(spaces.Box(-1, 1, (1,)), box, AgentConfig(core="none", learning="none", encoder="identity",
                                                                  prev_reward=False, hidden_size=4))
    with torch.no_grad():  # core input [obs ; prev action] -> relu(linear) -> mean = 10 * prev action
        model.core.linear.weight.zero_()
        model.core.linear.bias.zero_()
        model.core.linear.weight[0, 1], model.core.linear.weight[1, 1] = 1.0, -1.0
        model.policy.linear.weight.zero_()
        model.policy.linear.bias.zero_()
        model.policy.linear.weight[0, 0], model.policy.linear.weight[0, 1] = 10.0, -10.0
    state, action = model.initial_state(1), torch.full((1, 1), 1.0)
    first = torch.zeros(1, dtype=torch.bool)
    for _ in range(20):
        x = model.core_input(torch.zeros(1, 1, 1), action[None], torch.zeros(1, 1), first[None])
        assert float(x.abs().max()) <= 2.0
        out = model.act(torch.zeros(1, 1), action, torch.zeros(1), first, state, greedy=True)
        action, state = out.action, out.state
    assert float(action.abs().max()) == pytest.approx(20.0)  # the sample itself stays unclipped


def test_gaussian_head_clips_only_finite_bounds():
    model = ActorCritic(spaces.Discrete(2), spaces.Box(low=torch.tensor([-1.0, -math.inf]).numpy(),
                                                       high=torch.tensor([1.0, math.inf]).numpy()), AgentConfig())
    encoded = model.policy.encode_action(torch.tensor([[5.0, -7.0], [-3.0, 9.0]]), torch.float32)
    assert encoded.tolist() == [[1.0, -7.0], [-1.0, 9.0]]
    assert "action_low" not in model.state_dict()  # bounds follow the space: older state dicts still load


@pytest.mark.parametrize("core", ["lru", "rtu"])
def test_ring_options_reach_the_core(core):
    torch.manual_seed(0)
    wide = ActorCritic(spaces.Discrete(4), spaces.Discrete(3),
                       AgentConfig(core=core, hidden_size=256, ring_r_min=0.0, ring_r_max=1.0))
    radius = torch.exp(-torch.exp(wide.core.nu.detach()))
    assert float(radius.min()) < 0.2 and float(radius.max()) > 0.99 and float(radius.max()) < 1.0
    narrow = ActorCritic(spaces.Discrete(4), spaces.Discrete(3), AgentConfig(core=core, core_layers=2))
    for layer in narrow.core.layers:
        radius = torch.exp(-torch.exp(layer.nu.detach()))
        assert float(radius.min()) >= 0.9 - 1e-6 and float(radius.max()) <= 0.999 + 1e-6


def test_ring_config_defaults_are_the_cores_and_bad_rings_are_refused():
    agent = AgentConfig()
    assert (agent.ring_r_min, agent.ring_r_max) == (R_MIN, R_MAX)
    with pytest.raises(ConfigError, match="ring_r_max"):
        load_config(None, ["agent.ring_r_max=1.5"])
    with pytest.raises(ValueError, match="r_min <= r_max"):
        ActorCritic(spaces.Discrete(4), spaces.Discrete(3), AgentConfig(core="lru", ring_r_min=0.9, ring_r_max=0.5))


def _value_change_after_one_step(value_norm: bool, feature_scale: float) -> float:
    """Largest change of the values of one segment by one Adam step (lr 1e-3), with the LRU's
    readout weights multiplied by ``feature_scale`` (the core's output grows with them)."""
    from test_agent_learner import random_stream, segment_of, train_config

    from rtrl_rl.agents import Learner

    torch.manual_seed(0)
    model = ActorCritic(spaces.Box(-1, 1, (3,)), spaces.Discrete(3),
                        AgentConfig(core="lru", hidden_size=16, encoder_size=8, value_norm=value_norm)).double()
    with torch.no_grad():
        model.core.out_weight.mul_(feature_scale)
    segment = segment_of(random_stream(4, 2, seed=5), 0, 4)

    def values():
        with torch.no_grad():
            _, v, _ = model.unroll(segment["obs"][:4], segment["prev_action"][:4], segment["prev_reward"][:4],
                                   segment["first"][:4], model.initial_carry(2))
        return v

    before = values()
    Learner(model, train_config(lr=1e-3), num_streams=2).update(segment, torch.arange(2))
    return float((values() - before).abs().max())


def test_one_adam_step_moves_the_value_by_the_feature_scale_unless_normalised():
    """The MineSweeper divergence in miniature: Adam moves each weight by about lr whatever the
    gradient's size, so a step changes the value by about lr x |features|; once the core's output
    has grown, one step overshoots the value's range, the TD error flips, and the next steps
    grow the features further. With value_norm the change does not grow with the features."""
    raw = [_value_change_after_one_step(False, s) for s in (1.0, 100.0)]
    normed = [_value_change_after_one_step(True, s) for s in (1.0, 100.0)]
    assert raw[1] > 10 * raw[0] and raw[1] > 0.1  # a tenth of the return range in one step
    assert normed[1] < normed[0] and normed[1] < 0.05


def _first_card_accuracy(model, steps: int, T: int = 20, B: int = 32) -> float:
    """Train ``model`` by cross-entropy to output the episode's first card at every step
    (RepeatFirst as a supervised task, random previous actions) and return its accuracy
    over the last 20 steps."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    first = torch.zeros(T, B, dtype=torch.bool)
    first[0] = True
    hits = []
    for _ in range(steps):
        cards = torch.randint(0, 4, (T, B))
        target = cards[0].expand(T, B)
        logits, _, _ = model.unroll(cards, torch.randint(0, 4, (T, B)), torch.zeros(T, B), first,
                                    model.initial_carry(B))
        loss = torch.nn.functional.cross_entropy(logits.reshape(T * B, -1), target.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        hits.append((logits.argmax(-1) == target).float().mean().item())
    return sum(hits[-20:]) / 20


def test_the_replica_network_can_store_the_first_card():
    # The cpu replica plateaus at 0.5 on RepeatFirstEasy. Trained by supervision on the same
    # task, its network (POPGym's encoder and heads around GRU 256) stores the first card
    # within a few hundred Adam steps, so that plateau is not the network's inability.
    torch.manual_seed(0)
    model = ActorCritic(spaces.Discrete(4), spaces.Discrete(4), AgentConfig(**REPLICA, prev_action=True))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small matrices: more threads only wait on each other
    try:
        accuracy = _first_card_accuracy(model, steps=200)
    finally:
        torch.set_num_threads(threads)
    assert accuracy > 0.95
