"""PPO's loss and learner: GAE and the clipped loss against an independent computation, the
unclipped limit, minibatches of whole streams replayed from the stored carry, the carry
rule, the early stop at a target KL, the metrics."""

from __future__ import annotations

import copy
import math
import statistics
from types import SimpleNamespace

import pytest
import torch

from rtrl_rl.agents import Learner, PPOLearner
from rtrl_rl.agents.ppo_objective import explained_variance
from rtrl_rl.agents.segment_learner import segment_bootstrap, unroll_segment
from tests.test_agent_learner import make_model, random_stream, segment_of, train_config


def ppo_config(**kw):
    base = dict(clip=0.2, epochs=1, minibatches=1, gae_lambda=0.9, value_clip=0.0, norm_advantages=True,
                target_kl=0.0)
    return SimpleNamespace(**{**base, **kw})


@torch.no_grad()
def model_outputs(model, seg, carry):
    """logp, entropy, values (T, B) and the bootstrap value (B,) of ``model`` on ``seg`` from ``carry``."""
    params, values, after = unroll_segment(model, seg, carry)
    bootstrap = segment_bootstrap(model, seg, after)
    return model.policy.log_prob(params, seg["action"]), model.policy.entropy(params), values, bootstrap


def by_hand(seg, new, old, cfg, ppo):
    """The PPO loss of one minibatch written out step by step in Python floats.

    ``new`` = (logp, entropy, values) under the current parameters, ``old`` = (values,
    bootstrap) that GAE uses. Returns (total, policy, value, entropy, advantages, returns),
    the last two as {(t, b): float}."""
    (logp, entropy, values), (old_values, bootstrap) = new, old
    T, B = seg["reward"].shape
    f = lambda x, t, b: float(x[t, b])  # noqa: E731
    reward, goes_on = {}, {}
    for t in range(T):
        for b in range(B):
            ended = bool(seg["terminated"][t, b] or seg["truncated"][t, b] or seg["first"][t + 1, b]
                         or (getattr(cfg, "life_loss", False) and seg["life_lost"][t, b]))
            goes_on[t, b] = 0.0 if ended else 1.0
            cut = seg["truncated"][t, b] and not seg["terminated"][t, b]
            reward[t, b] = f(seg["reward"], t, b) + (cfg.gamma * f(seg["truncation_value"], t, b) if cut else 0.0)
    value = lambda t, b: float(bootstrap[b]) if t == T else f(old_values, t, b)  # noqa: E731
    delta = {(t, b): reward[t, b] + cfg.gamma * goes_on[t, b] * value(t + 1, b) - value(t, b)
             for t in range(T) for b in range(B)}
    adv = {}
    for (t, b) in delta:  # A_t = sum_l (gamma lambda)^l delta_{t+l}, cut where the episode ends
        total, weight = 0.0, 1.0
        for s in range(t, T):
            total += weight * delta[s, b]
            weight *= cfg.gamma * ppo.gae_lambda * goes_on[s, b]
        adv[t, b] = total
    returns = {k: adv[k] + value(*k) for k in adv}
    mean, std = statistics.fmean(adv.values()), statistics.stdev(adv.values())
    pol, val, ent = [], [], []
    for (t, b), a in adv.items():
        a = (a - mean) / (std + 1e-8)
        ratio = math.exp(f(logp, t, b) - f(seg["behaviour_logp"], t, b))
        pol.append(max(-a * ratio, -a * min(max(ratio, 1 - ppo.clip), 1 + ppo.clip)))
        v, o, r = f(values, t, b), value(t, b), returns[t, b]
        err = (v - r) ** 2
        if ppo.value_clip > 0:
            err = max(err, (o + min(max(v - o, -ppo.value_clip), ppo.value_clip) - r) ** 2)
        val.append(0.5 * err)
        ent.append(f(entropy, t, b))
    policy, value_loss, entropy_term = (statistics.fmean(x) for x in (pol, val, ent))
    total = policy + cfg.baseline_cost * value_loss - cfg.entropy_cost * entropy_term
    return total, policy, value_loss, entropy_term, adv, returns


