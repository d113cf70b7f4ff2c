"""Checkpoints: round trip, RNG restore, retention, atomicity and safe, clear-erroring loads."""

from __future__ import annotations

import json
import os
import pickle
import random

import numpy as np
import pytest
import torch

from rtrl_rl import cli
from rtrl_rl.config import Config, to_dict
from rtrl_rl.run import checkpoint as ck
from rtrl_rl.run.checkpoint import CheckpointError, load_checkpoint, make_payload, save_checkpoint


def _trained_parts(seed: int = 0):
    """A small model with an optimizer and scheduler that have taken one step."""
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    opt = torch.optim.RMSprop(model.parameters(), lr=6e-4, alpha=0.99, eps=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 1.0 - k / 100)
    model(torch.randn(5, 3)).sum().backward()
    opt.step()
    sched.step()
    return model, opt, sched


def _payload(step: int = 10, **extra):
    model, opt, sched = _trained_parts()
    return make_payload(model, optimizer=opt, scheduler=sched, step=step, updates=step // 2,
                        config=Config(), extra=extra)


def test_round_trip_restores_model_optimizer_scheduler_and_counters(tmp_path):
    model, opt, sched = _trained_parts()
    payload = make_payload(model, optimizer=opt, scheduler=sched, step=1234, updates=7, config=Config(),
                           extra={"carry": {"h": torch.ones(2, 3)}, "wall_s": 1.5})
    path = save_checkpoint(tmp_path, payload, 1234)
    assert path == tmp_path / "checkpoints" / "ckpt-000001234.pt"

    loaded = load_checkpoint(path)
    fresh, fresh_opt, fresh_sched = _trained_parts(seed=1)
    fresh.load_state_dict(loaded["model"])
    fresh_opt.load_state_dict(loaded["optimizer"])
    fresh_sched.load_state_dict(loaded["scheduler"])
    for a, b in zip(model.parameters(), fresh.parameters()):
        assert torch.equal(a, b)
    square_avg = [s["square_avg"] for s in opt.state.values()]
    assert all(torch.equal(a, s["square_avg"]) for a, s in zip(square_avg, fresh_opt.state.values()))
    assert fresh_sched.last_epoch == sched.last_epoch == 1
    assert (loaded["step"], loaded["update"]) == (1234, 7)
    assert loaded["config"] == to_dict(Config())
    assert set(loaded["versions"]) == {"rtrl_rl", "torch", "numpy", "gymnasium", "python"}
    assert loaded["versions"]["torch"] == torch.__version__
    assert loaded["format_version"] == ck.FORMAT_VERSION
    assert torch.equal(loaded["extra"]["carry"]["h"], torch.ones(2, 3))


