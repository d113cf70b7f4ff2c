"""A checkpoint's sha256 digest catches flipped bytes that torch loads silently, and a raw
pickle that names code is refused as code whatever its protocol."""

from __future__ import annotations

import os
import pickle
import warnings

import pytest
import torch

from rtrl_rl.run.checkpoint import (
    CheckpointError, UnreadableCheckpoint, load_checkpoint, make_payload, save_checkpoint,
)
from rtrl_rl.cli import main
from rtrl_rl.config import Config
from rtrl_rl.run.digest import payload_digest
from rtrl_rl.run.pickle_scan import named_globals
from small_runs import QUIET, copy_run, train_small

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished small run (its checkpoint is about 0.1 MB, mostly tensor bytes)."""
    return train_small(tmp_path_factory.mktemp("run"), "env.num_envs=8", "env.options.delay=2",
                       "agent.hidden_size=32", "train.total_steps=800")


@pytest.fixture
def run(trained, tmp_path):
    return copy_run(trained, tmp_path / "run")


def _flip(path, start: int, count: int) -> None:
    data = bytearray(path.read_bytes())
    for i in range(start, start + count):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _tensor_byte(path) -> int:
    """The offset of a byte inside the largest tensor of the checkpoint file."""
    payload = load_checkpoint(path)
    name, tensor = max(payload["model"].items(), key=lambda kv: kv[1].numel())
    needle = tensor.contiguous().view(-1).view(torch.uint8).numpy().tobytes()[64:96]
    offset = path.read_bytes().find(needle)
    assert offset > 0, f"{name}'s bytes not found in the file"
    return offset


def test_the_digest_covers_every_value_and_is_stored_in_the_file(run):
    payload = load_checkpoint(run)
    assert payload["digest"] == payload_digest(payload)
    changed = dict(payload, step=payload["step"] + 1)
    assert payload_digest(changed) != payload["digest"]
    model = {k: v.clone() for k, v in payload["model"].items()}
    next(iter(model.values())).view(-1)[0] += 1e-7
    assert payload_digest(dict(payload, model=model)) != payload["digest"]


def test_one_flipped_tensor_byte_is_refused_as_corrupted(run):
    path = run / "model.pt"
    _flip(path, _tensor_byte(path), 1)
    torch.load(path, weights_only=True)  # torch itself reads it without complaint
    with pytest.raises(UnreadableCheckpoint, match="is corrupted: its contents do not match the sha256 digest"):
        load_checkpoint(path)


def test_2000_bytes_flipped_in_the_middle_refuse_evaluate_and_resume(run, capsys):
    files = [run / "model.pt", *(run / "checkpoints").glob("ckpt-*.pt")]  # copies here, not hard links
    assert len(files) == 2
    for path in files:
        _flip(path, path.stat().st_size // 2 - 1000, 2000)
    assert main(["evaluate", str(run), "--episodes", "2"]) == 2
    err = capsys.readouterr().err
    assert "is corrupted" in err and len(err.strip().splitlines()) == 1, err
    assert main(["train", "--resume", str(run), *QUIET]) == 2  # its only checkpoint: nothing to fall back to
    err = capsys.readouterr().err
    assert "is corrupted" in err and len(err.strip().splitlines()) == 1, err


def test_a_checkpoint_without_a_digest_from_older_versions_loads(tmp_path):
    payload = make_payload(torch.nn.Linear(2, 2), step=5, updates=1, config=Config())
    path = tmp_path / "old.pt"
    torch.save(payload, path)  # what save_checkpoint wrote before digests existed
    assert "digest" not in payload and load_checkpoint(path)["step"] == 5


def test_an_edited_checkpoint_keeps_a_digest_that_no_longer_matches(tmp_path):
    save_checkpoint(tmp_path, make_payload(torch.nn.Linear(2, 2), step=5, updates=1, config=Config()), 5)
    payload = load_checkpoint(tmp_path)
    payload["step"] = 6
    torch.save(payload, tmp_path / "edited.pt")
    with pytest.raises(UnreadableCheckpoint, match="corrupted"):
        load_checkpoint(tmp_path / "edited.pt")
    save_checkpoint(tmp_path, payload, 6)  # saving through rtrl-rl seals it anew
    assert load_checkpoint(tmp_path)["step"] == 6


class _Evil:
    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _Popen:
    def __reduce__(self):
        return (os.popen, ("true",))


class _Exec:
    def __reduce__(self):
        return (os.execv, ("/bin/true", ["true"]))


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_a_raw_pickle_that_names_code_is_refused_as_code_at_every_protocol(tmp_path, capsys, protocol):
    marker, path = tmp_path / "pwned", tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"format": "rtrl-rl-checkpoint", "model": _Evil(marker)}, protocol=protocol))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch's protocol warning must not leak out
        with pytest.raises(CheckpointError, match="it would run code when loaded .*it names posix.system"):
            load_checkpoint(path)
    assert main(["evaluate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "refused to load" in err and "would run code" in err and "UserWarning" not in err, err
    assert len(err.strip().splitlines()) == 1 and not marker.exists()


def test_a_raw_pickle_of_plain_data_is_unreadable_not_code(tmp_path, capsys):
    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps({"weights": [1.0, 2.0]}))
    with pytest.raises(UnreadableCheckpoint, match="cannot read .*not a checkpoint"):
        load_checkpoint(path)
    assert main(["evaluate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "cannot read" in err and "UserWarning" not in err and len(err.strip().splitlines()) == 1, err


def test_the_scan_finds_globals_through_the_memo_and_ignores_torch_files(tmp_path):
    path = tmp_path / "three.pkl"
    path.write_bytes(pickle.dumps([_Evil(tmp_path / "a"), _Popen(), _Exec()], protocol=4))
    assert named_globals(path) == ["posix.system", "os.popen", "posix.execv"]  # 'posix' again via BINGET
    torch.save({"x": torch.zeros(2)}, tmp_path / "t.pt")
    assert named_globals(tmp_path / "t.pt") == []  # a zip: torch's loader checks its pickle itself
    (tmp_path / "junk").write_bytes(b"\xff" * 50)
    assert named_globals(tmp_path / "junk") == []
