"""Where ``--resume`` continues from: a checkpoint file into its run (or a new one), the
newest readable checkpoint when the newest is damaged, and new episodes (not a replay)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from rtrl_rl.cli import main
from rtrl_rl.config import load_config
from rtrl_rl.run.checkpoint import list_checkpoints, load_checkpoint
from rtrl_rl.training import sync_trainer as trainer
from rtrl_rl.training.run_builder import env_seed, make_env
from rtrl_rl.training.sync_trainer import train
from small_runs import QUIET, copy_run, train_small

#: 16 streams x 10 steps = 160 steps per update, a checkpoint after every update, 3 kept
BASE = ["env.num_envs=16", "env.options.delay=3", "agent.hidden_size=8", "runtime.checkpoint_every_s=0"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A run of 960 steps that kept its checkpoints at steps 640, 800 and 960."""
    return train_small(tmp_path_factory.mktemp("runs") / "run", *BASE, "train.total_steps=960")


@pytest.fixture
def run(finished, tmp_path):
    return copy_run(finished, tmp_path / "run")


def ckpt(run_dir, step: int):
    return run_dir / "checkpoints" / f"ckpt-{step:09d}.pt"


def _resume(*args: str) -> int:
    return main(["train", "--resume", *args, *QUIET])


def _summary(run_dir) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def _damage(path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle - 1000:middle + 1000] = bytes(b ^ 0xFF for b in data[middle - 1000:middle + 1000])
    path.write_bytes(bytes(data))


def test_the_run_keeps_the_checkpoints_these_tests_expect(run):
    assert [e["step"] for e in list_checkpoints(run)] == [640, 800, 960]


def test_a_checkpoint_file_resumes_into_its_run(run, capsys):
    assert _resume(str(ckpt(run, 960)), "train.total_steps=1280") == 0
    assert "Traceback" not in capsys.readouterr().err
    assert _summary(run)["steps"] == 1280 and load_checkpoint(run)["step"] == 1280
    assert load_checkpoint(run / "model.pt")["update"] == 8  # 6 updates, then 2 more in the same run
    assert _resume(str(run / "model.pt"), "train.total_steps=1440") == 0  # model.pt: the same
    assert _summary(run)["steps"] == 1440


def test_an_older_checkpoint_file_is_refused_where_it_would_mix_two_continuations(run, capsys):
    files = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert _resume(str(ckpt(run, 640)), "train.total_steps=1280") == 2
    err = capsys.readouterr().err
    assert "is not the latest checkpoint" in err and "ckpt-000000800.pt" in err, err
    assert f"--resume {run}" in err and "run_dir=NEW_DIR" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == files and _summary(run)["steps"] == 960


def test_an_older_checkpoint_file_branches_into_a_new_run_dir(run, tmp_path):
    branch = tmp_path / "branch"
    assert _resume(str(ckpt(run, 640)), "train.total_steps=960", f"run_dir={branch}") == 0
    assert _summary(branch)["steps"] == 960 and load_checkpoint(branch)["update"] == 6  # 4, then 2 more
    assert [e["step"] for e in list_checkpoints(run)] == [640, 800, 960]  # the old run is untouched


def test_a_checkpoint_file_outside_any_run_needs_a_run_dir(run, tmp_path, capsys):
    loose = tmp_path / "elsewhere.pt"
    shutil.copy(ckpt(run, 960), loose)
    assert _resume(str(loose)) == 2
    err = capsys.readouterr().err
    assert "is not a checkpoint of a run directory" in err and "run_dir=NEW_DIR" in err, err
    assert _resume(str(loose), "train.total_steps=1120", f"run_dir={tmp_path / 'new'}") == 0
    assert _summary(tmp_path / "new")["steps"] == 1120


