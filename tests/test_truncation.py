"""train.truncation_bootstrap=false: a truncated episode's last step ends the targets as a
termination does (POPGym's games end at their fixed length; nothing follows)."""

import pytest
import torch

from rtrl_rl.agents import Learner
from rtrl_rl.config import TrainConfig
from test_agent_learner import make_model, random_stream, segment_of, train_config


def _loss(segment, **cfg):
    learner = Learner(make_model(), train_config(**cfg), num_streams=2)
    loss, terms, _ = learner.loss(segment, learner.carry)
    return float(terms["value"]), float(loss)


def test_without_the_bootstrap_a_truncation_is_a_termination():
    segment = segment_of(random_stream(8, 2, seed=7), 0, 4)
    assert segment["truncated"].any()
    as_terminal = {**segment, "terminated": segment["terminated"] | segment["truncated"],
                   "truncated": torch.zeros_like(segment["truncated"])}
    assert _loss(segment, truncation_bootstrap=False) == pytest.approx(_loss(as_terminal), rel=1e-12)
    assert _loss(segment) != pytest.approx(_loss(as_terminal), rel=1e-6)  # the default bootstraps
    assert TrainConfig().truncation_bootstrap is True
