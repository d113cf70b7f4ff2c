"""Running a grid's cells: each in a fresh process, ``jobs`` at a time, one torch thread each.

:func:`run_grid` hands every result to a callback as soon as it arrives (the experiment
saves its JSON there), so an interrupted grid keeps what it measured. :func:`train_cell`
is the cell of most experiments: one plain ``rtrl-rl train`` run with the spec's
overrides (over its ``config``, a ready config, where it names one), its figures and its greedy evaluations.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection as mp_connection
import os
import signal
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable

#: what a training cell keeps of the run's summary, and of each of its greedy evaluations
SUMMARY_KEYS = ("steps", "wall_s", "sps", "success_rate", "mean_return", "stopped")
EVALUATION_KEYS = ("step", "wall_s", "success_rate", "mean_return")


def train_command(overrides: list[str], config: str | None = None) -> str:
    """The shell command that repeats one run (its run directory aside); ``config``: a ready
    config (``--config``) under the overrides."""
    return "rtrl-rl train " + (f"--config {config} " if config else "") + " ".join(overrides)


def cell_dir(spec: dict, work_dir: str | Path) -> Path:
    """Where the run of ``spec`` lives under the work directory."""
    name = f"{spec['task']}-L{spec.get('length')}-{spec['rule']}-s{spec['seed']}".replace(":", "-")
    return Path(work_dir) / name


def train_cell(spec: dict, work_dir: str) -> dict:
    """Train one cell in this process; return the spec's fields with its measured figures.

    Its terminal output goes to ``train.log`` in its run directory; a failure is returned
    as an ``error`` instead of raised, so one broken run cannot stop the grid. A run of the
    same config that its grid stopped before the budget (a signal, or a kill) continues from
    its last checkpoint (``resumed_at_step``); its ``wall_s`` counts every session's training
    time, its ``evaluations`` are those after the resume, and its training curve's wall times
    include the pause.
    """
    from rtrl_rl.config import load_config, resolve_config_path
    from rtrl_rl.run.session import fresh_run_dir, interrupted, interrupted_step
    from rtrl_rl.runtime import train_run

    run_dir = cell_dir(spec, work_dir)
    result = {k: spec[k] for k in ("task", "length", "rule", "seed", "family", "config") if k in spec}
    ready = spec.get("config")  # a ready config under the overrides, or the library's defaults
    result["command"] = train_command(spec["overrides"], ready)
    config, bad_config = None, None
    try:
        config = load_config(resolve_config_path(ready) if ready else None, [*spec["overrides"], f"run_dir={run_dir}"])
    except Exception as error:  # noqa: BLE001 - raised again below, inside the cell's log
        bad_config = error
    # a run of this very config that its grid stopped continues from its last checkpoint;
    # anything else in the cell's directory is replaced
    resumed = interrupted_step(run_dir, config) if config is not None and run_dir.is_dir() else None
    if resumed is None:
        fresh_run_dir(run_dir)
    else:
        result["resumed_at_step"] = resumed
    start, summary = time.perf_counter(), None
    with open(run_dir / "train.log", "a" if resumed is not None else "w") as log, \
            contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        try:
            if bad_config is not None:
                raise bad_config
            summary = train_run(config, resume_from=run_dir if resumed is not None else None)
        except Exception as error:  # noqa: BLE001 - reported in the results, never hidden
            result["error"] = failure(error)
    result["process_wall_s"] = round(time.perf_counter() - start, 2)
    if summary is not None:
        result.update({k: summary.get(k) for k in SUMMARY_KEYS})
        result["evaluations"] = [{k: e.get(k) for k in EVALUATION_KEYS} for e in summary["evaluations"]]
        if interrupted(summary):
            # a stopped run is not a measurement at the grid's budget: an error, so pages leave it
            # out and a resumed grid runs it again
            result["error"] = f"{summary['stopped']} at step {summary.get('steps')}, before the budget"
    return result


def failure(error: BaseException) -> str:
    """What a failed cell records: the exception and its message. The traceback, which names
    this machine's paths, goes to the cell's log (its stderr) instead of the results."""
    traceback.print_exc()
    return "".join(traceback.format_exception_only(error)).strip()


def run_grid(specs: list[dict], work_dir: str | Path, jobs: int = 2,
             on_result: Callable[[dict], None] | None = None,
             runner: Callable[[dict, str], dict] = train_cell) -> list[dict]:
    """Run every spec, ``jobs`` at a time, each in a fresh process; results in completion order.

    ``runner(spec, work_dir)`` (a module-level function, so spawned processes can import it)
    runs one spec. Processes are spawned (not forked) with one OpenMP thread each: forked
    torch processes can deadlock, and two-thread runs would fight over the cores the other
    run needs. A process that dies without a result gives an ``error`` result. Ctrl-C or
    SIGTERM stops the grid and kills its running processes (no orphaned run keeps the
    cores); the results handed to ``on_result`` so far stay saved.
    """
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    ctx = multiprocessing.get_context("spawn")
    pending, running, results = list(specs), {}, []
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if on_main_thread else None
    try:
        while pending or running:
            while pending and len(running) < jobs:
                spec = pending.pop(0)
                receive, send = ctx.Pipe(duplex=False)
                process = ctx.Process(target=_run_and_send, args=(runner, spec, str(work_dir), send))
                process.start()
                send.close()
                running[receive] = (process, spec)
            for ready in mp_connection.wait(list(running)):
                process, spec = running.pop(ready)
                try:
                    result = ready.recv()
                except EOFError:  # the process died before it could send a result
                    result = None
                process.join()
                if result is None:
                    result = {**spec, "error": f"the run's process died (exit code {process.exitcode})"}
                results.append(result)
                if on_result is not None:
                    on_result(result)
    finally:
        for process, _ in running.values():
            process.kill()
            process.join()
        if on_main_thread:
            signal.signal(signal.SIGTERM, previous)
    return results


def _run_and_send(runner: Callable[[dict, str], dict], spec: dict, work_dir: str, send: Any) -> None:
    """One cell in its own process: the result goes back through ``send``."""
    send.send(runner(spec, work_dir))
    send.close()


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM as Ctrl-C: unwinds ``run_grid``, which kills the running processes."""
    raise KeyboardInterrupt(f"signal {signum}")
