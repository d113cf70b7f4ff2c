"""Checkpoints of a run: atomic writes, retention, a ``model.pt`` alias and safe loading
(what a checkpoint holds is :mod:`rtrl_rl.run.payload`).

The files live where :class:`rtrl_rl.run.layout.RunPaths` says: ``RUN_DIR/model.pt`` (the
latest, a hard link or a copy), ``RUN_DIR/checkpoints/ckpt-000001234.pt`` (one per saved
step) and ``RUN_DIR/checkpoints/index.json`` (latest, best and every kept file with its
score; see ``docs/checkpoints.md``).

Every file is written to a temporary name in its final directory, flushed, fsynced and
then renamed with ``os.replace``, so a crash leaves either the old file or the new one,
never a half-written one; temporary files that a killed writer left behind are removed by
the next save or open. Loading uses ``torch.load(weights_only=True)``, which refuses any
pickled object other than tensors and plain data: unpickling a checkpoint never runs code.
(What a checkpoint's stored *config* may make other commands import is a separate
question: see ``rtrl_rl.run.trust``.)
"""

from __future__ import annotations

import json
import math
import os
import pickle
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from rtrl_rl.run.digest import digest_problem, seal
# the payload's format and builders are public here too: callers save and load through this module
from rtrl_rl.run.payload import (  # noqa: F401
    FORMAT_NAME, FORMAT_VERSION, REQUIRED_KEYS, CheckpointError, UnreadableCheckpoint, capture_rng,
    describe_entries, library_versions, make_payload, non_finite_entries, restore_rng, to_plain,
)
from rtrl_rl.run.layout import CHECKPOINT_DIR, CHECKPOINT_RE, INDEX_NAME, LATEST_NAME, RunPaths
from rtrl_rl.run.pickle_scan import named_globals

#: temporary files of a write in progress: ``.<final name>.<writer pid>.<random>.tmp``
_TEMP_RE = re.compile(rf"^\.(?:ckpt-\d+\.pt|{re.escape(LATEST_NAME)}|{re.escape(INDEX_NAME)})\.(?:(\d+)\.)?[^.]*\.tmp$")
#: a temporary file without a writer pid (older versions' names) is stale after this long
STALE_TEMP_S = 3600.0


# --------------------------------------------------------------------------- writing


