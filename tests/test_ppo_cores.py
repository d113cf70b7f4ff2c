"""PPO on every core: for segment k with the parameters held fixed, the gradient of the RTRL
core replayed from the stored carry equals float64 autograd through the whole stream of the
same loss (loss on segment k only, resets inside it and at a boundary), for eLSTM and LRU;
for a stack it equals the stack's defined gradient (inter-layer gradient at the same step
only). Every core, learning rule and action space trains."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from gymnasium import spaces

from rtrl_rl.agents import ActorCritic, PPOLearner
from rtrl_rl.agents.cores.verification import relative_error
from rtrl_rl.agents.ppo_objective import gae, ppo_losses
from rtrl_rl.agents.segment_learner import segment_rewards
from tests.test_agent_learner import OBS, agent_config, core_grads, make_model, random_stream, segment_of, train_config
from tests.test_cores_stack import layer_reference
from tests.test_ppo import ppo_config

T, K, B = 4, 3, 3
F64 = torch.float64


def stream_with_resets():
    """K segments of T steps: a reset at step 0, at the second segment's start (stream 0),
    at the third segment's start (stream 1) and inside the third segment (streams 0 and 2)."""
    stream = random_stream(T * K, B, seed=15)
    first = stream["first"]
    assert first[0].all() and first[T, 0] and first[2 * T, 1] and first[2 * T + 1:3 * T, 0].any()
    assert first[2 * T + 1:3 * T, 2].any() and not first[2 * T, 0] and not first[2 * T, 2]
    return stream


def core_output(model, x, reset):
    """The core over the whole stream in plain autograd: the single core's own reference, or
    for a stack each layer's reference with the upper layer's input reaching it at the same
    step only (the stack's defined gradient, tests/test_cores_stack.py)."""
    core = model.core
    if hasattr(core, "layers"):
        y = x
        for i, layer in enumerate(core.layers):
            y = layer_reference(layer, y, reset, same_step_only=i > 0)
        return y
    s0 = torch.zeros(x.shape[1], *core.state_shapes()[core.state_key], dtype=F64)
    return core.reference_forward(x, s0, reset)


def bptt_gradient(model, stream, k, cfg, ppo, cols, T=T):
    """The core's gradient of the PPO loss of segment k (streams ``cols``) by autograd through
    rows 0..(k+1)T, the old values (GAE's) being the same values detached."""
    rows = (k + 1) * T + 1
    x = model.core_input(stream["obs"][:rows], stream["prev_action"][:rows], stream["prev_reward"][:rows],
                         stream["first"][:rows])
    y = model.features(core_output(model, x, stream["first"][:rows]))
    params, values = model.policy(y), model.value_head(y)
    seg, t = segment_of(stream, k, T), slice(k * T, k * T + T)
    rewards, discounts = segment_rewards(seg, cfg, F64)
    targets = gae(rewards, discounts, values[t].detach(), values[k * T + T].detach(), ppo.gae_lambda)
    logp = model.policy.log_prob(params[t], seg["action"])
    losses = ppo_losses(logp[:, cols], seg["behaviour_logp"][:, cols].double(),
                        model.policy.entropy(params[t])[:, cols], values[t][:, cols], targets.columns(cols),
                        ppo.clip, ppo.value_clip, ppo.norm_advantages, cfg.loss_reduction)
    model.zero_grad()
    (losses.policy + cfg.baseline_cost * losses.value - cfg.entropy_cost * losses.entropy).backward()
    return core_grads(model)


def learner_at_segment(model, stream, k, ppo, T=T):
    """A learner (lr 0) that has updated on segments 0..k-1; the parameters did not move."""
    learner = PPOLearner(model, train_config(), ppo, num_streams=B)
    before = {n: v.clone() for n, v in model.state_dict().items()}
    for j in range(k):
        learner.update(segment_of(stream, j, T), torch.arange(B))
    assert all(torch.equal(v, before[n]) for n, v in model.state_dict().items())
    return learner


def assert_close(got, want):
    for name in want:
        assert relative_error(got[name], want[name]) < 1e-10, name


