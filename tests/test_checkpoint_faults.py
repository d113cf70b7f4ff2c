"""Checkpoint files after faults: a writer killed mid-write, a kill between the index and
pruning, and malicious pickles reported as refused code, never with advice to unlock it."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rtrl_rl.config import Config
from rtrl_rl.run import checkpoint as ck
from rtrl_rl.run.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def _payload(step: int) -> dict:
    model = torch.nn.Linear(3, 2)
    return ck.make_payload(model, step=step, updates=step, config=Config())


def _temps(run_dir: Path) -> list[str]:
    return sorted(p.name for d in (run_dir, run_dir / "checkpoints") for p in d.glob(".*.tmp"))


KILLED_WRITER = """
import os, signal, sys
import torch
from rtrl_rl.config import Config
from rtrl_rl.run import checkpoint as ck

run_dir = sys.argv[1]
ck.save_checkpoint(run_dir, ck.make_payload(torch.nn.Linear(3, 2), step=1, updates=1, config=Config()), 1)

def dying_save(obj, f):
    f.write(b"PK\\x03\\x04 the first bytes of a checkpoint")
    f.flush()
    os.kill(os.getpid(), signal.SIGKILL)

ck.torch.save = dying_save
ck.save_checkpoint(run_dir, ck.make_payload(torch.nn.Linear(3, 2), step=2, updates=2, config=Config()), 2)
"""


def test_a_sigkill_during_a_write_leaves_a_temp_file_that_the_next_open_and_save_remove(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(tmp_path)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    left = _temps(tmp_path)
    assert len(left) == 1 and left[0].startswith(".ckpt-000000002.pt."), left
    assert load_checkpoint(tmp_path)["step"] == 1  # the kill never touched the finished file
    assert _temps(tmp_path) == []  # opening the run dir removed the dead writer's leftover

    (tmp_path / "checkpoints" / left[0]).write_bytes(b"half")  # left again: now the save cleans it
    save_checkpoint(tmp_path, _payload(3), 3)
    assert _temps(tmp_path) == [] and load_checkpoint(tmp_path)["step"] == 3


def test_a_live_writers_temp_file_is_left_alone(tmp_path):
    save_checkpoint(tmp_path, _payload(1), 1)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        busy = tmp_path / "checkpoints" / f".ckpt-000000002.pt.{live.pid}.abc123.tmp"
        busy.write_bytes(b"a write in progress")
        dead = tmp_path / f".model.pt.{2**22 + 12345}.link.tmp"  # above Linux's default pid_max
        dead.write_bytes(b"")
        removed = ck.clean_stale_temps(tmp_path)
        assert removed == [dead] and busy.exists()
    finally:
        live.kill()
        live.wait()
    assert ck.clean_stale_temps(tmp_path) == [busy]


def test_latest_is_the_highest_step_after_a_kill_between_the_index_and_pruning(tmp_path, monkeypatch):
    for step in (100, 200):
        save_checkpoint(tmp_path, _payload(step), step, keep=1)

    def killed(*args):  # what the disk holds when the process dies right before pruning
        raise KeyboardInterrupt

    monkeypatch.setattr(ck, "_prune", killed)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, _payload(300), 300, keep=1)
    monkeypatch.undo()
    names = sorted(p.name for p in (tmp_path / "checkpoints").glob("ckpt-*.pt"))
    assert names == ["ckpt-000000200.pt", "ckpt-000000300.pt"]  # 200 is not in the index any more
    (tmp_path / "model.pt").unlink()
    assert [e["step"] for e in ck.list_checkpoints(tmp_path)] == [200, 300]
    assert ck.latest_checkpoint(tmp_path).name == "ckpt-000000300.pt"
    assert load_checkpoint(tmp_path)["step"] == 300


def test_latest_is_the_highest_step_after_a_kill_before_model_pt_moved(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, _payload(100), 100)
    monkeypatch.setattr(ck, "_point_latest", lambda *args: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, _payload(200), 200)
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "model.pt")["step"] == 100  # model.pt still names the old one
    assert load_checkpoint(tmp_path)["step"] == 200
    save_checkpoint(tmp_path, _payload(300), 300)
    assert ck.latest_checkpoint(tmp_path) == tmp_path / "model.pt"  # the same file as ckpt-300


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("form", ["torch.save", "raw pickle"])
def test_a_malicious_pickle_is_refused_as_code_and_the_message_never_suggests_unlocking(tmp_path, form):
    marker, path = tmp_path / "pwned", tmp_path / "evil.pt"
    if form == "torch.save":
        torch.save({"format": ck.FORMAT_NAME, "model": _Evil(marker)}, path)
    else:
        path.write_bytes(pickle.dumps(_Evil(marker), protocol=2))
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    message = str(err.value)
    assert "would run code" in message and "system" in message and "nothing from it was executed" in message
    assert "weights_only" not in message and "\n" not in message
    assert not marker.exists()


def test_unreadable_files_get_one_line_without_torchs_advice(tmp_path):
    path = tmp_path / "junk.pt"
    path.write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match="corrupted, truncated or not a checkpoint") as err:
        load_checkpoint(path)
    assert "weights_only" not in str(err.value) and "\n" not in str(err.value)
