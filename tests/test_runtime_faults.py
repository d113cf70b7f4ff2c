"""Faults of the actor-learner runtime, mostly through the real command line.

Those tests run ``python -m rtrl_rl train`` with 2 actors as a subprocess in its own
session, record every descendant process they see while the run is alive, and check
after the exit: the exit code, the message in the log, a final checkpoint that loads,
and that no process of the run is left behind. The hung-actor test runs in this process.
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

from rtrl_rl.config import load_config
from rtrl_rl.run.checkpoint import load_checkpoint
from rtrl_rl.runtime import ActorFailure, local_backend

ASSET = Path(__file__).parent / "assets" / "runtime_envs.py"
ROOT = Path(__file__).parent.parent


def overrides(run_dir: Path, *more: str) -> list[str]:
    """A long counter-env run with 2 actors that checkpoints often; no evaluation."""
    return [
        f"env.id={ASSET}:CounterEnv", "env.num_envs=4", "env.options={workers: 0}",
        "agent.hidden_size=8", "agent.encoder_size=8", "train.segment_length=5",
        "train.total_steps=100000000", "train.target_success=0",
        "runtime.actors=2", "runtime.checkpoint_every_s=0.5",
        "log.progress=false", "log.eval_episodes=0", f"run_dir={run_dir}", *more,
    ]


def train_args(run_dir: Path, *more: str) -> list[str]:
    """The command line of :func:`overrides`."""
    return [sys.executable, "-m", "rtrl_rl", "train", *overrides(run_dir, *more)]


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


@pytest.mark.parametrize("sig, group, workers", [(signal.SIGINT, True, 0), (signal.SIGTERM, False, 1)])
def test_signal_writes_a_final_checkpoint_and_exits_cleanly(tmp_path, sig, group, workers):
    # SIGINT goes to the whole process group, as a Ctrl-C in a terminal does. With SIGTERM
    # every actor's environment runs in a worker process of its own (grandchildren).
    run_dir = tmp_path / "run"
    args = train_args(run_dir, f"env.options={{workers: {workers}}}")
    code, stderr, seen = run_train(args, run_dir, send=sig, group=group)
    assert code == 130, stderr
    assert "Traceback" not in stderr, stderr
    assert_clean_end(run_dir, seen, f"interrupted ({sig.name})")


def test_a_killed_learner_leaves_no_process_behind(tmp_path):
    # SIGKILL cannot be handled: the actors notice their parent is gone and exit, and
    # their environment workers follow.
    run_dir = tmp_path / "run"
    args = train_args(run_dir, "env.options={workers: 1}")
    code, _, seen = run_train(args, run_dir, send=signal.SIGKILL)
    assert code == -signal.SIGKILL and len(seen) >= 4
    deadline = time.monotonic() + 10
    while alive(seen) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert alive(seen) == []


def test_actor_crash_stops_the_run_with_its_exception_type_message_and_env(tmp_path):
    run_dir = tmp_path / "run"
    code, stderr, seen = run_train(train_args(run_dir, "env.options={workers: 0, crash_at: 40}"), run_dir)
    assert code == 1, stderr
    spec, said = f"{ASSET}:CounterEnv", "CounterEnv crashed on purpose (runtime fault test)"
    headline = f"failed in env {spec}: RuntimeError: {said} (exit code 1)"
    assert headline in stderr and "Traceback" in stderr, stderr
    assert "pool.segments[slot]" in stderr  # the traceback verbatim, not read as markup
    stopped = next(line for line in stderr.splitlines() if line.startswith("rtrl-rl train: stopped:"))
    assert headline in stopped, stopped  # the last line names the exception too, not only the exit code
    assert_clean_end(run_dir, seen, "interrupted (actor failure)")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert headline in summary["error"] and summary["error"].startswith("ActorFailure: actor ")
    failure = summary["failure"]
    assert failure["type"] == "RuntimeError" and failure["message"] == said and failure["env"] == spec
    assert failure["ended"] == "exit code 1" and failure["generation"] == 0 and failure["actor"] in (0, 1)


@pytest.mark.parametrize("unreachable, message", [
    (False, "runtime.step_timeout_s"),  # the actor's own timer ends the step and reports it
    (True, "killed by SIGKILL"),  # the timer cannot fire: the learner kills the silent actor
])
def test_a_hung_actor_stops_the_run(tmp_path, unreachable, message):
    # In this process, with runtime.step_timeout_s cut from 120 s to 0.5 s: the learner's
    # silence limit is then 0.5 s x (5 steps + 1) = 3 s.
    run_dir = tmp_path / "run"
    config = load_config(None, overrides(run_dir, "runtime.step_timeout_s=0.5",
                                         f"env.options={{workers: 0, hang_at: 30, unreachable: {unreachable}}}"))
    started = time.monotonic()
    with pytest.raises(ActorFailure, match=message):
        local_backend.train_with_actors(config)
    assert time.monotonic() - started < 60
    assert json.loads((run_dir / "summary.json").read_text())["stopped"] == "interrupted (actor failure)"
    actors = [p for p in psutil.Process().children(recursive=True) if "spawn_main" in " ".join(p.cmdline())]
    assert actors == []


def test_slow_steps_within_the_timeout_are_no_hang(tmp_path):
    # 0.2 s per step of each env (2 envs per actor: 0.4 s per vector step) against a 1 s timeout.
    run_dir = tmp_path / "run"
    config = load_config(None, overrides(run_dir, "runtime.step_timeout_s=1", "train.total_steps=40",
                                         "env.options={workers: 0, step_s: 0.2}"))
    assert local_backend.train_with_actors(config)["stopped"] == "budget"
