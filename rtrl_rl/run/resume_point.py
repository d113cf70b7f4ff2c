"""Which checkpoint ``rtrl-rl train --resume PATH`` continues from, and in which run.

PATH is a run directory or a checkpoint file (see ``docs/checkpoints.md``, "Resume"):

- A run directory: its newest checkpoint. When that file is damaged (truncated, or its
  contents no longer match its digest), the newest older checkpoint that can be read is
  used instead, and the caller warns, naming both files. Refusals other than damage (a
  newer format, a pickle that would run code) stop the resume as they always did.
- A checkpoint file of a run (``RUN/checkpoints/ckpt-N.pt``, ``RUN/model.pt``): that file,
  continued in ``RUN``. A run that holds usable checkpoints of later steps is refused
  (see :func:`refuse_mixing`): continuing from step N there would mix two continuations.
  Later ones that cannot be used (damaged, or holding non-finite parameters) are set aside.
- Any other checkpoint file: continued in the run directory that ``run_dir=...`` names.

Damaged checkpoints newer than the one resumed from are set aside (renamed
``*.unreadable``, never deleted) once training in their run is decided, so that "latest",
retention and ``evaluate RUN`` see the continued run only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from rtrl_rl.run.checkpoint import (
    CheckpointError, UnreadableCheckpoint, list_checkpoints, load_checkpoint, resolve_checkpoint,
)
from rtrl_rl.config import ConfigError
from rtrl_rl.run.layout import RunPaths, run_dir_of

#: the suffix a damaged checkpoint gets when it is set aside
UNREADABLE_SUFFIX = ".unreadable"


@dataclass
class ResumePoint:
    """The checkpoint a resume continues from: its file and payload, its run (None: a file
    outside any run), the run's damaged newer files (path, why) and readable later ones."""

    checkpoint: Path
    payload: dict
    run_dir: Path | None
    unreadable: list[tuple[Path, str]] = field(default_factory=list)
    later: list[Path] = field(default_factory=list)


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _newest_first(run_dir: Path) -> list[Path]:
    """The run's checkpoint files by step, newest first; ``model.pt`` last when it is no
    hard link to one of them (a copy, or the only checkpoint left)."""
    paths = RunPaths(run_dir)
    files = [paths.checkpoints / entry["file"] for entry in reversed(list_checkpoints(run_dir))]
    model_pt = paths.latest
    if model_pt.is_file() and not any(_same(model_pt, f) for f in files):
        files.append(model_pt)
    return files


def _from_run(run_dir: Path) -> ResumePoint:
    resolve_checkpoint(run_dir)  # the usual errors for a missing path or a run without checkpoints
    unreadable: list[tuple[Path, str]] = []
    for file in _newest_first(run_dir):
        try:
            payload = load_checkpoint(file)
        except UnreadableCheckpoint as err:
            unreadable.append((file, str(err)))
            continue
        return ResumePoint(file, payload, run_dir, unreadable)
    more = (f"; no other checkpoint of {run_dir} can be read either" if len(unreadable) > 1
            else f"; {run_dir} holds no other checkpoint to resume from")
    raise UnreadableCheckpoint(unreadable[0][1] + more)


def _from_file(file: Path) -> ResumePoint:
    payload = load_checkpoint(file)
    point = ResumePoint(file, payload, run_dir_of(file))
    if point.run_dir is None:
        return point
    for entry in list_checkpoints(point.run_dir):
        other = RunPaths(point.run_dir).checkpoints / entry["file"]
        if entry["step"] <= int(payload["step"]) or _same(other, file):
            continue
        try:
            load_checkpoint(other)
            point.later.append(other)
        except CheckpointError as err:  # damaged, or refused (non-finite parameters): no continuation
            point.unreadable.append((other, str(err)))
    return point


def find_resume_point(path: str | Path) -> ResumePoint:
    """The checkpoint that ``--resume path`` continues from (see the module docstring).

    Raises :class:`rtrl_rl.run.checkpoint.CheckpointError` when there is none that can be read.
    """
    path = Path(path)
    return _from_file(path) if path.is_file() else _from_run(path)


def refuse_mixing(point: ResumePoint) -> Path:
    """The run directory that ``point`` continues in when no ``run_dir=`` is given, or
    ConfigError (exit 2) saying what to pass: for a file outside any run, and for a run
    that holds readable checkpoints of later steps than ``point``'s."""
    file, step = point.checkpoint, int(point.payload["step"])
    if point.run_dir is None:
        raise ConfigError(f"{file} is not a checkpoint of a run directory (RUN/checkpoints/ckpt-N.pt or "
                          f"RUN/model.pt): add run_dir=NEW_DIR to continue it in a new run, or pass "
                          f"--resume RUN_DIR")
    if point.later:
        shown = ", ".join(p.name for p in point.later[:3]) + (", ..." if len(point.later) > 3 else "")
        raise ConfigError(f"{file} (step {step:,}) is not the latest checkpoint of {point.run_dir}, which also "
                          f"holds {shown}; continuing from step {step:,} there would mix two continuations of "
                          f"the run. Pass --resume {point.run_dir} to continue from its latest checkpoint, or "
                          f"add run_dir=NEW_DIR to continue from step {step:,} in a new run")
    return point.run_dir


def _free_name(path: Path) -> Path:
    target, n = path.with_name(path.name + UNREADABLE_SUFFIX), 1
    while target.exists():
        target, n = path.with_name(f"{path.name}{UNREADABLE_SUFFIX}.{n}"), n + 1
    return target


def settle(point: ResumePoint, in_place: bool) -> list[str]:
    """Warnings for the damaged checkpoints that ``point`` passed over, each naming both files;
    with ``in_place`` (training goes on in ``point.run_dir``) they are set aside first."""
    notes = []
    for file, why in point.unreadable:
        kept = ""
        if in_place:
            target = _free_name(file)
            os.replace(file, target)
            kept = f"; it is kept as {target}"
        notes.append(f"{why}; resuming from {point.checkpoint} (step {int(point.payload['step']):,}), "
                     f"the newest checkpoint that can be read{kept}")
    return notes
