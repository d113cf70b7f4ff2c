"""ActorCritic: acting for every space, resets, acting == learning forward, options, refusals."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from gymnasium import spaces

from rtrl_rl.agents import ActorCritic
from rtrl_rl.agents.model import FeedForwardCore

VEC = spaces.Box(-1, 1, (3,), np.float32)


def config(**kw):
    base = dict(core="elstm", learning="rtrl", hidden_size=6, encoder="auto", encoder_size=8,
                encoder_grad="segment", forget_bias=3.0, prev_action=True, prev_reward=True)
    return SimpleNamespace(**{**base, **kw})


def sample(space, lead):
    n = int(np.prod(lead))
    if isinstance(space, spaces.Dict):
        return {k: sample(s, lead) for k, s in space.spaces.items()}
    return torch.as_tensor(np.stack([space.sample() for _ in range(n)])).reshape(lead + space.shape)


ACTIONS = {"discrete": spaces.Discrete(3), "multi": spaces.MultiDiscrete([2, 4]), "box": spaces.Box(-1, 1, (2,))}


@pytest.mark.parametrize("kind", list(ACTIONS))
def test_act_shapes_for_every_action_space(kind):
    space = ACTIONS[kind]
    torch.manual_seed(0)
    model = ActorCritic(VEC, space, config())
    B = 4
    out = model.act(sample(VEC, (B,)), sample(space, (B,)), torch.zeros(B), torch.ones(B, dtype=torch.bool),
                    model.initial_state(B))
    assert out.action.shape == (B,) + space.shape
    assert out.logits.shape == (B, model.policy.param_size)
    assert out.logp.shape == out.value.shape == (B,)
    assert not out.logp.requires_grad and not out.value.requires_grad
    torch.testing.assert_close(out.logp, model.policy.log_prob(out.logits, out.action))
    assert not out.state.has_sensitivities  # acting never computes sensitivities


def test_image_and_dict_observations():
    image = spaces.Box(0, 255, (8, 8, 3), np.uint8)
    space = spaces.Dict({"image": image, "vec": VEC})
    model = ActorCritic(space, spaces.Discrete(2), config())
    assert model.encoder.output_size == 256 + 8
    out = model.act(sample(space, (2,)), torch.zeros(2, dtype=torch.long), torch.zeros(2),
                    torch.ones(2, dtype=torch.bool), model.initial_state(2))
    assert out.action.shape == (2,)


def _inputs(T, B, seed=0):
    g = torch.Generator().manual_seed(seed)
    first = torch.rand(T, B, generator=g) < 0.3
    first[0] = True
    return (torch.rand(T, B, 3, generator=g), torch.randint(0, 3, (T, B), generator=g),
            torch.randn(T, B, generator=g) * 3, first)


@pytest.mark.parametrize("core,learning", [("elstm", "rtrl"), ("mingru", "tbptt"), ("lstm", "tbptt"), ("none", "none")])
def test_acting_step_by_step_equals_learner_unroll(core, learning):
    torch.manual_seed(0)
    model = ActorCritic(VEC, spaces.Discrete(3), config(core=core, learning=learning), reward_clip=1.0).double()
    T, B = 6, 3
    obs, prev_action, prev_reward, first = _inputs(T, B)
    with torch.no_grad():
        params, values, carry = model.unroll(obs, prev_action, prev_reward, first, model.initial_carry(B))
    state = model.initial_state(B)
    for t in range(T):
        out = model.act(obs[t], prev_action[t], prev_reward[t], first[t], state)
        torch.testing.assert_close(out.logits, params[t])
        torch.testing.assert_close(out.value, values[t])
        state = out.state
    for key in state:
        torch.testing.assert_close(state[key], carry[key])


def test_first_resets_state_and_hides_previous_action_and_reward():
    torch.manual_seed(0)
    model = ActorCritic(VEC, spaces.Discrete(3), config()).double()
    obs, prev_action, prev_reward, first = _inputs(5, 2)
    state = model.initial_state(2)
    for t in range(4):  # build up a nonzero state
        state = model.act(obs[t], prev_action[t], prev_reward[t], torch.zeros(2, dtype=torch.bool), state).state
    yes = torch.ones(2, dtype=torch.bool)
    from_old = model.act(obs[4], prev_action[4], prev_reward[4], yes, state)
    fresh = model.act(obs[4], torch.zeros(2, dtype=torch.long), torch.zeros(2), yes, model.initial_state(2))
    torch.testing.assert_close(from_old.logits, fresh.logits)
    torch.testing.assert_close(from_old.value, fresh.value)


def test_bootstrap_value_does_not_advance_the_state():
    torch.manual_seed(0)
    model = ActorCritic(VEC, spaces.Discrete(3), config()).double()
    obs, prev_action, prev_reward, first = _inputs(2, 3)
    state = model.act(obs[0], prev_action[0], prev_reward[0], first[0], model.initial_state(3)).state
    saved = state.clone()
    value = model.bootstrap_value(obs[1], prev_action[1], prev_reward[1], state)
    out = model.act(obs[1], prev_action[1], prev_reward[1], torch.zeros(3, dtype=torch.bool), state)
    torch.testing.assert_close(value, out.value)
    for key in saved:
        assert torch.equal(saved[key], state[key])


def test_reward_clip_and_input_options():
    model = ActorCritic(VEC, spaces.Discrete(3), config(), reward_clip=1.0).double()
    x = model.core_input(torch.zeros(1, 3), torch.tensor([2]), torch.tensor([5.0]), torch.tensor([False]))
    assert x[0, 8] == 1.0  # clipped reward after the encoder features
    assert x[0, 9:].tolist() == [0.0, 0.0, 1.0]  # one-hot previous action
    assert model.core.input_size == 8 + 1 + 3
    bare = ActorCritic(VEC, spaces.Discrete(3), config(prev_action=False, prev_reward=False))
    assert bare.core.input_size == 8
    flagged = ActorCritic(VEC, spaces.Discrete(3), config(start_flag=True)).double()
    assert flagged.core.input_size == 8 + 1 + 3 + 1
    first = torch.tensor([True, False])
    x = flagged.core_input(torch.zeros(2, 3), torch.tensor([2, 2]), torch.tensor([1.0, 1.0]), first)
    assert x[:, -1].tolist() == [1.0, 0.0]  # the flag marks the episode's first step only
    assert x[0, 8:-1].abs().sum() == 0 and x[1, 8:-1].abs().sum() > 0  # prev reward/action still hidden at first


def test_input_mixer_lets_a_linear_core_see_the_observation_gated_by_the_start():
    # Without the mixer the lru's input is a sum of parts (encoded obs + flag): no input unit
    # can carry "obs at the first step only". With it, ReLU(W [obs ; flag] + b) can.
    mixed = ActorCritic(VEC, spaces.Discrete(3), config(core="lru", input_mixer=True, start_flag=True)).double()
    assert mixed.core.input_size == mixed.options["encoder_size"]
    with torch.no_grad():
        mixed.mixer[0].weight.zero_()
        mixed.mixer[0].bias.fill_(-1.0)
        mixed.mixer[0].weight[0, -1] = 1.0  # the start flag
        mixed.mixer[0].weight[0, :8] = 1.0  # the encoded observation
    obs = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    x = mixed.core_input(obs, torch.tensor([0, 0]), torch.zeros(2), torch.tensor([True, False]))
    encoded = mixed.encoder(obs.double())[0].sum()
    assert x.shape == (2, mixed.options["encoder_size"]) and (x >= 0).all()
    torch.testing.assert_close(x[:, 0], torch.stack([torch.relu(encoded), torch.relu(encoded - 1.0)]))
    plain = ActorCritic(VEC, spaces.Discrete(3), config(core="lru", start_flag=True))
    assert plain.mixer is None and plain.core.input_size == 8 + 1 + 3 + 1
    loss = mixed.unroll(obs[:, None], torch.zeros(2, 1, dtype=torch.long), torch.zeros(2, 1),
                        torch.tensor([[True], [False]]), mixed.initial_carry(1))[1].sum()
    loss.backward()
    assert mixed.mixer[0].weight.grad.abs().sum() > 0  # the mixer learns through the core


def test_core_norm_gives_the_heads_a_fixed_scale_whatever_the_core_state():
    # A core output scaled up a millionfold (as when |λ| is near 1 and the input gain large)
    # leaves the value bounded with core_norm; without it the value follows the scale.
    torch.manual_seed(0)
    normed = ActorCritic(VEC, spaces.Discrete(3), config(core="lru", core_norm=True)).double()
    plain = ActorCritic(VEC, spaces.Discrete(3), config(core="lru")).double()
    plain.load_state_dict(normed.state_dict())  # no parameters of its own: the same state dict
    obs = torch.randn(4, 2, 3, dtype=torch.float64)
    rest = (torch.zeros(4, 2, dtype=torch.long), torch.zeros(4, 2, dtype=torch.float64), torch.zeros(4, 2, dtype=torch.bool))
    values = {}
    for scale in (1.0, 1e6):
        with torch.no_grad():
            plain.core.out_weight.mul_(scale), plain.core.out_bias.mul_(scale)
            normed.core.out_weight.copy_(plain.core.out_weight), normed.core.out_bias.copy_(plain.core.out_bias)
        _, value, _ = normed.unroll(obs, *rest, normed.initial_carry(2))
        y, _ = normed.core(normed.core_input(obs, *rest), normed.initial_carry(2), rest[2])
        torch.testing.assert_close(value, normed.value_head(torch.nn.functional.layer_norm(y, y.shape[-1:])))
        values[scale] = (value, plain.unroll(obs, *rest, plain.initial_carry(2))[1])
    # a unit-variance vector of n entries has norm sqrt(n): the value is bounded by the head alone
    head = normed.value_head.linear
    bound = head.weight.norm() * normed.core.output_size ** 0.5 + head.bias.abs().sum()
    assert values[1e6][0].abs().max() <= bound
    assert values[1e6][1].abs().max() > 1e3 * max(bound, values[1.0][1].abs().max())


def test_core_choices_and_encoder_gradient_option():
    assert ActorCritic(VEC, spaces.Discrete(3), config(encoder_grad="step")).core.input_grad == "step"
    assert ActorCritic(VEC, spaces.Discrete(3), config(encoder_grad="segment")).core.input_grad == "segment"
    assert isinstance(ActorCritic(VEC, spaces.Discrete(3), config(core="none")).core, FeedForwardCore)
    assert isinstance(ActorCritic(VEC, spaces.Discrete(3), config(learning="none")).core, FeedForwardCore)
    full = SimpleNamespace(agent=config(hidden_size=7), train=SimpleNamespace(reward_clip=2.0))
    model = ActorCritic(VEC, spaces.Discrete(3), full)
    assert model.core.hidden_size == 7 and float(model.reward_clip) == 2.0


def test_bfloat16_encoder_runs_under_autocast_and_hands_the_core_float32():
    image = spaces.Box(0, 255, (12, 12, 3), np.uint8)
    torch.manual_seed(0)
    exact = ActorCritic(image, spaces.Discrete(2), config())
    fast = ActorCritic(image, spaces.Discrete(2), config(encoder_precision="bfloat16"))
    fast.load_state_dict(exact.state_dict())
    T, B = 3, 2
    obs = sample(image, (T, B))
    rest = (torch.zeros(T, B, dtype=torch.long), torch.zeros(T, B), torch.zeros(T, B, dtype=torch.bool))
    want, got = exact.core_input(obs, *rest), fast.core_input(obs, *rest)
    assert got.dtype == torch.float32 and not torch.equal(got, want)  # the encoder did run in bfloat16
    torch.testing.assert_close(got, want, atol=0.05, rtol=0.05)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        manual = exact.encoder(obs.reshape(T * B, *image.shape))
    torch.testing.assert_close(got[..., :256].reshape(T * B, -1), manual.float())
    got.square().sum().backward()
    grads = [p.grad for p in fast.encoder.parameters()]
    assert all(g is not None and g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)


def test_bad_configs_and_spaces_are_refused():
    with pytest.raises(ValueError, match="encoder precision"):
        ActorCritic(VEC, spaces.Discrete(3), config(encoder_precision="float16"))
    with pytest.raises(ValueError, match="exact dense RTRL"):
        ActorCritic(VEC, spaces.Discrete(3), config(core="lstm", learning="rtrl", hidden_size=128))
    with pytest.raises(ValueError, match="input_grad"):  # the core refuses it
        ActorCritic(VEC, spaces.Discrete(3), config(encoder_grad="none"))
    with pytest.raises(ValueError, match="unknown core"):
        ActorCritic(VEC, spaces.Discrete(3), config(core="gru9"))
    with pytest.raises(ValueError, match="unsupported action space"):
        ActorCritic(VEC, spaces.MultiBinary(2), config())
    with pytest.raises(ValueError, match="unsupported observation space"):
        ActorCritic(spaces.Tuple([VEC, spaces.Text(4)]), spaces.Discrete(3), config())
