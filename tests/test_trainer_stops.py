"""How the synchronous trainer stops: signals, a raising or hung env, an error inside an
update, and run directories left without a checkpoint.

The signal tests run ``python -m rtrl_rl train`` as a subprocess (a signal handler is
per process); the others call the command line in this process.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rtrl_rl.agents import Learner
from rtrl_rl.cli import main
from rtrl_rl.config import load_config, save_config
from rtrl_rl.run.checkpoint import list_checkpoints, load_checkpoint

ROOT = Path(__file__).parent.parent
ENV = f"{Path(__file__).parent / 'assets' / 'runtime_envs.py'}:CounterEnv"


def args(run_dir: Path, *more: str) -> list[str]:
    """A long synchronous counter-env run that checkpoints often; no evaluation."""
    return [
        f"env.id={ENV}", "env.num_envs=4", "agent.hidden_size=8", "agent.encoder_size=8",
        "train.segment_length=5", "train.total_steps=100000000", "train.target_success=0",
        "runtime.checkpoint_every_s=0.5", "log.progress=false", "log.tensorboard=false",
        "log.eval_episodes=0", f"run_dir={run_dir}", *more,
    ]


def summary_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def assert_final_checkpoint(run_dir: Path) -> dict:
    """The final checkpoint loads and holds the summary's step; returns the summary."""
    summary = summary_of(run_dir)
    assert load_checkpoint(run_dir)["step"] == summary["steps"] > 0
    return summary


def run_until_checkpoint(argv: list[str], run_dir: Path, signals: list[signal.Signals], gap_s: float = 0.03,
                         timeout: float = 90.0) -> tuple[int, str]:
    """Run ``argv``; once a checkpoint exists send ``signals``, ``gap_s`` apart. (exit code, stderr)."""
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    try:
        while signals and proc.poll() is None and time.monotonic() < deadline:
            if (run_dir / "model.pt").exists():
                for k, sig in enumerate(signals):
                    time.sleep(gap_s if k else 0)
                    proc.send_signal(sig)
                signals = []
            time.sleep(0.02)
        _, stderr = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, stderr


@pytest.mark.parametrize("signals", [[signal.SIGINT, signal.SIGINT], [signal.SIGTERM]])
def test_signals_end_with_a_whole_final_checkpoint(tmp_path, signals):
    # Two Ctrl-Cs 30 ms apart: the second lands while the run stops and saves.
    run_dir = tmp_path / "run"
    code, stderr = run_until_checkpoint([sys.executable, "-m", "rtrl_rl", "train", *args(run_dir)], run_dir, signals)
    assert code == 130, stderr
    assert "Traceback" not in stderr, stderr
    assert assert_final_checkpoint(run_dir)["stopped"] == f"interrupted ({signals[0].name})"


def test_a_signal_inside_the_final_save_changes_nothing(tmp_path):
    # Every torch.save sends this process a SIGINT as it starts writing: the first
    # (periodic) one stops the run, the second lands inside the final checkpoint's write.
    run_dir = tmp_path / "run"
    driver = Path(__file__).parent / "assets" / "signal_in_save.py"
    proc = subprocess.run([sys.executable, str(driver), *args(run_dir)], cwd=ROOT, capture_output=True,
                          text=True, timeout=90)
    assert proc.returncode == 130, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    summary = assert_final_checkpoint(run_dir)
    assert summary["stopped"] == "interrupted (SIGINT)"
    assert proc.stdout.count("torch.save with a SIGINT") == 2  # the periodic save and the final one


def test_an_env_that_raises_gets_a_final_checkpoint_and_a_summary(tmp_path, capsys):
    # Every env raises in its 40th step: after 7 segments of 5 steps, in the 8th.
    run_dir = tmp_path / "run"
    code = main(["train", *args(run_dir, "env.options={workers: 0, crash_at: 40}", "runtime.checkpoint_every_s=1e6")])
    err = capsys.readouterr().err
    assert code == 1
    assert "Traceback" in err and "RuntimeError: CounterEnv crashed on purpose" in err
    assert "stopped: CounterEnv crashed on purpose" in err and "(final checkpoint at step 140;" in err
    summary = assert_final_checkpoint(run_dir)
    assert summary["steps"] == 140 and summary["final_checkpoint"] == 140
    assert summary["stopped"] == "error (RuntimeError: CounterEnv crashed on purpose (runtime fault test))"
    # the run goes on from there (naming the entry point its stored config imports: rtrl_rl.run.trust)
    assert main(["train", "--resume", str(run_dir), f"env.id={ENV}", "env.options={crash_at: 0}",
                 "train.total_steps=200"]) == 0
    assert summary_of(run_dir)["steps"] == 200


