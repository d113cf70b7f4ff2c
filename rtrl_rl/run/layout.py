"""The layout of a run directory: every file a run writes, named in one place.

::

    RUN_DIR/config.yaml                      the resolved config (written when the run starts)
    RUN_DIR/summary.json                     the run's figures and why it stopped (at the end)
    RUN_DIR/model.pt                         the latest checkpoint (a hard link or a copy)
    RUN_DIR/checkpoints/ckpt-000001234.pt    one file per saved step
    RUN_DIR/checkpoints/index.json           latest, best and every kept file with its score
    RUN_DIR/events.out.tfevents.*            TensorBoard events (the run directory is the log directory)

Everything that reads or writes these (the session, checkpoints, resume, the commands,
the experiment runners) asks a :class:`RunPaths` for them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

CONFIG_NAME = "config.yaml"
SUMMARY_NAME = "summary.json"
LATEST_NAME = "model.pt"
CHECKPOINT_DIR = "checkpoints"
INDEX_NAME = "index.json"
EVENTS_GLOB = "events.out.tfevents.*"
#: a checkpoint file in ``checkpoints/``: the step, zero-padded so that names sort by step
CHECKPOINT_RE = re.compile(r"^ckpt-(\d+)\.pt$")


def checkpoint_name(step: int) -> str:
    """File name of the checkpoint at ``step`` (``ckpt-000001234.pt``)."""
    return f"ckpt-{int(step):09d}.pt"


@dataclass(frozen=True)
class RunPaths:
    """The paths of the run directory ``root`` (nothing is created or checked)."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))  # a str is welcome too

    @property
    def config(self) -> Path:
        """``config.yaml``: the resolved config the run started with."""
        return self.root / CONFIG_NAME

    @property
    def summary(self) -> Path:
        """``summary.json``: the run's figures and its stop reason."""
        return self.root / SUMMARY_NAME

    @property
    def latest(self) -> Path:
        """``model.pt``: the latest checkpoint, the file ``rtrl-rl evaluate RUN_DIR`` opens."""
        return self.root / LATEST_NAME

    @property
    def checkpoints(self) -> Path:
        """``checkpoints/``: one file per kept step and the index."""
        return self.root / CHECKPOINT_DIR

    @property
    def index(self) -> Path:
        """``checkpoints/index.json``: latest, best and every kept file with its score."""
        return self.checkpoints / INDEX_NAME

    @property
    def tensorboard(self) -> Path:
        """Where the TensorBoard events go: the run directory itself."""
        return self.root

    def checkpoint(self, step: int) -> Path:
        """The checkpoint file of ``step``."""
        return self.checkpoints / checkpoint_name(step)

    def events(self) -> list[Path]:
        """The TensorBoard event files present, sorted by name."""
        return sorted(self.tensorboard.glob(EVENTS_GLOB))

    def written(self) -> list[Path]:
        """What an earlier run left here: its config, summary, latest checkpoint, checkpoint
        folder and event files (empty: the directory holds no run)."""
        own = [self.config, self.summary, self.latest, self.checkpoints]
        return [path for path in own if path.exists()] + self.events()


def run_dir_of(path: str | Path) -> Path | None:
    """The run directory that ``path`` belongs to: a directory is one itself,
    ``RUN/checkpoints/ckpt-N.pt`` and ``RUN/model.pt`` belong to ``RUN``; None for a
    checkpoint file elsewhere."""
    path = Path(path)
    if path.is_dir():
        return path
    if path.parent.name == CHECKPOINT_DIR and CHECKPOINT_RE.match(path.name):
        return path.parent.parent
    return path.parent if path.name == LATEST_NAME else None
