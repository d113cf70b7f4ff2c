"""Learner levers: train.truncation_bootstrap=false ends the targets at a truncation as a
termination does (POPGym's games end at their fixed length; nothing follows), and
train.entropy_decay lowers the entropy weight linearly to 0."""

import pytest
import torch

from rtrl_rl.agents import Learner
from rtrl_rl.config import TrainConfig
from test_agent_learner import make_model, random_stream, segment_of, train_config


def _loss(segment, **cfg):
    learner = Learner(make_model(), train_config(**cfg), num_streams=2)
    loss, terms, _ = learner.loss(segment, learner.carry)
    return float(terms["value"]), float(loss.detach())


def test_without_the_bootstrap_a_truncation_is_a_termination():
    segment = segment_of(random_stream(8, 2, seed=7), 0, 4)
    assert segment["truncated"].any()
    as_terminal = {**segment, "terminated": segment["terminated"] | segment["truncated"],
                   "truncated": torch.zeros_like(segment["truncated"])}
    assert _loss(segment, truncation_bootstrap=False) == pytest.approx(_loss(as_terminal), rel=1e-12)
    assert _loss(segment) != pytest.approx(_loss(as_terminal), rel=1e-6)  # the default bootstraps
    assert TrainConfig().truncation_bootstrap is True


def test_entropy_decay_falls_linearly_to_zero():
    stream = random_stream(8, 2, seed=7)
    learner = Learner(make_model(), train_config(entropy_cost=0.02, entropy_decay=True, total_steps=16),
                      num_streams=2)
    assert learner.entropy_cost() == pytest.approx(0.02)
    learner.update(segment_of(stream, 0, 4), torch.arange(2))  # 8 of 16 steps
    assert learner.entropy_cost() == pytest.approx(0.01)
    _, terms, _ = learner.loss(segment_of(stream, 1, 4), learner.carry)
    loss, _, _ = learner.loss(segment_of(stream, 1, 4), learner.carry)
    expected = terms["policy"] + 0.5 * terms["value"] - 0.01 * terms["entropy"]
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-12)
    learner.update(segment_of(stream, 1, 4), torch.arange(2))
    assert learner.entropy_cost() == 0.0
    assert Learner(make_model(), train_config(entropy_cost=0.02), num_streams=2).entropy_cost() == 0.02
