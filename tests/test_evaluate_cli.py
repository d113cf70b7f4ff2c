"""``rtrl-rl evaluate``: tables and JSON from a run, the suite protocol, and bad input."""

from __future__ import annotations

import json

import pytest

from rtrl_rl.cli import main
from rtrl_rl.config import load_config
from rtrl_rl.training.episodes import evaluation_options
from rtrl_rl.training.sync_trainer import train

QUIET = ["log.progress=false", "log.tensorboard=false", "log.eval_episodes=0"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("run")
    train(load_config(None, ["env.num_envs=8", "env.options.delay=2", "agent.hidden_size=8",
                             "train.total_steps=800", f"run_dir={path}", *QUIET]))
    return path


def test_json_has_the_statistics(run_dir, capsys):
    assert main(["evaluate", str(run_dir), "--episodes", "12", "--json", "--seed", "3"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["episodes"] == 12 and len(result["returns"]) == 12
    for key in ("mean_return", "median_return", "std_return", "success_rate"):
        assert key in result
    assert result["success_rate"] == pytest.approx(sum(result["successes"]) / 12)


def test_same_seed_same_result_greedy_and_sampled(run_dir, capsys):
    runs = []
    for extra in ([], [], ["--sample"], ["--sample"]):
        assert main(["evaluate", str(run_dir / "model.pt"), "--episodes", "40", "--json", "--seed", "5", *extra]) == 0
        runs.append(json.loads(capsys.readouterr().out)["returns"])
    assert runs[0] == runs[1]
    assert len(runs[2]) == 40 and runs[2] == runs[3]  # --seed also fixes the sampled actions


def test_table_output(run_dir, capsys):
    assert main(["evaluate", str(run_dir), "--episodes", "4"]) == 0
    out = capsys.readouterr().out
    assert "mean_return" in out and "success_rate" in out


@pytest.mark.parametrize("args, fragment", [
    (["/no/such/run"], "does not exist"),
    (["{run}", "--env", "gym:CartPole-v1"], "observation space"),
    (["{run}", "--env", "nosuite:x"], "suite"),
    (["{run}", "--episodes", "0"], "at least 1"),
])
def test_bad_input_exits_2(run_dir, capsys, args, fragment):
    args = [a.format(run=run_dir) for a in args]
    assert main(["evaluate", *args]) == 2
    assert fragment in capsys.readouterr().err


def test_corrupted_checkpoint_exits_2(run_dir, tmp_path, capsys):
    broken = tmp_path / "broken.pt"
    broken.write_bytes((run_dir / "model.pt").read_bytes()[:200])
    assert main(["evaluate", str(broken)]) == 2
    assert "checkpoint" in capsys.readouterr().err.lower()


def test_video_of_an_image_env(tmp_path, capsys):
    spec = "tests/assets/trainer_envs.py:TinyImageEnv"
    train(load_config(None, [f"env.id={spec}", "env.num_envs=2", "agent.hidden_size=8", "train.segment_length=4",
                             "train.total_steps=16", f"run_dir={tmp_path}", *QUIET]))
    video = tmp_path / "eval.mp4"
    # the checkpoint names a file to import: the user names it too (see test_evaluate_trust.py)
    assert main(["evaluate", str(tmp_path), "--env", spec, "--episodes", "2", "--video", str(video), "--json"]) == 0
    assert video.stat().st_size > 0


def test_suite_protocols():
    assert evaluation_options("atari:Pong", {"sticky": 0.0})["sticky"] == 0.25
    test = evaluation_options("procgen:coinrun", {"num_levels": 200, "start_level": 0})
    assert test["num_levels"] == 0
    assert evaluation_options("memory:recall", {"delay": 7}) == {"delay": 7}
