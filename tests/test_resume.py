"""``train --resume RUN key=value``: every override takes effect, or is refused (exit 2,
the key named, nothing written); a missing, truncated or malicious checkpoint is exit 2."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch

from rtrl_rl.cli import main
from rtrl_rl.config import load_config
from rtrl_rl.run.checkpoint import FORMAT_NAME, load_checkpoint
from rtrl_rl.run.resume import restore_run, resume_config
from rtrl_rl.training.run_builder import build_agent, make_env
from rtrl_rl.training.sync_trainer import train

QUIET = ["log.progress=false", "log.tensorboard=false"]
BASE = ["env.num_envs=16", "env.options.delay=3", "agent.hidden_size=8", "train.total_steps=3200",
        "log.eval_episodes=0", *QUIET]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One finished Adam run and one RMSprop run (3200 steps each), copied per test."""
    root = tmp_path_factory.mktemp("runs")
    for name, extra in (("adam", []), ("rmsprop", ["train.optimizer=rmsprop", "train.lr=6e-4"]),
                        ("lstm", ["agent.core=lstm", "agent.learning=tbptt"])):
        train(load_config(None, [*BASE, *extra, f"run_dir={root / name}"]))
    return root


@pytest.fixture
def run(runs, tmp_path):
    def copy(name: str = "adam"):
        target = tmp_path / name
        shutil.copytree(runs / name, target)
        return target
    return copy


def _resume(run_dir, *overrides: str) -> int:
    return main(["train", "--resume", str(run_dir), *QUIET, *overrides])


def _restored(run_dir, *overrides: str):
    """Model and learner as a resume builds them (new config, then the checkpoint)."""
    config = resume_config(run_dir, list(overrides))
    with make_env(config, 0) as venv:
        model, learner = build_agent(config, venv.single_observation_space, venv.single_action_space)
    restore_run(run_dir, model, learner)
    return model, learner


def test_optimizer_hyperparameters_take_effect(run):
    _, learner = _restored(run(), "train.lr=1e-4", "train.adam_eps=1e-5")
    group = learner.optimizer.param_groups[0]
    assert (group["lr"], group["eps"]) == (1e-4, 1e-5)
    assert learner.scheduler.base_lrs == [1e-4]
    _, learner = _restored(run("rmsprop"), "train.rmsprop_alpha=0.9", "train.rmsprop_eps=0.1", "train.lr=2e-4")
    group = learner.optimizer.param_groups[0]
    assert (group["lr"], group["alpha"], group["eps"]) == (2e-4, 0.9, 0.1)


def test_a_resumed_run_trains_at_the_new_lr(run):
    run_dir = run()
    saved = load_checkpoint(run_dir)["learner"]["optimizer"]["param_groups"][0]["lr"]
    assert saved == pytest.approx(3e-3)
    assert _resume(run_dir, "train.lr=1e-4", "train.total_steps=6400") == 0
    after = load_checkpoint(run_dir)
    assert after["step"] == 6400
    assert after["learner"]["optimizer"]["param_groups"][0]["lr"] == pytest.approx(1e-4)
    assert after["learner"]["scheduler"]["base_lrs"] == [pytest.approx(1e-4)]


def test_schedule_and_budget_take_effect(run):
    # 3200 of 12800 steps done: linear decay puts the lr at 3/4 of its base
    _, learner = _restored(run(), "train.lr_decay=true", "train.total_steps=12800")
    assert learner.optimizer.param_groups[0]["lr"] == pytest.approx(3e-3 * 0.75)
    assert learner.scheduler.get_last_lr() == [pytest.approx(3e-3 * 0.75)]
    learner.steps += 3200
    learner.scheduler.step()
    assert learner.optimizer.param_groups[0]["lr"] == pytest.approx(3e-3 * 0.5)


def test_reward_clip_takes_effect_in_the_model_and_the_loss(run):
    run_dir = run()
    model, learner = _restored(run_dir, "train.reward_clip=1.0")
    assert float(model.reward_clip) == 1.0 and learner.config.reward_clip == 1.0  # core input, loss
    assert _resume(run_dir, "train.reward_clip=1.0", "train.total_steps=4800") == 0
    assert float(load_checkpoint(run_dir)["model"]["reward_clip"]) == 1.0


def test_logging_keys_take_effect(run):
    run_dir = run()
    assert _resume(run_dir, "train.total_steps=4800", "log.eval_episodes=8", "log.eval_interval_steps=800") == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["evaluations"] and summary["evaluations"][0]["episodes"] == 8


