"""The synchronous trainer end to end: learning, determinism, files, resume, bad input."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from rtrl_rl.cli import main
from rtrl_rl.config import load_config
from rtrl_rl.run.checkpoint import load_checkpoint
from rtrl_rl.training.sync_trainer import train

QUIET = ["log.progress=false", "log.tensorboard=false"]


def small(tmp_path, *extra: str):
    """A small recall run in ``tmp_path``; ``extra`` overrides come last."""
    return load_config(None, [
        "env.num_envs=32", "env.options.delay=3", "agent.hidden_size=16", "train.total_steps=20000",
        "log.eval_episodes=64", "log.eval_interval_steps=10000", f"run_dir={tmp_path}", *QUIET, *extra])


def test_learns_short_recall_and_stops_at_the_target(tmp_path):
    # Delay 3 < segment 10: any recurrent learner should solve it; it checks the whole
    # path (collector, V-trace, RTRL update, greedy evaluation) learns, not the memory claim.
    # No wall-clock bound: speed is measured by the benchmarks (docs/performance.md).
    config = small(tmp_path, "train.total_steps=600000", "train.target_success=0.95",
                   "env.num_envs=64", "agent.hidden_size=32", "log.eval_interval_steps=50000")
    summary = train(config)
    assert summary["success_rate"] >= 0.95, summary["evaluations"]
    assert summary["stopped"] == "target"


def test_same_seed_gives_same_parameters(tmp_path):
    params = []
    for run in ("a", "b"):
        train(small(tmp_path / run, "log.eval_episodes=0", "train.total_steps=3200"))
        params.append(load_checkpoint(tmp_path / run)["model"])
    assert params[0].keys() == params[1].keys()
    for key in params[0]:
        assert torch.equal(params[0][key], params[1][key]), key
    other = tmp_path / "c"
    train(small(other, "log.eval_episodes=0", "train.total_steps=3200", "train.seed=1"))
    changed = load_checkpoint(other)["model"]
    assert any(not torch.equal(params[0][k], changed[k]) for k in changed)


def test_run_dir_holds_summary_config_and_checkpoint(tmp_path):
    summary = train(small(tmp_path, "log.tensorboard=true"))
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    for key in ("steps", "wall_s", "sps", "mean_return", "success_rate"):
        assert key in on_disk and on_disk[key] == summary[key]
    assert on_disk["steps"] >= 20000
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["env"]["options"]["delay"] == 3
    assert load_checkpoint(tmp_path / "model.pt")["step"] == summary["steps"]
    assert list(tmp_path.glob("events.out.tfevents.*"))


def test_final_checkpoint_without_evaluation(tmp_path):
    summary = train(small(tmp_path, "log.eval_episodes=0"))
    assert load_checkpoint(tmp_path)["step"] == summary["steps"]


def test_resume_continues_counters_and_optimizer(tmp_path):
    first = train(small(tmp_path, "train.total_steps=6400", "log.eval_episodes=0"))
    saved = load_checkpoint(tmp_path)
    assert main(["train", "--resume", str(tmp_path), "train.total_steps=12800", *QUIET]) == 0
    second = json.loads((tmp_path / "summary.json").read_text())
    assert second["steps"] == 12800 and second["updates"] == 2 * first["updates"]
    resumed = load_checkpoint(tmp_path)
    assert resumed["config"]["train"]["total_steps"] == 12800
    assert resumed["config"]["agent"]["hidden_size"] == 16  # the stored config, not the defaults
    step_counts = [s["step"] for s in resumed["learner"]["optimizer"]["state"].values()]
    old_counts = [s["step"] for s in saved["learner"]["optimizer"]["state"].values()]
    assert all(float(n) == 2 * float(o) for n, o in zip(step_counts, old_counts))


@pytest.mark.parametrize("override, fragment", [
    ("agent.learning=sometimes", "agent.learning"),
    ("train.seed=abc", "train.seed"),
    ("trian.seed=1", "valid keys"),
    ("env.id=nosuchsuite:thing", "suite"),
    ("env.id=gym:NoSuchEnv-v0", "NoSuchEnv"),
])
def test_bad_config_exits_2_with_message(tmp_path, capsys, override, fragment):
    assert main(["train", f"run_dir={tmp_path}", *QUIET, override]) == 2
    assert fragment in capsys.readouterr().err


def test_bfloat16_encoder_trains_on_images(tmp_path):
    spec = "tests/assets/trainer_envs.py:TinyImageEnv"
    summary = train(load_config(None, [f"env.id={spec}", "env.num_envs=2", "agent.hidden_size=8",
                                       "agent.encoder_precision=bfloat16", "train.segment_length=4",
                                       "train.total_steps=32", "log.eval_episodes=0", f"run_dir={tmp_path}", *QUIET]))
    assert summary["steps"] == 32
    params = load_checkpoint(tmp_path)["model"]
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in params.values() if v.is_floating_point())


def test_unsupported_action_space_is_refused(tmp_path, capsys):
    # MultiBinary actions have no policy head; the agent names the space.
    spec = "tests/assets/trainer_envs.py:MultiBinaryActionEnv"
    code = main(["train", f"env.id={spec}", "env.num_envs=2", f"run_dir={tmp_path}", *QUIET])
    assert code == 2 and "MultiBinary" in capsys.readouterr().err


def test_resuming_a_stored_config_with_the_removed_device_key_names_its_replacement(tmp_path, capsys):
    # Runs written before train.device served both trainers stored runtime.device.
    train(small(tmp_path, "train.total_steps=640", "log.eval_episodes=0"))
    payload = load_checkpoint(tmp_path)
    payload["config"]["runtime"]["device"] = "auto"
    del payload["digest"]  # those versions wrote no digest either (an edited file with one reads as corrupted)
    torch.save(payload, tmp_path / "model.pt")
    assert main(["train", "--resume", str(tmp_path), "train.total_steps=1280", *QUIET]) == 2
    assert "'runtime.device' was removed: 'train.device' replaces it" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path), "train.total_steps=1280", "train.device=cpu", *QUIET]) == 0
    assert load_checkpoint(tmp_path)["step"] == 1280
