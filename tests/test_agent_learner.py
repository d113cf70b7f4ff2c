"""The learner: exact RTRL gradient through the whole learner path, per-stream carries,
determinism, loss reduction, schedules and checkpoint state."""

import copy
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from gymnasium import spaces

from rtrl_rl.agents import ActorCritic, Learner
from rtrl_rl.agents.divergence import Diverged
from rtrl_rl.agents.vtrace import rewards_and_discounts, vtrace

OBS = spaces.Box(-1, 1, (3,), np.float32)
ACT = spaces.Discrete(3)


def agent_config(**kw):
    base = dict(core="elstm", learning="rtrl", hidden_size=5, encoder="mlp", encoder_size=4,
                encoder_grad="segment", forget_bias=1.0, prev_action=True, prev_reward=True)
    return SimpleNamespace(**{**base, **kw})


def train_config(**kw):
    base = dict(gamma=0.9, entropy_cost=0.01, baseline_cost=0.5, optimizer="adam", lr=0.0, lr_decay=False,
                rmsprop_alpha=0.99, rmsprop_eps=0.01, adam_eps=1e-8, max_grad_norm=0.0, reward_clip=0.0,
                loss_reduction="sum", total_steps=1000)
    return SimpleNamespace(**{**base, **kw})


def make_model(seed=0, **kw):
    torch.manual_seed(seed)
    return ActorCritic(OBS, ACT, agent_config(**kw)).double()


def random_stream(steps, batch, seed=0):
    """A whole stream of ``steps`` transitions in the segment layout (rows 0..steps)."""
    g = torch.Generator().manual_seed(seed)
    first = torch.rand(steps + 1, batch, generator=g) < 0.2
    first[0] = True
    first[4, 0] = True  # a reset exactly at a segment boundary when T = 4 (or 2, or 1)
    terminated = first[1:] & (torch.rand(steps, batch, generator=g) < 0.5)
    truncated = first[1:] & ~terminated
    prev_action = torch.randint(0, 3, (steps + 1, batch), generator=g)
    return {
        "obs": torch.rand(steps + 1, batch, 3, generator=g) * 2 - 1,
        "first": first,
        "prev_action": prev_action,
        "prev_reward": torch.randn(steps + 1, batch, generator=g),
        "action": prev_action[1:].clone(),
        "behaviour_logp": -torch.rand(steps, batch, generator=g) - 0.6,
        "reward": torch.randn(steps, batch, generator=g),
        "terminated": terminated,
        "truncated": truncated,
        "life_lost": torch.rand(steps, batch, generator=g) < 0.1,
        "truncation_value": torch.randn(steps, batch, generator=g) * truncated,
    }


def segment_of(stream, k, T):
    """Segment k of length T: rows kT..kT+T of the inputs, steps kT..kT+T-1 of the outcomes."""
    rows = stream["obs"].shape[0]
    return {key: v[k * T: k * T + T + (1 if v.shape[0] == rows else 0)] for key, v in stream.items()}


def core_grads(model):
    return {n: p.grad.clone() for n, p in model.core.named_parameters()}


def learner_core_gradient(model, stream, T, K, learning_cfg=None):
    """Sum over K consecutive segments of the learner's core gradient, parameters held fixed (lr 0)."""
    learner = Learner(model, learning_cfg or train_config(), num_streams=stream["reward"].shape[1])
    before = copy.deepcopy(model.state_dict())
    total = None
    ids = torch.arange(stream["reward"].shape[1])
    for k in range(K):
        learner.update(segment_of(stream, k, T), ids)
        grads = core_grads(model)
        total = grads if total is None else {n: total[n] + g for n, g in grads.items()}
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]), f"{name} changed with lr 0"
    return total


def bptt_core_gradient(model, stream, T, K, cfg):
    """Autograd over the whole stream (plain reference cell) with each segment's V-trace targets
    computed from the detached full-stream values, exactly as the learner defines its loss."""
    rows = K * T + 1
    x = model.core_input(stream["obs"][:rows], stream["prev_action"][:rows], stream["prev_reward"][:rows],
                         stream["first"][:rows])
    s0 = torch.zeros(x.shape[1], model.core.hidden_size, dtype=torch.float64)
    y = model.core.reference_forward(x, s0, stream["first"][:rows])
    params, values = model.policy(y), model.value_head(y)
    loss = 0.0
    for k in range(K):
        seg, t = segment_of(stream, k, T), slice(k * T, k * T + T)
        rewards, discounts = rewards_and_discounts(
            seg["reward"].double(), seg["terminated"], seg["truncated"], seg["first"][1:], cfg.gamma,
            seg["truncation_value"].double(), seg["life_lost"], cfg.reward_clip)
        logp = model.policy.log_prob(params[t], seg["action"])
        target = vtrace(seg["behaviour_logp"].double(), logp, rewards, discounts, values[t], values[k * T + T])
        loss = loss + (-logp * target.pg_advantages).sum()
        loss = loss + cfg.baseline_cost * 0.5 * (target.vs - values[t]).pow(2).sum()
        loss = loss - cfg.entropy_cost * model.policy.entropy(params[t]).sum()
    model.zero_grad()
    loss.backward()
    return core_grads(model)


