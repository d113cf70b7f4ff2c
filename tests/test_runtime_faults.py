"""Faults of the actor-learner runtime, through the real command line.

Each test runs ``python -m rtrl_rl train`` with 2 actors as a subprocess in its own
session, records every descendant process it sees while the run is alive, and checks
after the exit: the exit code, the message in the log, a final checkpoint that loads,
and that no process of the run is left behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from rtrl_rl.checkpoint import load_checkpoint

ASSET = Path(__file__).parent / "assets" / "runtime_envs.py"
ROOT = Path(__file__).parent.parent


def train_args(run_dir: Path, *overrides: str) -> list[str]:
    """A long counter-env run with 2 actors that checkpoints often; no evaluation."""
    return [
        sys.executable, "-m", "rtrl_rl", "train",
        f"env.id={ASSET}:CounterEnv", "env.num_envs=4", "env.options={workers: 0}",
        "agent.hidden_size=8", "agent.encoder_size=8", "train.segment_length=5",
        "train.total_steps=100000000", "train.target_success=0",
        "runtime.actors=2", "runtime.checkpoint_every_s=0.5",
        "log.progress=false", "log.eval_episodes=0", f"run_dir={run_dir}", *overrides,
    ]


def descendants(pid: int) -> set[int]:
    """Pids of every living descendant of ``pid``."""
    try:
        return {p.pid for p in psutil.Process(pid).children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


def alive(pids: set[int]) -> list[int]:
    """The pids among ``pids`` that still run (zombies count as gone)."""
    living = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                living.append(pid)
        except psutil.NoSuchProcess:
            pass
    return living


def run_train(args: list[str], run_dir: Path, send: signal.Signals | None = None, group: bool = False,
              timeout: float = 60.0) -> tuple[int, str, set[int]]:
    """Run ``args``; once a checkpoint exists send ``send`` (to the process group if ``group``).

    Returns (exit code, stderr, every descendant pid seen while it ran).
    """
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    seen: set[int] = set()
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            seen |= descendants(proc.pid)
            if send is not None and len(seen) >= 2 and (run_dir / "model.pt").exists():
                os.killpg(proc.pid, send) if group else proc.send_signal(send)
                send = None
            time.sleep(0.05)
        _, stderr = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode, stderr, seen


def assert_clean_end(run_dir: Path, seen: set[int], stopped: str) -> None:
    """A loadable final checkpoint at the last step, the summary, and no process left."""
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stopped"] == stopped
    assert load_checkpoint(run_dir)["step"] == summary["steps"] > 0
    assert seen, "no actor process was ever seen"
    time.sleep(0.2)
    assert alive(seen) == [], "processes left behind"


@pytest.mark.parametrize("sig, group", [(signal.SIGINT, True), (signal.SIGTERM, False)])
def test_signal_writes_a_final_checkpoint_and_exits_cleanly(tmp_path, sig, group):
    # SIGINT goes to the whole process group, as a Ctrl-C in a terminal does.
    run_dir = tmp_path / "run"
    code, stderr, seen = run_train(train_args(run_dir), run_dir, send=sig, group=group)
    assert code == 130, stderr
    assert "Traceback" not in stderr, stderr
    assert_clean_end(run_dir, seen, f"interrupted ({sig.name})")


def test_actor_crash_stops_the_run_with_its_traceback(tmp_path):
    run_dir = tmp_path / "run"
    code, stderr, seen = run_train(train_args(run_dir, "env.options={workers: 0, crash_at: 40}"), run_dir)
    assert code == 1, stderr
    assert "RuntimeError: CounterEnv crashed on purpose" in stderr and "Traceback" in stderr
    assert "died: exit code 1" in stderr and "pool.segments[slot]" in stderr  # verbatim, not markup
    assert_clean_end(run_dir, seen, "interrupted (actor failure)")