def _fsync_dir(path: Path) -> None:
    """Make a rename durable: on POSIX the directory entry needs its own fsync."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write(path: Path, write: Callable[[Any], None]) -> None:
    """Write via ``write(file)`` into a temp file beside ``path``, fsync, then rename."""
    # the writer's pid in the name lets a later save or open tell a live write from a dead one
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fchmod(f.fileno(), 0o644)  # mkstemp makes 0600; checkpoints are meant to be shared
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _point_latest(run_dir: Path, target: Path) -> None:
    """Make ``RUN_DIR/model.pt`` the same file as ``target``, atomically.

    A hard link costs no space and survives pruning of ``target``; where the filesystem
    has no hard links we copy. Either way ``model.pt`` is a regular file, never a symlink.
    """
    latest = RunPaths(run_dir).latest
    tmp = run_dir / f".{latest.name}.{os.getpid()}.link.tmp"
    tmp.unlink(missing_ok=True)
    try:
        os.link(target, tmp)
    except OSError:
        shutil.copyfile(target, tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
    os.replace(tmp, latest)
    _fsync_dir(run_dir)


def _writer_alive(pid: int) -> bool:
    """Whether process ``pid`` (another than this one) still runs and may be mid-write."""
    if pid == os.getpid():
        return False  # this process writes synchronously: a temp file of ours is a leftover
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it exists, under another user
        return True
    return True


def clean_stale_temps(run_dir: str | Path) -> list[Path]:
    """Remove the temporary files that a killed writer left in ``run_dir`` and its
    ``checkpoints/``; return the paths removed.

    A SIGKILL during a write leaves ``.<name>.<pid>.<random>.tmp`` behind (the final file
    is untouched). Such a file is stale when its writer process is gone; a file from a
    live writer (a run still saving while ``evaluate`` opens its directory) is left alone.
    Names without a pid are stale after :data:`STALE_TEMP_S`. Read-only directories are
    skipped silently: cleaning is a courtesy, never a reason to fail.
    """
    paths, removed = RunPaths(run_dir), []
    for folder in (paths.root, paths.checkpoints):
        try:
            candidates = [p for p in folder.iterdir() if _TEMP_RE.match(p.name)]
        except OSError:
            continue
        for file in candidates:
            pid = _TEMP_RE.match(file.name).group(1)
            try:
                stale = (not _writer_alive(int(pid)) if pid is not None
                         else time.time() - file.stat().st_mtime > STALE_TEMP_S)
                if stale:
                    file.unlink()
                    removed.append(file)
            except OSError:
                continue
    return removed


def save_checkpoint(run_dir: str | Path, payload: dict, step: int, *, keep: int = 3,
                    score: float | None = None) -> Path:
    """Write ``payload`` as the checkpoint of ``step`` and return its path.

    Keeps the ``keep`` most recent checkpoints plus the one with the best evaluation
    ``score`` (higher is better; ``None`` means not evaluated), records both in
    ``checkpoints/index.json`` and points ``RUN_DIR/model.pt`` at this one. Raises
    :class:`CheckpointError`, writing nothing, when the model's parameters hold NaN or inf.
    """
    if keep < 1:
        raise ValueError(f"keep must be at least 1, got {keep}")
    if bad := non_finite_entries(payload["model"]):
        raise CheckpointError(f"refused to save the checkpoint of step {int(step):,}: its parameters are not "
                              f"finite ({describe_entries(bad)}); the run's earlier checkpoints are kept")
    paths = RunPaths(run_dir)
    ckpt_dir = paths.checkpoints
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(paths.root)
    plain = seal(to_plain(payload))  # the digest that load_checkpoint checks (rtrl_rl.run.digest)
    path = paths.checkpoint(step)
    _atomic_write(path, lambda f: torch.save(plain, f))
    _point_latest(paths.root, path)
    index = _read_index(ckpt_dir)
    entries = [e for e in index["checkpoints"] if e["step"] != int(step)]
    entries.append({"file": path.name, "step": int(step), "score": _score(score)})
    best = index.get("best")
    if best and best["file"] == path.name:
        best = None  # that file was just overwritten: its old score no longer applies
    index = _retain(entries, keep, best, path.name)
    _write_index(ckpt_dir, index)
    _prune(ckpt_dir, {e["file"] for e in index["checkpoints"]})
    return path


def _score(score: float | None) -> float | None:
    """A comparable score: NaN (a failed evaluation) counts as not evaluated."""
    return None if score is None or math.isnan(float(score)) else float(score)


def _retain(entries: list[dict], keep: int, best: dict | None, latest: str) -> dict:
    """Choose the kept entries: the last ``keep`` by step plus the best by score."""
    entries.sort(key=lambda e: e["step"])
    scored = [e for e in entries if e["score"] is not None]
    if best is not None and not any(e["file"] == best["file"] for e in entries):
        best = None  # its file is gone (index rebuilt or pruned by hand)
    for e in scored:
        if best is None or e["score"] > best["score"]:
            best = dict(e)
    kept = entries[-keep:]
    if best is not None and best["file"] not in {e["file"] for e in kept}:
        kept = sorted(kept + [e for e in entries if e["file"] == best["file"]], key=lambda e: e["step"])
    return {"format_version": FORMAT_VERSION, "latest": latest, "best": best, "checkpoints": kept}


def _prune(ckpt_dir: Path, kept: set[str]) -> None:
    for file in ckpt_dir.iterdir():
        if CHECKPOINT_RE.match(file.name) and file.name not in kept:
            file.unlink(missing_ok=True)


def _write_index(ckpt_dir: Path, index: dict) -> None:
    text = json.dumps(index, indent=2).encode()
    _atomic_write(ckpt_dir / INDEX_NAME, lambda f: f.write(text))


def _scan(ckpt_dir: Path) -> list[dict]:
    """Index entries rebuilt from the files present (scores unknown)."""
    found = [(int(m.group(1)), p.name) for p in ckpt_dir.glob("ckpt-*.pt") if (m := CHECKPOINT_RE.match(p.name))]
    return [{"file": name, "step": step, "score": None} for step, name in sorted(found)]


def _read_index(ckpt_dir: Path) -> dict:
    """The index, or one rebuilt from the directory when it is missing or damaged."""
    try:
        index = json.loads((ckpt_dir / INDEX_NAME).read_text())
        present = {e["file"] for e in index["checkpoints"] if (ckpt_dir / e["file"]).is_file()}
        index["checkpoints"] = [e for e in index["checkpoints"] if e["file"] in present]
        known = {e["file"] for e in index["checkpoints"]}
        index["checkpoints"] += [e for e in _scan(ckpt_dir) if e["file"] not in known]
        # by step: files the index does not list (a kill before pruning, or before the
        # index was written) must not land after the newest and pass for the latest
        index["checkpoints"].sort(key=lambda e: e["step"])
        return index
    except (OSError, ValueError, KeyError, TypeError):
        entries = _scan(ckpt_dir)
        return {"latest": entries[-1]["file"] if entries else None, "best": None, "checkpoints": entries}


# --------------------------------------------------------------------------- reading


def list_checkpoints(run_dir: str | Path) -> list[dict]:
    """The kept checkpoints of a run, oldest first: ``{"file", "step", "score"}`` each."""
    ckpt_dir = RunPaths(run_dir).checkpoints
    return _read_index(ckpt_dir)["checkpoints"] if ckpt_dir.is_dir() else []


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The checkpoint with the highest step: ``RUN_DIR/model.pt`` when it is that file,
    the highest ``checkpoints/ckpt-*.pt`` otherwise, ``model.pt`` when no such file
    is left, else None.

    ``model.pt`` is re-pointed right after each new checkpoint is written, so a kill in
    between leaves it at an older step; "latest" must still mean the highest step.
    """
    paths = RunPaths(run_dir)
    model_pt = paths.latest
    entries = list_checkpoints(run_dir)
    if entries:
        newest = paths.checkpoints / entries[-1]["file"]
        try:
            return model_pt if model_pt.is_file() and os.path.samefile(model_pt, newest) else newest
        except OSError:
            return newest
    return model_pt if model_pt.is_file() else None