def test_a_new_seed_reseeds_instead_of_continuing_the_stored_rng(run):
    run_dir = run()
    stored = load_checkpoint(run_dir)["rng"]["torch"]
    torch.manual_seed(123)
    _restored(run_dir)
    assert torch.equal(torch.get_rng_state(), stored)
    torch.manual_seed(123)
    _restored(run_dir, "train.seed=7")
    assert not torch.equal(torch.get_rng_state(), stored)


@pytest.mark.parametrize("override, fragment", [
    ("train.optimizer=rmsprop", "train.optimizer"),
    ("agent.hidden_size=16", "agent.hidden_size"),
    ("agent.core=mingru", "agent.core"),
    ("agent.learning=none", "agent.learning"),
    ("agent.learning=snap1", "approximates RTRL for the dense cores"),  # not for the stored elstm
    ("agent.forget_bias=1.0", "agent.forget_bias"),
    ("env.id=memory:tmaze", "env.id"),
    ("env.options.num_symbols=6", "observation space"),
])
def test_what_cannot_be_honoured_is_refused_before_anything_is_written(run, capsys, override, fragment):
    run_dir = run()
    before = {p.name: p.read_bytes() for p in [run_dir / "config.yaml", run_dir / "model.pt"]}
    files = sorted(os.listdir(run_dir))
    assert _resume(run_dir, override, "train.total_steps=6400") == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert {p: (run_dir / p).read_bytes() for p in before} == before and sorted(os.listdir(run_dir)) == files


def test_rtrl_and_tbptt_share_parameters_so_switching_is_honoured(run):
    run_dir = run()
    assert _resume(run_dir, "agent.learning=tbptt", "train.total_steps=4800") == 0
    assert load_checkpoint(run_dir)["config"]["agent"]["learning"] == "tbptt"


@pytest.mark.parametrize("rule", ["rtrl", "snap1", "uoro", "kfrtrl"])
def test_a_tbptt_lstm_run_goes_on_under_every_rule_of_the_dense_lstm(run, rule):
    run_dir = run("lstm")
    trained = load_checkpoint(run_dir)["model"]
    model, _ = _restored(run_dir, f"agent.learning={rule}")  # strict load: the same parameter names
    assert all(torch.equal(model.state_dict()[k], v) for k, v in trained.items())
    assert _resume(run_dir, f"agent.learning={rule}", "train.total_steps=4000") == 0
    assert load_checkpoint(run_dir)["config"]["agent"]["learning"] == rule


def _bad_checkpoints(run_dir):
    """name -> how to break ``run_dir`` (each leaves a run dir that a user might resume)."""
    def truncate():
        for path in [run_dir / "model.pt", *(run_dir / "checkpoints").glob("ckpt-*.pt")]:
            data = path.read_bytes()
            path.write_bytes(data[: len(data) // 2])

    def malicious():
        class Evil:
            def __reduce__(self):
                return (os.system, (f"touch {run_dir / 'pwned'}",))
        shutil.rmtree(run_dir / "checkpoints")
        torch.save({"format": FORMAT_NAME, "model": Evil()}, run_dir / "model.pt")

    def empty():
        shutil.rmtree(run_dir)
        run_dir.mkdir()

    return {"truncated": truncate, "malicious": malicious, "empty": empty}


@pytest.mark.parametrize("case, fragment", [
    ("truncated", "corrupted, truncated"), ("malicious", "would run code"), ("empty", "holds no checkpoint"),
])
def test_an_unusable_checkpoint_is_one_line_and_exit_2(run, capsys, case, fragment):
    run_dir = run()
    _bad_checkpoints(run_dir)[case]()
    assert _resume(run_dir) == 2
    err = capsys.readouterr().err
    assert fragment in err and len(err.strip().splitlines()) == 1 and "weights_only" not in err, err
    assert not (run_dir / "pwned").exists()


def test_the_learner_refuses_the_state_of_another_optimizer():
    from tests.test_agent_learner import Learner, make_model, train_config

    adam = Learner(make_model(), train_config(), num_streams=2)
    rmsprop = Learner(make_model(), train_config(optimizer="rmsprop"), num_streams=2)
    with pytest.raises(ValueError, match="not a RMSprop state"):
        rmsprop.load_state_dict(adam.state_dict())
    with pytest.raises(ValueError, match="not a Adam state"):
        adam.load_state_dict(rmsprop.state_dict())