@pytest.mark.parametrize("core, layers", [("elstm", 1), ("lru", 1), ("elstm", 2), ("lru", 2)])
@pytest.mark.parametrize("encoder_grad", ["step", "segment"])
def test_ppo_core_gradient_replayed_from_the_stored_carry_equals_full_stream_bptt(core, layers, encoder_grad):
    stream, k = stream_with_resets(), 2
    ppo = ppo_config(clip=0.2, value_clip=0.1, epochs=2)
    cfg = train_config()
    model = make_model(core=core, core_layers=layers, encoder_grad=encoder_grad)
    learner = learner_at_segment(model, stream, k, ppo)
    # the update's own gradient (one minibatch: all streams, in order; the second epoch's)
    learner.update(segment_of(stream, k, T), torch.arange(B))
    assert_close(core_grads(model), bptt_gradient(model, stream, k, cfg, ppo, cols=torch.arange(B)))
    # a minibatch of streams, replayed from their stored carries
    learner = learner_at_segment(model, stream, k, ppo)
    seg, cols = segment_of(stream, k, T), torch.tensor([0, 2])
    targets, _ = learner.targets(seg, learner.carry)
    model.zero_grad()
    learner.loss({n: v[:, cols] for n, v in seg.items()}, learner.carry[cols], targets.columns(cols))[0].backward()
    assert_close(core_grads(model), bptt_gradient(model, stream, k, cfg, ppo, cols))


@pytest.mark.parametrize("core", ["elstm", "lru"])
def test_one_step_segments_take_the_per_step_path_and_stay_exact(core):
    """T = 1: the core's per-step RTRL (its backward reads the new sensitivities)."""
    stream, k = random_stream(6, B, seed=15), 5  # resets at step 0, at step 4 (stream 0), random
    ppo = ppo_config(clip=0.2, value_clip=0.1)
    model = make_model(core=core)
    learner_at_segment(model, stream, k, ppo, T=1).update(segment_of(stream, k, 1), torch.arange(B))
    assert_close(core_grads(model), bptt_gradient(model, stream, k, train_config(), ppo, torch.arange(B), T=1))


@pytest.mark.parametrize("core", ["elstm", "lru"])
def test_the_carried_sensitivities_matter_for_that_gradient(core):
    """Not vacuous: truncating at the segment start (tbptt, same parameters) changes it."""
    stream, k = stream_with_resets(), 2
    ppo = ppo_config(clip=0.2)
    rtrl = make_model(core=core)
    tbptt = make_model(core=core, learning="tbptt", encoder_grad="segment")
    tbptt.load_state_dict(rtrl.state_dict())
    learner_at_segment(tbptt, stream, k, ppo).update(segment_of(stream, k, T), torch.arange(B))
    want = bptt_gradient(rtrl, stream, k, train_config(), ppo, cols=torch.arange(B))
    assert max(relative_error(core_grads(tbptt)[n], want[n]) for n in want) > 1e-4


CORES = [("elstm", "rtrl", 1), ("mingru", "rtrl", 1), ("lru", "rtrl", 1), ("rtu", "rtrl", 1),
         ("rtu_nonlinear", "rtrl", 1), ("elstm", "rtrl", 2), ("lru", "tbptt", 2), ("elstm", "tbptt", 1),
         ("lstm", "tbptt", 1), ("lstm", "snap1", 1), ("gru", "uoro", 1), ("rnn", "kfrtrl", 1), ("rnn", "rtrl", 1),
         ("none", "none", 1)]


@pytest.mark.parametrize("core, learning, layers", CORES)
def test_every_core_and_learning_rule_trains(core, learning, layers):
    grad = "segment" if learning != "rtrl" or core in ("rnn",) else "step"
    model = make_model(core=core, learning=learning, core_layers=layers, encoder_grad=grad)
    before = [p.detach().clone() for p in model.parameters()]
    learner = PPOLearner(model, train_config(lr=1e-2), ppo_config(epochs=2, minibatches=2), num_streams=4)
    stream = random_stream(8, 4, seed=3)
    for j in range(2):
        metrics = learner.update(segment_of(stream, j, 4), torch.arange(4))
    assert all(math.isfinite(v) for v in metrics.values())
    assert learner.carry.keys() == model.initial_carry(4).keys()
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters()) if b.grad is not None)


def with_actions(space, seed=0):
    """A segment of random_stream whose actions belong to ``space``."""
    stream = segment_of(random_stream(4, 4, seed=seed), 0, 4)
    space.seed(seed)
    rows = stream["prev_action"].shape[0]
    sampled = torch.as_tensor(np.stack([[space.sample() for _ in range(4)] for _ in range(rows)]))
    stream["prev_action"], stream["action"] = sampled, sampled[1:].clone()
    return stream


@pytest.mark.parametrize("space", [spaces.Discrete(3), spaces.MultiDiscrete([2, 3]),
                                   spaces.Box(-1, 1, (2,), np.float32)], ids=["discrete", "multidiscrete", "box"])
def test_every_action_space_trains(space):
    torch.manual_seed(0)
    model = ActorCritic(OBS, space, agent_config()).double()
    before = [p.detach().clone() for p in model.parameters()]
    learner = PPOLearner(model, train_config(lr=1e-2), ppo_config(epochs=2, minibatches=2), num_streams=4)
    metrics = learner.update(with_actions(space), torch.arange(4))
    assert all(math.isfinite(v) for v in metrics.values())
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