def best_checkpoint(run_dir: str | Path) -> Path | None:
    """The checkpoint with the highest evaluation score, or None if none was scored."""
    ckpt_dir = RunPaths(run_dir).checkpoints
    if not ckpt_dir.is_dir():
        return None
    best = _read_index(ckpt_dir).get("best")
    return ckpt_dir / best["file"] if best and (ckpt_dir / best["file"]).is_file() else None


def resolve_checkpoint(path_or_run_dir: str | Path) -> Path:
    """The file that ``path_or_run_dir`` names: itself if a file, else the run's latest."""
    path = Path(path_or_run_dir)
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}: the path does not exist")
    if path.is_file():
        return path
    clean_stale_temps(path.parent if path.name == CHECKPOINT_DIR else path)
    if path.name == CHECKPOINT_DIR and (found := latest_checkpoint(path.parent)):
        return found
    found = latest_checkpoint(path)
    if found is None:
        raise CheckpointError(f"{path} holds no checkpoint (looked for {LATEST_NAME} and "
                              f"{CHECKPOINT_DIR}/ckpt-*.pt); is it a run directory?")
    return found


#: what torch's restricted unpickler says when a pickle names a global (a callable)
_GLOBAL_RE = re.compile(r"GLOBAL (\S+?)(?:\s|$| was| whose)")


