"""``rtrl-rl bench compute-ceiling``: FLOPs of acting and learning per env step, and the ceiling."""

from __future__ import annotations

import json

from rtrl_rl import cli
from rtrl_rl.bench.compute_ceiling import measure


def main(argv: list[str]) -> int:
    return cli.main(["bench", "compute-ceiling", *argv])


def test_counts_more_work_for_learning_than_for_acting():
    small = ["env.num_envs=4", "train.segment_length=5", "agent.hidden_size=16"]
    result = measure("memory/recall", small, repeats=1)
    assert result["streams"] == 4 and result["segment_length"] == 5
    assert 0 < result["act_mflop_per_step"] < result["learn_mflop_per_step"]
    assert result["update_s"] > 0 and result["learner_gflops"] > 0


def test_ceiling_scales_with_cores_and_is_written_as_json(tmp_path, capsys):
    path = tmp_path / "ceiling.json"
    assert main(["--config", "memory/recall", "--cores", "3", "--repeats", "1", "--json", str(path),
                 "env.num_envs=4", "train.segment_length=5"]) == 0
    result = json.loads(path.read_text())
    per_step = (result["act_mflop_per_step"] + result["learn_mflop_per_step"]) * 1e6
    assert result["ceiling_steps_per_s"] == 3 * result["learner_gflops"] * 1e9 / per_step
    assert "ceiling on 3 cores" in capsys.readouterr().out
