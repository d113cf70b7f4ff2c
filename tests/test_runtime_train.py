"""End to end with 2 actor processes on a memory task: train, evaluate, resume, evaluate.

Also checks what the run leaves behind: the TensorBoard scalars (policy lag included),
a checkpoint that ``rtrl-rl evaluate`` reads, and a resumed run that continues the step
counter of the first one.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from rtrl_rl.cli import main as cli
from rtrl_rl.config import load_config
from rtrl_rl.run.checkpoint import load_checkpoint
from rtrl_rl.run.resume import resume_config
from rtrl_rl.runtime import train_with_actors

SCALARS = {
    "charts/episodic_return", "charts/episodic_length", "charts/success_rate", "charts/sps",
    "losses/policy", "losses/value", "losses/entropy", "losses/grad_norm",
    "rtrl/sensitivity_norm", "runtime/policy_lag",
}


def memory_config(run_dir: Path, total_steps: int):
    """Recall with a short delay, 16 streams over 2 actors; evaluation only at the end."""
    return load_config(None, [
        "env.id=memory:recall", "env.num_envs=16", "env.options={delay: 3, num_symbols: 2}",
        "agent.hidden_size=16", "agent.encoder_size=16", "train.segment_length=10",
        f"train.total_steps={total_steps}", "train.target_success=0", "runtime.actors=2",
        "log.progress=false", "log.interval_s=0", "log.eval_episodes=16", "log.eval_interval_steps=1000000",
        f"run_dir={run_dir}",
    ])


def evaluate(run_dir: Path, capsys) -> dict:
    """``rtrl-rl evaluate RUN_DIR --json`` in this process; its JSON object."""
    capsys.readouterr()
    assert cli(["evaluate", str(run_dir), "--episodes", "8", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def scalar_tags(run_dir: Path) -> set[str]:
    """Every scalar tag in the run's TensorBoard event files."""
    tags: set[str] = set()
    for events in run_dir.glob("events.out.tfevents.*"):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        tags |= set(acc.Tags()["scalars"])
    return tags


def policy_lags(run_dir: Path) -> list[float]:
    """All logged values of runtime/policy_lag."""
    lags = []
    for events in run_dir.glob("events.out.tfevents.*"):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        if "runtime/policy_lag" in acc.Tags()["scalars"]:
            lags += [e.value for e in acc.Scalars("runtime/policy_lag")]
    return lags


def test_two_actors_train_evaluate_resume_evaluate(tmp_path, capsys):
    run_dir = tmp_path / "run"
    first = train_with_actors(memory_config(run_dir, 3000))
    assert first["stopped"] == "budget" and first["steps"] >= 3000
    assert load_checkpoint(run_dir)["step"] == first["steps"]
    assert SCALARS <= scalar_tags(run_dir)
    lags = policy_lags(run_dir)
    assert lags and all(0 <= lag <= 3 for lag in lags)  # at most the slots an actor can fill ahead
    result = evaluate(run_dir, capsys)
    assert result["episodes"] == 8 and 0.0 <= result["success_rate"] <= 1.0

    overrides = ["train.total_steps=6000", "train.lr=1e-4"]  # the override must reach the optimizer
    resumed = train_with_actors(resume_config(run_dir, overrides), resume_from=str(run_dir))
    assert resumed["stopped"] == "budget" and resumed["steps"] >= 6000
    assert resumed["updates"] > first["updates"]
    saved = load_checkpoint(run_dir)
    assert saved["step"] == resumed["steps"]
    assert saved["learner"]["optimizer"]["param_groups"][0]["lr"] == pytest.approx(1e-4)
    again = evaluate(run_dir, capsys)
    assert again["episodes"] == 8 and 0.0 <= again["success_rate"] <= 1.0
