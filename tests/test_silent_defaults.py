"""Things that used to happen silently: a per-update pass over every sensitivity, a
truncated gradient from a state-only carry, and a bootstrap from 0 at a truncation."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
import torch

from rtrl_rl import envs
from rtrl_rl.agents import ActorCritic
from rtrl_rl.agents import segment_learner as learner_module
from rtrl_rl.agents.cores import make_core
from rtrl_rl.config import load_config
from rtrl_rl.run.monitor import RunMonitor
from rtrl_rl.training.rollout import MISSING_FINAL_OBS, Collector, allocate_segment
from rtrl_rl.training.sync_trainer import train

from tests.test_agent_learner import Learner, make_model, random_stream, segment_of, train_config


def test_the_sensitivity_norm_is_computed_only_when_the_update_is_logged():
    learner = Learner(make_model(), train_config(), num_streams=2)
    stream = random_stream(8, 2, seed=1)
    learner.diagnostics_due = lambda: False
    assert "rtrl/sensitivity_norm" not in learner.update(segment_of(stream, 0, 4), torch.arange(2))
    learner.diagnostics_due = lambda: True
    assert learner.update(segment_of(stream, 1, 4), torch.arange(2))["rtrl/sensitivity_norm"] > 0


def test_the_monitor_reports_the_update_it_said_was_due(monkeypatch):
    clock = iter([0.0, 0.5, 3.0, 3.5, 4.0])
    monkeypatch.setattr("rtrl_rl.run.monitor.time.monotonic", lambda: next(clock))
    monitor = RunMonitor(100, progress=False, interval_s=2.0)  # starts at t = 0
    reports = []
    monkeypatch.setattr(monitor, "_report", lambda now: reports.append(now))
    assert not monitor.report_due()  # t = 0.5: not due, so this update is not logged...
    monitor.record_update(1, {})  # ...even though t = 3.0 has passed the interval by now
    assert reports == [] and monitor.report_due()  # t = 3.5: due
    monitor.record_update(1, {"rtrl/sensitivity_norm": 1.0})
    assert reports == [4.0]


@pytest.mark.parametrize("interval_s, expect_all", [(0.0, True), (1e9, False)])
def test_a_training_run_computes_the_norm_on_logged_updates_only(tmp_path, monkeypatch, interval_s, expect_all):
    calls = []
    real = learner_module.sensitivity_norm
    monkeypatch.setattr(learner_module, "sensitivity_norm", lambda carry: calls.append(1) or real(carry))
    config = load_config(None, ["env.num_envs=8", "env.options.delay=2", "agent.hidden_size=8",
                                "train.total_steps=800", "log.eval_episodes=0", "log.progress=false",
                                "log.tensorboard=false", f"log.interval_s={interval_s}", f"run_dir={tmp_path}"])
    summary = train(config)
    assert len(calls) == (summary["updates"] if expect_all else 0)


def test_a_state_only_carry_with_gradients_is_an_error_unless_truncation_is_asked_for():
    core = make_core("elstm", 3, 4, learning="rtrl")
    x, reset = torch.randn(5, 2, 3), torch.zeros(5, 2, dtype=torch.bool)
    with pytest.raises(ValueError, match="state-only carry with gradients.*truncate=True"):
        core(x, core.initial_carry(2, sensitivities=False), reset)
    y, _ = core(x, core.initial_carry(2, sensitivities=False), reset, truncate=True)
    y.sum().backward()  # the gradient truncated at the segment start, as asked: tbptt's
    tbptt = make_core("elstm", 3, 4, learning="tbptt")
    tbptt.load_state_dict(core.state_dict())
    tbptt(x, tbptt.initial_carry(2), reset)[0].sum().backward()
    torch.testing.assert_close(core.weight.grad, tbptt.weight.grad)
    with torch.no_grad():  # acting: no gradient, nothing truncated
        core(x, core.initial_carry(2, sensitivities=False), reset)
    core(x, core.initial_carry(2), reset)  # learning: the full carry
    tbptt(x, tbptt.initial_carry(2), reset)  # no sensitivities exist: nothing to refuse


class _TruncatesWithoutFinalObs:
    """A memory venv whose env 0 reports a truncation without its final observation."""

    def __init__(self) -> None:
        self.venv = envs.make_vector("memory:recall", 2, seed=0, delay=2)
        self.num_envs = 2
        self.single_observation_space = self.venv.single_observation_space
        self.single_action_space = self.venv.single_action_space

    def reset(self):
        return self.venv.reset()

    def step(self, actions):
        batch = self.venv.step(actions)
        truncated = batch.truncated.copy()
        truncated[0] = True
        return dataclasses.replace(batch, truncated=truncated, final_obs={})


def test_a_truncation_without_its_final_observation_warns_once():
    venv = _TruncatesWithoutFinalObs()
    model = ActorCritic(venv.single_observation_space, venv.single_action_space,
                        load_config(None, ["agent.hidden_size=8"]).agent)
    collector = Collector(venv, model, length=3)
    segment = allocate_segment(venv.single_observation_space, venv.single_action_space, 3, 2)
    with pytest.warns(RuntimeWarning, match="without its final observation") as caught:
        collector.collect(segment)
        collector.collect(segment)
    assert sum(MISSING_FINAL_OBS in str(w.message) for w in caught) == 1
    assert torch.all(segment["truncation_value"][:, 0] == 0)
    honest = envs.make_vector("memory:recall", 2, seed=0, delay=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Collector(honest, model, length=3).collect(segment)
    assert np.all(segment["truncated"].numpy() == 0)