@pytest.mark.parametrize("workers", [0, 1])
def test_a_hung_env_stops_the_run_with_a_message_and_a_checkpoint(tmp_path, capsys, workers):
    # In-process (workers 0) the step itself is interrupted; with a worker process the
    # parent's wait for its answer is.
    run_dir = tmp_path / "run"
    started = time.monotonic()
    code = main(["train", *args(run_dir, f"env.options={{workers: {workers}, hang_at: 12}}",
                                "runtime.step_timeout_s=0.5", "runtime.checkpoint_every_s=1e6")])
    err = capsys.readouterr().err
    assert code == 1 and time.monotonic() - started < 60
    assert "did not return within 0.5 s (runtime.step_timeout_s)" in err and "Traceback" not in err
    summary = assert_final_checkpoint(run_dir)
    assert summary["stopped"] == "env hang" and summary["steps"] == 40


def test_an_error_inside_an_update_keeps_the_last_consistent_checkpoint(tmp_path, monkeypatch, capsys):
    # The third update steps the optimizer, then fails before the run counts it: the
    # parameters are one update ahead of the counters, so no final checkpoint is written.
    real, calls = Learner.update, []

    def failing_update(self, segment, stream_ids):
        metrics = real(self, segment, stream_ids)
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("failed after the optimizer step")
        return metrics

    monkeypatch.setattr(Learner, "update", failing_update)
    run_dir = tmp_path / "run"
    assert main(["train", *args(run_dir, "env.options={workers: 0}", "runtime.checkpoint_every_s=0")]) == 1
    assert "no final checkpoint" in capsys.readouterr().err
    summary = summary_of(run_dir)
    assert summary["final_checkpoint"] is None and summary["steps"] == 2 * 20
    saved = load_checkpoint(run_dir)
    assert (saved["step"], saved["update"], saved["learner"]["updates"]) == (40, 2, 2)


def test_a_run_without_a_checkpoint_is_restarted_or_overwritten_on_request(tmp_path, capsys):
    run_dir = tmp_path / "run"
    small = args(run_dir, "env.options={workers: 0}", "train.total_steps=40")
    config = load_config(None, small)
    run_dir.mkdir()
    save_config(config, run_dir / "config.yaml")  # as a run killed before its first checkpoint leaves it
    assert main(["train", *small]) == 2
    refusal = capsys.readouterr().err
    assert "--resume" in refusal and "--overwrite" in refusal
    # --resume starts it again from step 0 with the stored config (and the overrides); the
    # stored config names a test env by its file, which only a trusted run dir may import
    assert main(["train", "--resume", str(run_dir), "train.total_steps=60", "log.progress=false"]) == 2
    assert "--trust-config" in capsys.readouterr().err
    assert main(["train", "--resume", str(run_dir), "--trust-config", "train.total_steps=60",
                 "log.progress=false"]) == 0
    assert "holds a config but no checkpoint" in capsys.readouterr().err
    assert summary_of(run_dir)["steps"] == 60
    # --overwrite deletes a run, but only once the new config is known to be valid
    assert main(["train", "--overwrite", *small, "train.segment_length=0"]) == 2
    assert load_checkpoint(run_dir)["step"] == 60
    assert main(["train", "--overwrite", *small]) == 0
    assert "deleted the earlier run" in capsys.readouterr().err
    assert summary_of(run_dir)["steps"] == 40 and [c["step"] for c in list_checkpoints(run_dir)] == [40]
    assert main(["train", "--overwrite", "--resume", str(run_dir)]) == 2