def test_loss_on_a_tiny_batch_equals_an_independent_computation():
    cfg, ppo = train_config(loss_reduction="mean", life_loss=True), ppo_config(value_clip=0.05)
    stream = random_stream(8, 3, seed=5)
    model = make_model(seed=3)
    learner = PPOLearner(model, cfg, ppo, num_streams=3)
    learner.update(segment_of(stream, 0, 4), torch.arange(3))  # a carry with state and sensitivities
    seg, carry = segment_of(stream, 1, 4), learner.carry
    assert all(seg[k].any() for k in ("terminated", "truncated", "life_lost"))  # every flag shapes the targets
    targets, _ = learner.targets(seg, carry)
    _, _, old_values, bootstrap = model_outputs(model, seg, carry)
    with torch.no_grad():  # new values that differ from the old ones, so the value clip has work to do
        model.value_head.linear.bias.add_(0.3)
    loss, losses = learner.loss(seg, carry, targets)
    logp, entropy, values, _ = model_outputs(model, seg, carry)
    total, policy, value, ent, adv, returns = by_hand(seg, (logp, entropy, values), (old_values, bootstrap),
                                                      cfg, ppo)
    for (t, b), a in adv.items():
        assert targets.advantages[t, b].item() == pytest.approx(a, rel=1e-12, abs=1e-12)
        assert targets.returns[t, b].item() == pytest.approx(returns[t, b], rel=1e-12, abs=1e-12)
    assert loss.item() == pytest.approx(total, rel=1e-12)
    assert [losses.policy.item(), losses.value.item(), losses.entropy.item()] == pytest.approx([policy, value, ent],
                                                                                               rel=1e-12)
    assert 0 < losses.clip_fraction.item() < 1  # the ratio clip binds on some steps, not all
    # not vacuous: without the value clip the value term is another number
    assert by_hand(seg, (logp, entropy, values), (old_values, bootstrap), cfg,
                   ppo_config(value_clip=0.0))[2] != pytest.approx(value, rel=1e-6)


def unclipped_update(model, seg, cfg, ppo, importance_weighted: bool):
    """One Adam step of a copy of ``model`` on the plain policy-gradient loss written out:
    -mean(Â log pi) (or -mean(Â pi/mu) with ``importance_weighted``) + baseline_cost *
    0.5 mean((V - R)^2) - entropy_cost * mean(H), from a zero carry. Returns its parameters."""
    other = copy.deepcopy(model)
    optimizer = torch.optim.Adam(other.parameters(), lr=cfg.lr, eps=cfg.adam_eps)
    carry = other.initial_carry(seg["reward"].shape[1])
    logp0, _, old_values, bootstrap = model_outputs(other, seg, carry)
    *_, adv, returns = by_hand(seg, (logp0, logp0, old_values), (old_values, bootstrap), cfg, ppo)
    T, B = seg["reward"].shape
    adv = torch.tensor([[adv[t, b] for b in range(B)] for t in range(T)], dtype=torch.float64)
    returns = torch.tensor([[returns[t, b] for b in range(B)] for t in range(T)], dtype=torch.float64)
    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    params, values, _ = unroll_segment(other, seg, carry)
    logp = other.policy.log_prob(params, seg["action"])
    weight = torch.exp(logp - seg["behaviour_logp"].double()) if importance_weighted else logp
    loss = (-(adv * weight).mean() + cfg.baseline_cost * 0.5 * (values - returns).pow(2).mean()
            - cfg.entropy_cost * other.policy.entropy(params).mean())
    loss.backward()
    optimizer.step()
    return list(other.parameters())


@pytest.mark.parametrize("behaviour", ["current policy", "another policy"])
def test_one_epoch_one_minibatch_and_a_huge_clip_is_the_unclipped_policy_gradient_update(behaviour):
    cfg = train_config(lr=1e-2, loss_reduction="mean")
    seg = segment_of(random_stream(4, 3, seed=6), 0, 4)
    model = make_model(seed=4)
    if behaviour == "current policy":  # as the synchronous trainer collects: pi/mu = 1 before the step
        seg["behaviour_logp"] = model_outputs(model, seg, model.initial_carry(3))[0]
    huge = ppo_config(clip=1e9, value_clip=0.0)
    want = unclipped_update(model, seg, cfg, huge, importance_weighted=behaviour != "current policy")
    learner = PPOLearner(model, cfg, huge, num_streams=3)
    learner.update(seg, torch.arange(3))
    for (name, got), ref in zip(model.named_parameters(), want):
        torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-14, msg=name)
    # not vacuous: the step moved the parameters, and with an off-policy batch a small clip binds
    assert any(not torch.equal(a, b) for a, b in zip(make_model(seed=4).parameters(), want))
    if behaviour == "another policy":
        clipped = make_model(seed=4)
        PPOLearner(clipped, cfg, ppo_config(clip=0.05), num_streams=3).update(seg, torch.arange(3))
        assert any((a - b).abs().max() > 1e-9 for a, b in zip(clipped.parameters(), want))


def _recording(learner):
    """Wrap ``learner.step`` and ``learner.loss``; returns the list of (cols, segment, carry) seen."""
    seen, step, loss = [], learner.step, learner.loss

    def recorded_step(segment, carry, targets, cols):
        seen.append([cols])
        return step(segment, carry, targets, cols)

    def recorded_loss(segment, carry, targets):
        seen[-1] += [segment, carry.clone()]
        return loss(segment, carry, targets)

    learner.step, learner.loss = recorded_step, recorded_loss
    return seen