def _one_line(text: str) -> str:
    """``text`` on one line, without torch's advice to switch the restricted loader off
    (a user with a refused file must not be told to run it unrestricted)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    sentences = re.split(r"(?<=[.:])\s+|\n+", text)
    keep = [s.strip() for s in sentences
            if s.strip() and not re.search(r"weights_only|safe_globals|file an issue|trust|documentation", s)]
    return " ".join(keep)[:300] or "no detail"


def _safe_load(path: Path) -> Any:
    """``torch.load`` restricted to tensors and plain data, with errors made readable.

    Two outcomes besides success, each a one-line :class:`CheckpointError`: the file
    names a global (a function or class: the way a malicious pickle runs code), refused
    as such, whether torch's loader named it or, for a raw pickle of protocol 4 or 5 that
    the loader stops parsing first, :func:`rtrl_rl.run.pickle_scan.named_globals` found it;
    or it is unreadable (:class:`UnreadableCheckpoint`: truncated, corrupted, not a torch
    file, or a pickle of plain data, which rtrl-rl never writes).
    """
    try:
        with warnings.catch_warnings():  # torch's note on the protocol of a raw pickle: the error says it
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = _GLOBAL_RE.search(str(err))
        named = [found.group(1)] if found else named_globals(path)
        if named:
            raise CheckpointError(
                f"refused to load {path}: it would run code when loaded (it names {named[0]}, "
                "and a checkpoint holds only tensors and plain data); nothing from it was executed. "
                "Use checkpoints written by rtrl-rl, from a source you trust") from None
        raise UnreadableCheckpoint(f"cannot read {path}: corrupted, truncated or not a checkpoint "
                                   f"({_one_line(str(err))}); nothing from it was executed") from None
    except Exception as err:  # torch raises RuntimeError, EOFError, zipfile errors, ... here
        raise UnreadableCheckpoint(f"cannot read {path}: corrupted, truncated or not a checkpoint "
                                   f"({type(err).__name__}: {_one_line(str(err))})") from None


def _validate(payload: Any, path: Path) -> None:
    """Refuse files that are not our checkpoints or that use another format version."""
    problem = digest_problem(payload) if isinstance(payload, dict) else None
    if problem:  # first: a damaged marker or version must read as damage, not as a foreign file
        raise UnreadableCheckpoint(f"{path} is corrupted: {problem}; nothing from it is used "
                                   "(use another checkpoint of the run, see docs/checkpoints.md)")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{path} is not an rtrl-rl checkpoint (no '{FORMAT_NAME}' marker)")
    version = payload.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CheckpointError(f"{path} has an invalid format version {version!r}")
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{path} has checkpoint format {version}, written by a newer rtrl-rl "
                              f"({payload.get('versions', {}).get('rtrl_rl', '?')}); this version "
                              f"reads format {FORMAT_VERSION} or older: upgrade rtrl-rl")
    missing = [key for key in REQUIRED_KEYS if key not in payload]
    if missing:
        raise CheckpointError(f"{path} is an incomplete checkpoint: missing {missing}")
    if isinstance(payload["model"], dict) and (bad := non_finite_entries(payload["model"])):
        raise CheckpointError(f"{path} holds parameters that are not finite ({describe_entries(bad)}): the run "
                              "had diverged when it was saved, so it can be neither evaluated nor resumed; "
                              f"pass an earlier checkpoint of the run ({CHECKPOINT_DIR}/ckpt-*.pt)")


def load_checkpoint(path_or_run_dir: str | Path) -> dict:
    """Load a checkpoint safely onto the CPU: a file, or a run directory (its latest).

    Never executes code from the file. Raises :class:`CheckpointError` for a missing path,
    a file that is not a checkpoint, a newer format, or parameters that hold NaN or inf;
    :class:`UnreadableCheckpoint` (a CheckpointError) for a truncated or corrupted file,
    corrupted including contents that no longer match the sha256 digest saved in the file
    (``rtrl_rl.run.digest``; files written before digests existed have none and load unchecked).
    The returned dict has the layout of :func:`make_payload`; :func:`resolve_checkpoint`
    tells which file a run directory stands for.
    """
    path = resolve_checkpoint(path_or_run_dir)
    payload = _safe_load(path)
    _validate(payload, path)
    return payload
