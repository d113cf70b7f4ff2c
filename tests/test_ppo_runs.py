"""PPO runs: a resumed learner continues bit-identically through a checkpoint, a resumed sync
run is deterministic, bad settings exit 2 before anything is written, and a run with two
actor processes trains, logs PPO's scalars and the policy lag, and evaluates."""

from __future__ import annotations

import importlib.util
import json
import shutil
import statistics

import pytest
import torch

from rtrl_rl.agents import PPOLearner
from rtrl_rl.cli import main
from rtrl_rl.config import load_config
from rtrl_rl.run import tensorboard_log as tb
from rtrl_rl.run.checkpoint import load_checkpoint, save_checkpoint
from rtrl_rl.run.payload import make_payload
from rtrl_rl.run.resume import restore_run
from rtrl_rl.runtime import train_with_actors
from rtrl_rl.training.sync_trainer import train
from tests.test_agent_learner import make_model, random_stream, segment_of, train_config
from tests.test_ppo import ppo_config
from tests.test_runtime_train import memory_config, policy_lags, scalar_tags

QUIET = ["log.progress=false", "log.tensorboard=false"]
T, K, B, RESUME_AT = 4, 5, 4, 2


def _learner(model):
    return PPOLearner(model, train_config(lr=1e-2), ppo_config(epochs=2, minibatches=2), num_streams=B)


def _stream():
    """K segments; every stream starts an episode at segment RESUME_AT, as after a resume
    (the environments restart), so carrying on and restarting the carries agree."""
    stream = random_stream(T * K, B, seed=12)
    stream["first"][RESUME_AT * T] = True
    stream["truncated"][RESUME_AT * T - 1] |= ~stream["terminated"][RESUME_AT * T - 1]
    return stream


def _run(learner, stream, segments):
    for k in segments:
        learner.update(segment_of(stream, k, T), torch.arange(B))


@pytest.mark.parametrize("restore_generator", [True, False])
def test_a_resumed_learner_continues_bit_identically(tmp_path, restore_generator):
    stream = _stream()
    straight = _learner(make_model(seed=0))
    _run(straight, stream, range(K))
    first = _learner(make_model(seed=0))
    _run(first, stream, range(RESUME_AT))
    payload = make_payload(first.model, step=first.steps, updates=first.updates, config={"train": {"seed": 0}},
                           learner=first)
    save_checkpoint(tmp_path, payload, first.steps)
    resumed = _learner(make_model(seed=7))  # other initial parameters: the checkpoint replaces them
    restore_run(tmp_path, resumed.model, resumed)
    if not restore_generator:  # the check is not vacuous: a generator that restarts splits otherwise
        resumed.generator.manual_seed(0)
    _run(resumed, stream, range(RESUME_AT, K))
    same = [torch.equal(a, b) for a, b in zip(straight.model.parameters(), resumed.model.parameters())]
    assert all(same) == restore_generator
    if restore_generator:
        assert (resumed.updates, resumed.steps) == (straight.updates, straight.steps)
        assert torch.equal(resumed.generator.get_state(), straight.generator.get_state())
        moments = zip(straight.optimizer.state.values(), resumed.optimizer.state.values())
        assert all(torch.equal(a["exp_avg_sq"], b["exp_avg_sq"]) for a, b in moments)


def small(run_dir, *extra):
    return ["train", "agent.algorithm=ppo", "env.num_envs=16", "env.options.delay=3", "agent.hidden_size=8",
            "log.eval_episodes=0", f"run_dir={run_dir}", *QUIET, *extra]


def test_a_resumed_sync_run_continues_its_learner_deterministically(tmp_path):
    run_dir = tmp_path / "run"
    assert main(small(run_dir, "train.total_steps=1600")) == 0
    saved = load_checkpoint(run_dir)
    assert saved["learner"]["updates"] == 10 and "ppo_generator" in saved["learner"]
    ends = []
    for copy in ("a", "b"):
        shutil.copytree(run_dir, tmp_path / copy)
        assert main(["train", "--resume", str(tmp_path / copy), "train.total_steps=3200", *QUIET]) == 0
        ends.append(load_checkpoint(tmp_path / copy))
        summary = json.loads((tmp_path / copy / "summary.json").read_text())
        assert summary["steps"] == 3200 and summary["updates"] == 20
    assert all(torch.equal(ends[0]["model"][k], ends[1]["model"][k]) for k in ends[0]["model"])
    assert torch.equal(ends[0]["learner"]["ppo_generator"], ends[1]["learner"]["ppo_generator"])
    assert not torch.equal(ends[0]["learner"]["ppo_generator"], saved["learner"]["ppo_generator"])