def test_minibatches_split_the_streams_and_replay_the_stored_carry_in_every_epoch():
    B, T = 6, 4
    stream = random_stream(2 * T, B, seed=7)
    learner = PPOLearner(make_model(), train_config(lr=1e-2), ppo_config(epochs=3, minibatches=3), num_streams=B)
    learner.update(segment_of(stream, 0, T), torch.arange(B))
    stored = learner.carry.clone()
    seen = _recording(learner)
    metrics = learner.update(segment_of(stream, 1, T), torch.arange(B))
    assert len(seen) == 9 and metrics["ppo/epochs"] == 3
    epochs = [seen[3 * e:3 * e + 3] for e in range(3)]
    for epoch in epochs:
        cols = [c.tolist() for c, _, _ in epoch]
        assert sorted(sum(cols, [])) == list(range(B)) and all(len(c) == 2 for c in cols)
        for c, segment, carry in epoch:
            assert segment["reward"].shape == (T, 2) and segment["obs"].shape[:2] == (T + 1, 2)  # whole segments
            assert all(torch.equal(carry[k], stored[k][c]) for k in stored)  # the segment-start carry
    assert len({tuple(tuple(c.tolist()) for c, _, _ in epoch) for epoch in epochs}) > 1  # reshuffled per epoch


def test_the_next_segment_starts_from_the_carry_pass_under_the_parameters_before_the_update():
    B, T = 4, 4
    stream = random_stream(2 * T, B, seed=8)
    model = make_model(seed=2)
    vtrace = Learner(copy.deepcopy(model), train_config(lr=1e-2), num_streams=B)
    learner = PPOLearner(model, train_config(lr=1e-2), ppo_config(epochs=2, minibatches=2), num_streams=B)
    for each in (vtrace, learner):
        each.update(segment_of(stream, 0, T), torch.arange(B))
    # the same rule as V-trace: from the same parameters, the same carry, bit for bit
    assert learner.carry.keys() == vtrace.carry.keys() and learner.carry.has_sensitivities
    assert all(torch.equal(learner.carry[k], vtrace.carry[k]) for k in learner.carry)
    stored, before = learner.carry.clone(), copy.deepcopy(model)
    seg = segment_of(stream, 1, T)
    learner.update(seg, torch.arange(B))
    with torch.no_grad():
        want, after = unroll_segment(before, seg, stored)[2], unroll_segment(model, seg, stored)[2]
    assert all(torch.equal(learner.carry[k], want[k]) for k in want)
    assert any(v.abs().sum() > 0 for k, v in want.items() if "/" in k)  # sensitivities propagate
    assert not all(torch.equal(learner.carry[k], after[k]) for k in after)  # not the updated parameters'


@pytest.mark.parametrize("target_kl, epochs", [(0.0, 5), (1e-9, 1), (1e3, 5)])
def test_target_kl_stops_the_epochs_early(target_kl, epochs):
    seg = segment_of(random_stream(4, 4, seed=9), 0, 4)  # random behaviour log-probs: KL > 0 at once
    learner = PPOLearner(make_model(), train_config(lr=1e-2), ppo_config(epochs=5, minibatches=2,
                                                                         target_kl=target_kl), num_streams=4)
    metrics = learner.update(seg, torch.arange(4))
    assert metrics["ppo/epochs"] == epochs and metrics["losses/approx_kl"] > 0


def test_metrics_and_explained_variance():
    seg = segment_of(random_stream(4, 4, seed=10), 0, 4)
    learner = PPOLearner(make_model(), train_config(lr=1e-2), ppo_config(epochs=2, minibatches=2), num_streams=4)
    metrics = learner.update(seg, torch.arange(4))
    names = {"policy", "value", "entropy", "total", "grad_norm", "clipfrac", "approx_kl", "old_approx_kl",
             "explained_variance"}
    assert set(metrics) == {f"losses/{n}" for n in names} | {"ppo/epochs", "lr", "rtrl/sensitivity_norm"}
    assert all(math.isfinite(v) for v in metrics.values())
    r = torch.randn(5, 3, dtype=torch.float64)
    assert explained_variance(r, r) == 1.0 and explained_variance(torch.zeros(5, 3), r) == pytest.approx(0.0)
    assert math.isnan(explained_variance(r, torch.ones(5, 3)))


def test_a_batch_with_fewer_streams_than_minibatches_is_refused():
    learner = PPOLearner(make_model(), train_config(), ppo_config(minibatches=3), num_streams=4)
    with pytest.raises(ValueError, match="cannot be split into ppo.minibatches=3"):
        learner.update(segment_of(random_stream(4, 2), 0, 4), torch.tensor([0, 2]))