@pytest.mark.parametrize(
    "core,T,K,encoder_grad",
    [("elstm", 4, 3, "segment"), ("elstm", 1, 6, "step"), ("mingru", 2, 4, "step"), ("elstm", 4, 2, "step")],
)
def test_learner_core_gradient_equals_full_stream_bptt(core, T, K, encoder_grad):
    stream = random_stream(T * K, batch=2, seed=1)
    model = make_model(core=core, encoder_grad=encoder_grad)
    cfg = train_config(life_loss=True)  # every flag of the segment shapes the targets
    rtrl = learner_core_gradient(model, stream, T, K, cfg)
    bptt = bptt_core_gradient(model, stream, T, K, cfg)
    for name in bptt:
        err = (rtrl[name] - bptt[name]).abs().max() / bptt[name].abs().max()
        assert err < 1e-10, f"{name}: relative error {err:.2e}"


def test_tbptt_learner_differs_from_full_stream_bptt():
    """The comparison above is not vacuous: truncating at segment starts changes the gradient."""
    stream = random_stream(12, batch=2, seed=1)
    model = make_model(learning="tbptt")
    tbptt = learner_core_gradient(model, stream, 4, 3)
    bptt = bptt_core_gradient(model, stream, 4, 3, train_config())
    assert (tbptt["weight"] - bptt["weight"]).abs().max() > 1e-6


def _run(model, stream, T, K, order, cfg):
    """K updates; at update k the columns (streams) are presented in the order ``order(k)``."""
    learner = Learner(model, cfg, num_streams=stream["reward"].shape[1])
    for k in range(K):
        perm = order(k)
        learner.update({key: v[:, perm] for key, v in segment_of(stream, k, T).items()}, perm)
    return learner


def test_carries_follow_stream_ids_when_batch_order_changes():
    T, K, B = 3, 4, 4
    stream = random_stream(T * K, B, seed=2)
    cfg = train_config(lr=1e-2)
    perms = [torch.randperm(B, generator=torch.Generator().manual_seed(k)) for k in range(K)]
    ordered = _run(make_model(), stream, T, K, lambda k: torch.arange(B), cfg)
    shuffled = _run(make_model(), stream, T, K, lambda k: perms[k], cfg)
    for (name, a), b in zip(ordered.model.named_parameters(), shuffled.model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12, msg=name)
    for key in ordered.carry:
        torch.testing.assert_close(ordered.carry[key], shuffled.carry[key], rtol=1e-10, atol=1e-12)
    # Not vacuous: a learner told the wrong stream ids ends elsewhere.
    wrong = Learner(make_model(), cfg, num_streams=B)
    for k in range(K):
        wrong.update({key: v[:, perms[k]] for key, v in segment_of(stream, k, T).items()}, torch.arange(B))
    assert not torch.allclose(wrong.model.core.weight, ordered.model.core.weight, rtol=1e-6, atol=0)


def test_update_touches_only_the_given_streams():
    stream = random_stream(4, 2, seed=3)
    learner = Learner(make_model(), train_config(), num_streams=5)
    learner.update(segment_of(stream, 0, 4), torch.tensor([3, 1]))
    touched = torch.tensor([False, True, False, True, False])
    for key, value in learner.carry.items():
        assert value[~touched].abs().sum() == 0
        assert value[touched].abs().sum() > 0


def test_same_seed_same_parameters_after_updates():
    def run(seed):
        model = make_model(seed=seed)
        learner = Learner(model, train_config(lr=1e-2, optimizer="rmsprop", max_grad_norm=1.0), num_streams=2)
        stream = random_stream(12, 2, seed=4)
        for k in range(3):
            learner.update(segment_of(stream, k, 4), torch.arange(2))
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    assert torch.equal(run(0), run(0))
    assert not torch.equal(run(0), run(1))


def test_mean_reduction_is_sum_over_steps():
    stream = random_stream(4, 2, seed=5)
    out = {}
    for how in ("sum", "mean"):
        learner = Learner(make_model(), train_config(loss_reduction=how), num_streams=2)
        out[how] = learner.update(segment_of(stream, 0, 4), torch.arange(2))
    for key in ("losses/policy", "losses/value", "losses/entropy", "losses/total", "losses/grad_norm"):
        assert out["sum"][key] == pytest.approx(8 * out["mean"][key], rel=1e-10)


def test_metrics_lr_decay_and_state_dict_round_trip():
    stream = random_stream(8, 2, seed=6)
    cfg = train_config(lr=1e-3, lr_decay=True, total_steps=16, reward_clip=1.0, optimizer="rmsprop")
    model = make_model()
    learner = Learner(model, cfg, num_streams=2)
    assert float(model.reward_clip) == 1.0  # acting copies clip the core input like the learner
    m = learner.update(segment_of(stream, 0, 4), torch.arange(2))
    assert set(m) >= {"losses/policy", "losses/value", "losses/entropy", "losses/grad_norm",
                      "rtrl/sensitivity_norm", "lr"}
    assert m["lr"] == pytest.approx(1e-3) and m["rtrl/sensitivity_norm"] > 0
    assert learner.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3 * 0.5)  # 8 of 16 steps done
    state = learner.state_dict()
    other = Learner(make_model(), cfg, num_streams=2)
    other.load_state_dict(state)
    assert (other.updates, other.steps) == (1, 8)
    assert other.optimizer.param_groups[0]["lr"] == pytest.approx(5e-4)
    learner.update(segment_of(stream, 1, 4), torch.arange(2))
    assert learner.optimizer.param_groups[0]["lr"] == 0.0