class _Learner:
    """Stands in for agents.Learner: its state bundles optimizer, scheduler and counters."""

    def __init__(self, opt, sched):
        self.opt, self.sched = opt, sched

    def state_dict(self):
        return {"optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(), "updates": 3}


def test_learner_state_round_trips(tmp_path):
    model, opt, sched = _trained_parts()
    payload = make_payload(model=model, learner=_Learner(opt, sched), step=5, updates=3,
                           config=to_dict(Config()), extra={"observation_space": "Box(0, 1, (3,))"})
    save_checkpoint(tmp_path, payload, 5)
    loaded = load_checkpoint(tmp_path)
    assert loaded["optimizer"] is None and loaded["scheduler"] is None
    fresh_opt = _trained_parts(seed=1)[1]
    fresh_opt.load_state_dict(loaded["learner"]["optimizer"])
    assert loaded["learner"]["scheduler"]["last_epoch"] == 1
    assert loaded["learner"]["updates"] == 3 and loaded["extra"]["observation_space"] == "Box(0, 1, (3,))"


def test_restore_rng_replays_python_numpy_and_torch_draws(tmp_path):
    save_checkpoint(tmp_path, _payload(), 10)
    expected = (random.random(), np.random.rand(), np.random.randn(), torch.rand(3))
    random.random(), np.random.rand(5), torch.rand(7)  # move every generator on
    ck.restore_rng(load_checkpoint(tmp_path))
    got = (random.random(), np.random.rand(), np.random.randn(), torch.rand(3))
    assert got[:3] == expected[:3]
    assert torch.equal(got[3], expected[3])


def test_keeps_last_k_plus_best_and_model_pt_tracks_latest(tmp_path):
    scores = {1: 0.5, 2: 9.0, 3: 1.0, 4: None, 5: 2.0, 6: None}
    for step, score in scores.items():
        save_checkpoint(tmp_path, _payload(step), step, keep=2, score=score)
    files = sorted(p.name for p in (tmp_path / "checkpoints").glob("ckpt-*.pt"))
    assert files == ["ckpt-000000002.pt", "ckpt-000000005.pt", "ckpt-000000006.pt"]
    index = json.loads((tmp_path / "checkpoints" / "index.json").read_text())
    assert index["best"] == {"file": "ckpt-000000002.pt", "step": 2, "score": 9.0}
    assert index["latest"] == "ckpt-000000006.pt"
    assert [e["step"] for e in ck.list_checkpoints(tmp_path)] == [2, 5, 6]
    assert ck.best_checkpoint(tmp_path) == tmp_path / "checkpoints" / "ckpt-000000002.pt"

    model_pt = tmp_path / "model.pt"
    assert model_pt.is_file() and not model_pt.is_symlink()
    assert load_checkpoint(tmp_path)["step"] == 6
    assert load_checkpoint(model_pt)["step"] == 6
    assert load_checkpoint(tmp_path / "checkpoints")["step"] == 6


def test_a_better_score_replaces_the_best_and_the_old_best_is_pruned(tmp_path):
    for step, score in [(1, 5.0), (2, None), (3, None), (4, 6.0)]:
        save_checkpoint(tmp_path, _payload(step), step, keep=1, score=score)
    files = sorted(p.name for p in (tmp_path / "checkpoints").glob("ckpt-*.pt"))
    assert files == ["ckpt-000000004.pt"]


def test_nan_scores_never_become_the_best_and_a_resave_drops_its_old_score(tmp_path):
    save_checkpoint(tmp_path, _payload(1), 1, keep=1, score=float("nan"))
    save_checkpoint(tmp_path, _payload(2), 2, keep=1, score=1.0)
    assert ck.best_checkpoint(tmp_path).name == "ckpt-000000002.pt"
    save_checkpoint(tmp_path, _payload(2), 2, keep=1, score=None)  # same step written again
    assert ck.best_checkpoint(tmp_path) is None


def test_files_are_readable_by_others(tmp_path):
    path = save_checkpoint(tmp_path, _payload(1), 1)
    assert path.stat().st_mode & 0o777 == 0o644


def test_model_pt_outlives_the_pruning_of_its_file(tmp_path):
    save_checkpoint(tmp_path, _payload(1), 1, keep=1)
    (tmp_path / "checkpoints" / "ckpt-000000001.pt").unlink()
    assert load_checkpoint(tmp_path)["step"] == 1


def test_failed_write_leaves_previous_checkpoint_and_no_temp_files(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, _payload(1), 1)

    def broken_save(obj, f):
        f.write(b"PK\x03\x04 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(ck.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path, _payload(2), 2)
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["ckpt-000000001.pt", "index.json"]
    assert load_checkpoint(tmp_path)["step"] == 1


def test_damaged_index_is_rebuilt_from_the_files(tmp_path):
    save_checkpoint(tmp_path, _payload(1), 1)
    (tmp_path / "checkpoints" / "index.json").write_text("{not json")
    (tmp_path / "model.pt").unlink()
    assert load_checkpoint(tmp_path)["step"] == 1
    save_checkpoint(tmp_path, _payload(2), 2, keep=5)
    assert [e["step"] for e in ck.list_checkpoints(tmp_path)] == [1, 2]


def test_unsafe_objects_are_refused_at_save_time(tmp_path):
    class Custom:
        pass

    with pytest.raises(CheckpointError, match=r"payload\['extra'\]\['thing'\] is a Custom"):
        save_checkpoint(tmp_path, _payload(1, thing=Custom()), 1)
    assert not (tmp_path / "checkpoints" / "ckpt-000000001.pt").exists()


def test_numpy_values_are_stored_as_tensors_and_numbers(tmp_path):
    save_checkpoint(tmp_path, _payload(1, arr=np.arange(3), num=np.float32(2.5)), 1)
    extra = load_checkpoint(tmp_path)["extra"]
    assert torch.equal(extra["arr"], torch.arange(3)) and extra["num"] == 2.5


def test_keep_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="keep"):
        save_checkpoint(tmp_path, _payload(1), 1, keep=0)


class _Evil:
    """Pickles into a call that creates a marker file when unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


def test_malicious_torch_file_is_refused_without_running(tmp_path):
    marker, path = tmp_path / "pwned", tmp_path / "evil.pt"
    torch.save({"format": ck.FORMAT_NAME, "x": _Evil(marker)}, path)
    with pytest.raises(CheckpointError, match="refused to load .*exec"):
        load_checkpoint(path)
    assert not marker.exists()
    torch.load(path, weights_only=False)  # proves the file really runs code when trusted
    assert marker.exists()


def test_malicious_raw_pickle_is_refused_without_running(tmp_path):
    marker, path = tmp_path / "pwned", tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps(_Evil(marker), protocol=2))
    with pytest.raises(CheckpointError, match="refused to load"):
        load_checkpoint(path)
    assert not marker.exists()
    pickle.loads(path.read_bytes())
    assert marker.exists()


def test_truncated_checkpoint_gives_a_clear_error(tmp_path):
    path = save_checkpoint(tmp_path, _payload(1), 1)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupted, truncated or not a checkpoint"):
        load_checkpoint(path)


@pytest.mark.parametrize("content", [b"", b"\x00" * 100, b"hello, world\n"])
def test_garbage_file_gives_a_clear_error(tmp_path, content):
    path = tmp_path / "junk.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(path)


def test_flipped_bytes_give_a_clear_error(tmp_path):
    path = save_checkpoint(tmp_path, _payload(1), 1)
    data = bytearray(path.read_bytes())
    data[-200:] = bytes(200)  # the zip directory at the end
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


def test_a_torch_file_that_is_not_a_checkpoint_is_refused(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="not an rtrl-rl checkpoint"):
        load_checkpoint(path)


def test_newer_format_version_is_refused(tmp_path):
    payload = _payload(1)
    payload["format_version"] = ck.FORMAT_VERSION + 1
    save_checkpoint(tmp_path, payload, 1)
    with pytest.raises(CheckpointError, match="newer rtrl-rl"):
        load_checkpoint(tmp_path)


def test_incomplete_payload_is_refused(tmp_path):
    payload = _payload(1)
    del payload["rng"]
    save_checkpoint(tmp_path, payload, 1)
    with pytest.raises(CheckpointError, match=r"missing \['rng'\]"):
        load_checkpoint(tmp_path)


def test_missing_paths_give_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nowhere")
    with pytest.raises(CheckpointError, match="holds no checkpoint"):
        load_checkpoint(tmp_path)


def test_a_new_run_refuses_a_directory_that_holds_a_run(tmp_path):
    from rtrl_rl.run.session import check_run_dir, fresh_run_dir

    run_dir = tmp_path / "run"
    check_run_dir(run_dir)  # not there yet: fine
    run_dir.mkdir()
    (run_dir / "train.log").write_text("a log of the runner, not a run")
    check_run_dir(run_dir)
    (run_dir / "events.out.tfevents.1.host").write_text("")
    with pytest.raises(ValueError, match=r"already holds a run \(events.out.tfevents.1.host\).*--resume"):
        check_run_dir(run_dir)
    check_run_dir(run_dir, resume_from=str(run_dir))  # resuming in place is what --resume does
    assert fresh_run_dir(run_dir) and list(run_dir.iterdir()) == []
    check_run_dir(run_dir)


def test_train_cli_exits_2_instead_of_mixing_two_runs(tmp_path, capsys):
    args = ["train", "train.total_steps=100", "log.progress=false", "log.eval_episodes=0", f"run_dir={tmp_path}"]
    (tmp_path / "summary.json").write_text("{}")
    assert cli.main(args) == 2
    assert "already holds a run (summary.json)" in capsys.readouterr().err
    assert (tmp_path / "summary.json").read_text() == "{}" and not (tmp_path / "config.yaml").exists()
