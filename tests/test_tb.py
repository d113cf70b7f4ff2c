"""TensorBoard logging: the event file holds the standard scalars and the hyperparameters."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import metadata as hp_metadata

from rtrl_rl.config import Config, to_dict
from rtrl_rl.run import tensorboard_log as tb


def _events(run_dir) -> EventAccumulator:
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_scalars_land_in_the_event_file_under_their_names(tmp_path):
    values = {name: float(i) + 0.5 for i, name in enumerate(tb.STANDARD_SCALARS)}
    with tb.make_logger(tmp_path) as logger:
        logger.log_scalars(100, values)
        logger.log_scalars(200, {tb.EPISODIC_RETURN: torch.tensor(3.0), tb.SPS: np.float32(7.0)})
    acc = _events(tmp_path)
    assert set(tb.STANDARD_SCALARS) <= set(acc.Tags()["scalars"])
    assert acc.Scalars(tb.POLICY_LAG)[0].value == pytest.approx(values[tb.POLICY_LAG])
    returns = [(e.step, e.value) for e in acc.Scalars(tb.EPISODIC_RETURN)]
    assert returns == [(100, 0.5), (200, 3.0)]
    assert [e.value for e in acc.Scalars(tb.SPS)] == [pytest.approx(values[tb.SPS]), 7.0]


def test_undefined_values_are_skipped_not_logged_as_zero(tmp_path):
    with tb.make_logger(tmp_path) as logger:
        logger.log_scalars(1, {tb.SUCCESS_RATE: None, tb.GRAD_NORM: float("nan"), tb.SPS: 5})
    tags = _events(tmp_path).Tags()["scalars"]
    assert tb.SPS in tags and tb.SUCCESS_RATE not in tags and tb.GRAD_NORM not in tags


def test_hparams_are_flattened_and_linked_to_final_metrics(tmp_path):
    config = to_dict(Config())
    with tb.make_logger(tmp_path) as logger:
        logger.log_scalars(5000, {tb.SPS: 1.0})
        logger.log_hparams(config, {"mean_return": 0.9, "success_rate": None})
    acc = _events(tmp_path)
    final = acc.Scalars("final/mean_return")
    assert [(e.step, e.value) for e in final] == [(5000, pytest.approx(0.9))]
    assert "final/success_rate" not in acc.Tags()["scalars"]

    plugin = acc.SummaryMetadata(hp_metadata.SESSION_START_INFO_TAG).plugin_data.content
    start = hp_metadata.parse_session_start_info_plugin_data(plugin)
    assert start.hparams["train.lr"].number_value == pytest.approx(Config().train.lr)
    assert start.hparams["agent.core"].string_value == "elstm"
    assert start.hparams["env.options.delay"].number_value == 40
    assert start.hparams["env.imports"].string_value == "[]"
    experiment = hp_metadata.parse_experiment_plugin_data(
        acc.SummaryMetadata(hp_metadata.EXPERIMENT_TAG).plugin_data.content)
    assert [m.name.tag for m in experiment.metric_infos] == ["final/mean_return"]


def test_flatten_nests_with_dots_and_stringifies_what_tensorboard_cannot_take():
    flat = tb.flatten({"a": {"b": 1, "c": {"d": True}}, "e": [1, 2], "f": None, "g": {}, "h": "x"})
    assert flat == {"a.b": 1, "a.c.d": True, "e": "[1, 2]", "f": "None", "g": "{}", "h": "x"}


def test_disabled_logging_writes_nothing(tmp_path):
    logger = tb.make_logger(tmp_path / "run", enabled=False)
    assert isinstance(logger, tb.NullLogger)
    logger.log_scalars(1, {tb.SPS: 1.0})
    logger.log_hparams({"a": 1}, {"b": 2.0})
    logger.close()
    assert not (tmp_path / "run").exists()
