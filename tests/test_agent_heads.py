"""Policy heads for every supported action space, the value head, and refused spaces."""

import math

import numpy as np
import pytest
import torch
from gymnasium import spaces

from rtrl_rl.agents.heads import ValueHead, make_policy_head

LEAD = (5, 3)  # (T, B): heads accept any leading dimensions


def _params(head, seed=0):
    torch.manual_seed(seed)
    with torch.no_grad():
        return head(torch.randn(*LEAD, 8, dtype=torch.float64))


def _heads():
    return {
        "discrete": make_policy_head(spaces.Discrete(4), 8).double(),
        "multidiscrete": make_policy_head(spaces.MultiDiscrete([2, 3, 5]), 8).double(),
        "box": make_policy_head(spaces.Box(-1, 1, (2, 3), np.float32), 8).double(),
    }


@pytest.mark.parametrize("name", ["discrete", "multidiscrete", "box"])
def test_shapes_and_log_prob_of_samples(name):
    head = _heads()[name]
    params = _params(head)
    assert params.shape == LEAD + (head.param_size,)
    action, greedy = head.sample(params), head.greedy(params)
    assert action.shape == greedy.shape
    assert head.log_prob(params, action).shape == LEAD
    assert head.entropy(params).shape == LEAD
    assert head.encode_action(action, torch.float64).shape == LEAD + (head.action_input_size,)
    # Greedy is the most probable action.
    assert (head.log_prob(params, greedy) >= head.log_prob(params, action) - 1e-12).all()


def test_discrete_log_prob_and_entropy_match_torch_distributions():
    head = _heads()["discrete"]
    logits = _params(head)
    action = head.sample(logits)
    dist = torch.distributions.Categorical(logits=logits)
    torch.testing.assert_close(head.log_prob(logits, action), dist.log_prob(action))
    torch.testing.assert_close(head.entropy(logits), dist.entropy())
    assert head.encode_action(action, torch.float32).sum(-1).eq(1).all()


def test_multidiscrete_is_a_product_of_categoricals():
    head = _heads()["multidiscrete"]
    logits = _params(head)
    action = head.sample(logits)
    assert action.shape == LEAD + (3,)
    parts = torch.split(logits, [2, 3, 5], -1)
    dists = [torch.distributions.Categorical(logits=p) for p in parts]
    torch.testing.assert_close(head.log_prob(logits, action), sum(d.log_prob(action[..., i]) for i, d in enumerate(dists)))
    torch.testing.assert_close(head.entropy(logits), sum(d.entropy() for d in dists))
    # Probabilities over the whole product space sum to one.
    grid = torch.cartesian_prod(torch.arange(2), torch.arange(3), torch.arange(5))
    total = head.log_prob(logits[0, 0].expand(len(grid), -1), grid).exp().sum()
    assert math.isclose(float(total), 1.0, rel_tol=1e-12)


def test_gaussian_matches_torch_normal():
    head = _heads()["box"]
    with torch.no_grad():
        head.log_std.copy_(torch.linspace(-1, 0.5, 6))
    mean = _params(head)
    action = head.sample(mean)
    assert action.shape == LEAD + (2, 3)
    dist = torch.distributions.Normal(mean, head.log_std.exp())
    torch.testing.assert_close(head.log_prob(mean, action), dist.log_prob(action.reshape(*LEAD, 6)).sum(-1))
    torch.testing.assert_close(head.entropy(mean), dist.entropy().sum(-1))
    torch.testing.assert_close(head.greedy(mean).reshape(*LEAD, 6), mean)


def test_value_head_shape():
    assert ValueHead(8)(torch.randn(*LEAD, 8)).shape == LEAD


@pytest.mark.parametrize(
    "space",
    [spaces.MultiBinary(3), spaces.Tuple([spaces.Discrete(2)]), spaces.Discrete(3, start=1),
     spaces.MultiDiscrete([[2, 2], [2, 2]]), spaces.Box(-1, 1, ())],
)
def test_unsupported_action_spaces_are_refused(space):
    with pytest.raises(ValueError, match="unsupported action space"):
        make_policy_head(space, 8)