def test_a_damaged_newest_checkpoint_falls_back_to_the_newest_readable_with_a_warning(run, capsys):
    newest = ckpt(run, 960)
    _damage(newest)  # model.pt is a copy here: damage it as the hard link would be
    _damage(run / "model.pt")
    assert _resume(str(run), "train.total_steps=1120") == 0
    err = capsys.readouterr().err
    warning = next(line for line in err.splitlines() if "warning:" in line)
    assert str(newest) in warning and "is corrupted" in warning, err
    assert f"resuming from {ckpt(run, 800)} (step 800)" in warning and f"kept as {newest}.unreadable" in warning
    assert (run / "checkpoints" / (newest.name + ".unreadable")).exists()
    assert _summary(run)["steps"] == 1120 and load_checkpoint(run)["update"] == 7  # 5 updates, then 2
    assert [e["step"] for e in list_checkpoints(run)] == [800, 960, 1120]
    assert load_checkpoint(newest)["update"] == 6  # the continued run's own step 960


def test_a_truncated_newest_checkpoint_falls_back_too(run, capsys):
    for path in (ckpt(run, 960), run / "model.pt"):
        path.write_bytes(path.read_bytes()[:5000])
    assert _resume(str(run), "train.total_steps=960") == 0
    assert "cannot read" in capsys.readouterr().err and _summary(run)["steps"] == 960


def test_an_explicit_file_sets_later_damaged_checkpoints_aside(run, capsys):
    _damage(ckpt(run, 960))
    assert _resume(str(ckpt(run, 800)), "train.total_steps=960") == 0
    err = capsys.readouterr().err
    assert "warning:" in err and "ckpt-000000960.pt.unreadable" in err, err
    assert load_checkpoint(ckpt(run, 960))["update"] == 6  # written anew by the continued run


def test_an_earlier_file_goes_on_past_a_later_checkpoint_with_non_finite_parameters(run, capsys):
    # A diverged run's newest checkpoint is refused (it holds NaN): its earlier one goes on.
    payload = torch.load(ckpt(run, 960), weights_only=True)
    del payload["digest"]  # what a writer without the finiteness check would have saved
    next(iter(payload["model"].values())).view(-1)[0] = float("nan")
    torch.save(payload, ckpt(run, 960))
    assert _resume(str(run)) == 2
    assert "not finite" in capsys.readouterr().err
    assert _resume(str(ckpt(run, 800)), "train.total_steps=960") == 0
    err = capsys.readouterr().err
    assert "warning:" in err and "not finite" in err and "ckpt-000000960.pt.unreadable" in err, err
    assert load_checkpoint(run)["step"] == 960 and load_checkpoint(ckpt(run, 960))["update"] == 6


def test_the_synchronous_trainer_meets_new_episodes_after_a_resume(run, monkeypatch):
    first_obs = []

    class Recording(trainer.Collector):
        def __init__(self, venv, *args, **kwargs):
            super().__init__(venv, *args, **kwargs)
            first_obs.append(self.obs.clone())

    monkeypatch.setattr(trainer, "Collector", Recording)
    config = load_config(None, [*BASE, *QUIET, "train.total_steps=160", f"run_dir={run.parent / 'fresh'}"])
    train(config)
    assert _resume(str(run), "train.total_steps=1120") == 0
    fresh, resumed = first_obs
    with make_env(config, config.train.seed) as venv:
        assert torch.equal(torch.as_tensor(venv.reset().obs), fresh)  # a fresh run: train.seed itself
    assert not torch.equal(fresh, resumed), "the resumed run replays the first episodes"
    with make_env(config, env_seed(config.train.seed, 960)) as venv:
        assert torch.equal(torch.as_tensor(venv.reset().obs), resumed)  # seeded from the start step


def test_env_seed_keeps_a_fresh_run_and_differs_per_start_step():
    assert env_seed(7) == env_seed(7, 0) == 7
    seeds = {env_seed(7, step) for step in (160, 320, 480)} | {env_seed(8, 160)}
    assert len(seeds) == 4 and all(0 <= s < 2**31 for s in seeds)
