"""The cost measurements (``rtrl-rl bench cores`` / ``bench runtime``) and the reference figures.

The benchmarks run as subprocesses, exactly as a user would type them, and their JSON is
kept verbatim. A benchmark that is missing, fails or times out is recorded as such, so the
report can say which row is missing and why instead of leaving it out silently.

The ``REFERENCE_*`` constants are NOT measurements of this project: they are the figures
quoted from the developers' notes (the reference implementation of Irie et al.,
ICLR 2024, measured on one H200; the developers' prototype on one CPU thread; figures
published by others). The report prints them under that label, beside our own measurements.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

SOURCE = "the developers' notes"

#: ms per learner segment, eLSTM d = 257, float32, one H200 (the developers' notes)
REFERENCE_SEGMENT = [
    {"n": 256, "B": 32, "T": 50, "per_step_rtrl": 110.0, "tbptt_autograd": 30.0, "cudnn_lstm": 3.9, "segment_cuda_graph": 1.7},
    {"n": 512, "B": 32, "T": 100, "per_step_rtrl": 207.0, "tbptt_autograd": 59.0, "cudnn_lstm": 6.2, "segment_cuda_graph": 4.4},
    {"n": 512, "B": 256, "T": 50, "per_step_rtrl": 107.0, "tbptt_autograd": 30.0, "cudnn_lstm": 5.5, "segment_cuda_graph": 4.0},
]

#: ms per acting step of the reference, with and without sensitivities (the developers' notes)
REFERENCE_ACTING = [
    {"where": "GPU", "B": 256, "n": None, "with_sensitivities": 1.2, "without": 0.5},
    {"where": "2 CPU threads", "B": 48, "n": 512, "with_sensitivities": 74.0, "without": 1.0},
]

#: the design prototype on one CPU thread, eLSTM n = d = 256, B = 16, T = 50, ms per step
REFERENCE_CPU_PROTOTYPE = {"n": 256, "d": 256, "B": 16, "T": 50, "forward_ms_per_step": 0.36,
                           "segment_rtrl_extra_ms_per_step": 0.55, "per_step_rtrl_ms_per_step": 3.1,
                           "source": "the developers' notes"}

#: end-to-end throughput figures quoted from the developers' notes (steps/s)
REFERENCE_THROUGHPUT = [
    {"what": "design prototype, recall task, whole loop, one thread, eLSTM n=64", "steps_per_s": 90_000},
    {"what": "CleanRL ppo_atari_lstm (Atari)", "steps_per_s": 525},
    {"what": "ale-py raw ALE/Pong-v5, random actions, this 2-vCPU machine", "steps_per_s": 1_900},
    {"what": "ale-py vector env, Pong, 16 envs, random actions, the lent H200 box", "steps_per_s": 18_700},
    {"what": "same with a batched IMPALA-CNN forward on the GPU, 16 envs (no learning)", "steps_per_s": 8_700},
]


def reference() -> dict:
    """All reference figures as plain data, labelled with their source."""
    return {"source": SOURCE, "segment_d": 257, "segment_ms": REFERENCE_SEGMENT, "acting_ms": REFERENCE_ACTING,
            "cpu_prototype": REFERENCE_CPU_PROTOTYPE, "throughput": REFERENCE_THROUGHPUT}


def benchmarks(quick: bool) -> list[tuple[str, str, list[str]]]:
    """(key, ``rtrl-rl bench`` target, its arguments) of each cost measurement.

    The runtime benchmark runs twice: on Pong (its default) and on the default memory
    task with its 128 streams. Quick mode times one shorter round of each mode.
    """
    short = ["--rounds", "1", "--seconds", "10"] if quick else []
    return [("cores", "cores", []), ("runtime_pong", "runtime", short),
            ("runtime_memory", "runtime", ["--config", "default", "--num-envs", "128", *short])]


def run_bench(target: str, args: list[str], json_path: Path, timeout_s: float) -> dict:
    """Run ``rtrl-rl bench <target> <args> --json <json_path>``; return what happened.

    The result holds the command, its wall time, its exit code and, on success, the
    benchmark's JSON (``data``); otherwise ``error`` says why the row is missing.
    """
    shown = ["rtrl-rl", "bench", target, *args, "--json", json_path.name]
    argv = [sys.executable, "-m", "rtrl_rl", "bench", target, *args, "--json", str(json_path)]
    record: dict = {"target": target, "command": " ".join(shown)}
    json_path.unlink(missing_ok=True)
    start = time.perf_counter()
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        record.update(wall_s=round(time.perf_counter() - start, 1), error=f"timed out after {timeout_s:.0f} s")
        return record
    record.update(wall_s=round(time.perf_counter() - start, 1), returncode=proc.returncode)
    if proc.returncode == 0 and json_path.is_file():
        record["data"] = json.loads(json_path.read_text())
    else:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
        record["error"] = f"exit code {proc.returncode}: " + " / ".join(tail)
    return record
