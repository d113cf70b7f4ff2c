"""Small finished training runs for the tests that read, damage or resume them.

A module fixture trains one with :func:`train_small` (seconds on a CPU); each test works
on its own :func:`copy_run` of it, so damage never leaks from one test to the next.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from rtrl_rl.config import load_config
from rtrl_rl.training.sync_trainer import train

#: no terminal progress, no TensorBoard files, no evaluation
QUIET = ["log.progress=false", "log.tensorboard=false", "log.eval_episodes=0"]


def train_small(run_dir: Path, *overrides: str) -> Path:
    """Train the run that ``overrides`` describe (quietly) into ``run_dir``; return it."""
    train(load_config(None, [*QUIET, *overrides, f"run_dir={run_dir}"]))
    return run_dir


def copy_run(run_dir: Path, target: Path) -> Path:
    """A copy of ``run_dir`` at ``target``. Its ``model.pt`` is a copy too, no longer a hard
    link to the newest checkpoint file: damage both where a test means the newest."""
    shutil.copytree(run_dir, target)
    return target