def test_bad_stream_ids_are_refused():
    learner = Learner(make_model(), train_config(), num_streams=3)
    seg = segment_of(random_stream(4, 2), 0, 4)
    for ids, match in [([0, 0], "distinct"), ([0, 3], r"\[0, 3\)"), ([0], "shape")]:
        with pytest.raises(ValueError, match=match):
            learner.update(seg, torch.tensor(ids))


def test_bad_optimizer_and_reduction_are_refused():
    with pytest.raises(ValueError, match="optimizer"):
        Learner(make_model(), train_config(optimizer="sgd"), num_streams=1)
    learner = Learner(make_model(), train_config(loss_reduction="max"), num_streams=2)
    with pytest.raises(ValueError, match="loss reduction"):
        learner.update(segment_of(random_stream(4, 2), 0, 4), torch.arange(2))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_learner_on_cuda_matches_cpu():
    stream = random_stream(8, 2, seed=7)
    results = []
    for device in ("cpu", "cuda"):
        model = make_model().to(device)
        learner = Learner(model, train_config(lr=1e-2), num_streams=3)
        for k in range(2):  # CPU segments are moved to the model's device
            learner.update(segment_of(stream, k, 4), torch.tensor([2, 0]))
        results.append(torch.cat([p.detach().cpu().flatten() for p in model.parameters()]))
    torch.testing.assert_close(results[0], results[1], rtol=1e-9, atol=1e-12)


def test_non_finite_gradient_stops_without_touching_parameters():
    stream = random_stream(4, 2, seed=8)
    stream["reward"][0, 0] = float("nan")
    model = make_model()
    before = [p.detach().clone() for p in model.parameters()]
    learner = Learner(model, train_config(lr=1e-2), num_streams=2)
    with pytest.raises(Diverged, match="training diverged at update 1") as caught:
        learner.update(segment_of(stream, 0, 4), torch.arange(2))
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    message = str(caught.value)
    # it names the loss terms that broke, where the gradient broke, and that the rewards are to blame
    assert "value" in message and "loss are not finite" in message and "the gradient is not finite in" in message
    assert "largest |reward| in the segment NaN/inf" in message and "the rewards hold NaN or inf" in message


def test_a_divergence_with_finite_rewards_names_the_loss_and_group_and_not_the_rewards():
    # An exploding value head makes the value loss overflow (float64 here) while every reward is finite.
    stream = random_stream(4, 2, seed=8)
    model = make_model()
    with torch.no_grad():
        model.value_head.linear.weight.mul_(1e170)
    learner = Learner(model, train_config(lr=1e-2), num_streams=2)
    with pytest.raises(Diverged) as caught:
        learner.update(segment_of(stream, 0, 4), torch.arange(2))
    message = str(caught.value)
    assert "the value loss is not finite" in message and "(policy" in message
    assert "value_head" in message and "lower train.lr" in message and "When training diverges" in message
    assert "check them" not in message and "NaN/inf" not in message.split("largest |reward|")[1].split(",")[0]
    assert isinstance(caught.value, FloatingPointError) and caught.value.reason == "diverged"


def test_life_loss_flags_are_used_only_when_enabled():
    stream = random_stream(6, 3, seed=4)
    stream["life_lost"][2] = True  # at least one lost life in the segment
    no_lives = {**stream, "life_lost": torch.zeros_like(stream["life_lost"])}
    losses = {}
    for name, cfg, segment in [("off", train_config(), stream), ("off-none", train_config(), no_lives),
                               ("on", train_config(life_loss=True), stream)]:
        model = make_model(seed=1)
        learner = Learner(model, cfg, num_streams=3)
        losses[name] = learner.loss(segment, learner.carry)[0].item()
    assert losses["off"] == losses["off-none"]
    assert losses["on"] != losses["off"]


def test_a_gradient_whose_norm_alone_overflows_is_told_apart():
    # float32: every gradient entry finite, the sum of their squares beyond 3.4e38
    stream = random_stream(4, 2, seed=8)
    model = ActorCritic(OBS, ACT, agent_config())
    with torch.no_grad():
        model.value_head.linear.weight.mul_(1e18)
    learner = Learner(model, train_config(lr=1e-2), num_streams=2)
    segment = {k: v.float() if v.is_floating_point() else v for k, v in segment_of(stream, 0, 4).items()}
    with pytest.raises(Diverged, match="the loss terms and their gradient are finite .* but the gradient's norm "
                                       "overflows; the largest finite gradient is in the"):
        learner.update(segment, torch.arange(2))