@pytest.mark.parametrize("override, fragment", [
    ("ppo.clip=0", "'ppo.clip' must be > 0"), ("ppo.clip=-0.1", "'ppo.clip' must be > 0"),
    ("ppo.epochs=0", "'ppo.epochs' must be >= 1"), ("ppo.minibatches=0", "'ppo.minibatches' must be >= 1"),
    ("ppo.minibatches=17", "must be at most 'env.num_envs' (16)"),
    ("ppo.gae_lambda=1.5", "'ppo.gae_lambda' must be <= 1"), ("ppo.gae_lambda=-0.1", "'ppo.gae_lambda' must be >= 0"),
    ("ppo.value_clip=-1", "'ppo.value_clip' must be >= 0"), ("ppo.target_kl=-1", "'ppo.target_kl' must be >= 0"),
    ("ppo.epochs=2.5", "'ppo.epochs' expects int"),
])
def test_bad_settings_exit_2_before_anything_is_written(tmp_path, capsys, override, fragment):
    run_dir = tmp_path / "run"
    assert main(small(run_dir, override)) == 2
    assert fragment in capsys.readouterr().err
    assert not run_dir.exists()


def test_a_minibatch_too_small_to_normalise_is_refused(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(small(run_dir, "train.segment_length=1", "ppo.minibatches=16")) == 2
    assert "ppo.norm_advantages" in capsys.readouterr().err and not run_dir.exists()
    assert main(small(run_dir, "train.segment_length=1", "ppo.minibatches=16", "ppo.norm_advantages=false",
                      "train.total_steps=32")) == 0


def test_the_algorithm_cannot_change_on_resume(tmp_path, capsys):
    run_dir = tmp_path / "run"
    train(load_config(None, [*small(run_dir, "train.total_steps=320")[2:], "agent.algorithm=segment"]))
    assert main(["train", "--resume", str(run_dir), "agent.algorithm=ppo", *QUIET]) == 2
    assert "'agent.algorithm' cannot change on resume" in capsys.readouterr().err


def test_two_actors_train_with_ppo_log_its_scalars_and_evaluate(tmp_path, capsys):
    run_dir = tmp_path / "run"
    config = memory_config(run_dir, 3000)
    config.agent.algorithm = "ppo"
    summary = train_with_actors(config)
    assert summary["stopped"] == "budget" and summary["steps"] >= 3000
    assert {*tb.PPO_SCALARS, tb.POLICY_LAG, tb.POLICY_LOSS} <= scalar_tags(run_dir)
    # the actors act on published parameters while the learner runs its epochs: a lag of up to
    # the 3 slots an actor fills ahead (more when a loaded machine stalls a publication)
    lags = policy_lags(run_dir)
    assert lags and min(lags) >= 0 and max(lags) >= 1 and statistics.median(lags) <= 3
    assert "ppo_generator" in load_checkpoint(run_dir)["learner"]
    capsys.readouterr()
    assert main(["evaluate", str(run_dir), "--episodes", "8", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["episodes"] == 8


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason='Ray is not installed (pip install -e ".[ray]")')
def test_ppo_on_ray_through_the_shared_learner_loop(tmp_path):
    run_dir = tmp_path / "run"
    config = memory_config(run_dir, 1600)
    config.agent.algorithm, config.runtime.backend, config.log.eval_episodes = "ppo", "ray", 0
    summary = train_with_actors(config)  # starts and stops a local Ray instance
    assert summary["stopped"] == "budget" and summary["steps"] >= 1600
    assert {*tb.PPO_SCALARS, tb.POLICY_LAG} <= scalar_tags(run_dir)
    assert load_checkpoint(run_dir)["learner"]["updates"] == summary["updates"]
