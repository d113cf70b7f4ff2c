"""The memory experiment: which learning rules carry a cue across more steps than a segment?

A grid of (task, length L, learning rule, seed) runs, each a plain synchronous training run
(``rtrl_rl.trainer.train``) with the same frame budget, no early stop and periodic greedy
evaluations (the learning curve). Runs go to a pool of worker processes, one torch thread
each, so a 2-core machine runs two at a time. Every finished run is appended to the
results JSON at once, so an interrupted grid keeps what it measured.
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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

SEGMENT_LENGTH = 10  # T of every run: lengths L below and above it are the point of the grid


@dataclass(frozen=True)
class Task:
    """A memory task: its env spec, the option that sets L, fixed options, chance success."""

    env_id: str
    length_option: str
    options: dict
    chance: float
    what: str


TASKS: dict[str, Task] = {
    "recall-distractors": Task("memory:recall", "delay", {"num_symbols": 4, "distractors": True}, 1 / 4,
                               "recall of one of K symbols after L delay steps that show random symbols"),
    "recall-blank": Task("memory:recall", "delay", {"num_symbols": 4, "distractors": False}, 1 / 4,
                         "the same recall task with blank (all-zero) delay steps"),
    "tmaze": Task("memory:tmaze", "length", {}, 1 / 2,
                  "Bakker's T-maze: the cue is shown at the start of a corridor of length L"),
}

#: rule -> (label, overrides); core=none needs learning=none, core=lstm needs tbptt
RULES: dict[str, tuple[str, list[str]]] = {
    "rtrl-elstm": ("RTRL eLSTM", ["agent.core=elstm", "agent.learning=rtrl"]),
    "rtrl-mingru": ("RTRL minGRU", ["agent.core=mingru", "agent.learning=rtrl"]),
    "rtrl-lru": ("RTRL LRU", ["agent.core=lru", "agent.learning=rtrl"]),
    "rtrl-rtu": ("RTRL RTU", ["agent.core=rtu", "agent.learning=rtrl"]),
    "rtrl-rtu-nonlinear": ("RTRL non-linear RTU", ["agent.core=rtu_nonlinear", "agent.learning=rtrl"]),
    "tbptt-elstm": ("TBPTT eLSTM", ["agent.core=elstm", "agent.learning=tbptt"]),
    "tbptt-lstm": ("TBPTT LSTM", ["agent.core=lstm", "agent.learning=tbptt"]),
    "feedforward": ("feed-forward", ["agent.core=none", "agent.learning=none"]),
}


@dataclass
class Grid:
    """What to run: per task, the lengths and rules; one budget and seed list for all runs."""

    name: str
    cells: dict[str, tuple[list[int], list[str]]]
    seeds: list[int]
    total_steps: int
    eval_interval_steps: int
    eval_episodes: int = 256
    extra: dict[str, list[str]] = field(default_factory=dict)  # task -> extra overrides, documented

    def specs(self) -> list[dict]:
        """One dict per run, costliest rules first so the pool drains evenly."""
        out = []
        for rule in RULES:
            for task, (lengths, rules) in self.cells.items():
                if rule not in rules:
                    continue
                for length in lengths:
                    for seed in self.seeds:
                        spec = {"task": task, "length": length, "rule": rule, "seed": seed}
                        spec["overrides"] = self.overrides(task, length, rule, seed)
                        out.append(spec)
        return out

    def overrides(self, task: str, length: int, rule: str, seed: int) -> list[str]:
        """The ``rtrl-rl train`` overrides of one run (env.id first: it resets env.options)."""
        t = TASKS[task]
        opts = [f"env.options.{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in t.options.items()]
        return [f"env.id={t.env_id}", *opts, f"env.options.{t.length_option}={length}", *RULES[rule][1],
                f"train.segment_length={SEGMENT_LENGTH}", f"train.total_steps={self.total_steps}",
                "train.target_success=0", "train.threads=1", f"train.seed={seed}",
                f"log.eval_interval_steps={self.eval_interval_steps}", f"log.eval_episodes={self.eval_episodes}",
                "log.progress=false", "log.tensorboard=false", *self.extra.get(task, [])]


LENGTHS = [5, 10, 20, 40, 80]
ALL_RULES = list(RULES)
#: the rules of the quick grid's widest cell: every rule but the complex-diagonal cores
#: (they have their own grid, ``cores``), so the quick grid keeps its time
QUICK_RULES = [r for r in RULES if r not in ("rtrl-lru", "rtrl-rtu", "rtrl-rtu-nonlinear")]

#: The full grid: every task, length and rule, 3 seeds (hours of CPU time).
FULL = Grid("full", {task: (LENGTHS, ALL_RULES) for task in TASKS}, seeds=[0, 1, 2],
            total_steps=5_000_000, eval_interval_steps=250_000)

#: The quick grid: all rules where the claim is sharpest (recall with distractors), the
#: contrasting rules on blank recall and the T-maze; one seed; fits 15 minutes on 2 cores.
QUICK = Grid("quick", {
    "recall-distractors": ([5, 20, 40], QUICK_RULES),
    "recall-blank": ([20, 40], ["rtrl-elstm", "tbptt-elstm"]),
    "tmaze": ([5, 20, 40], ["rtrl-elstm", "tbptt-elstm", "feedforward"]),
}, seeds=[0], total_steps=2_000_000, eval_interval_steps=200_000)

#: The quick grid's cells with the full grid's 3 seeds (about 3x the quick grid's time).
QUICK3 = Grid("quick3", QUICK.cells, seeds=[0, 1, 2], total_steps=QUICK.total_steps,
              eval_interval_steps=QUICK.eval_interval_steps)

#: The complex-diagonal cores against RTRL eLSTM on recall with distractors and the T-maze,
#: one seed, the quick grid's budget (20 runs).
CORES = Grid("cores", {
    "recall-distractors": ([5, 20, 40], ["rtrl-elstm", "rtrl-lru", "rtrl-rtu", "rtrl-rtu-nonlinear"]),
    "tmaze": ([20, 40], ["rtrl-elstm", "rtrl-lru", "rtrl-rtu", "rtrl-rtu-nonlinear"]),
}, seeds=[0], total_steps=QUICK.total_steps, eval_interval_steps=QUICK.eval_interval_steps)

#: A seconds-long grid for the tests of the plumbing.
TINY = Grid("tiny", {"recall-distractors": ([2, 12], ["rtrl-elstm", "feedforward"]),
                     "tmaze": ([3], ["tbptt-elstm"])},
            seeds=[0], total_steps=2_560, eval_interval_steps=1_280, eval_episodes=16,
            extra={task: ["env.num_envs=16"] for task in TASKS})

GRIDS = {"full": FULL, "quick": QUICK, "quick3": QUICK3, "cores": CORES, "tiny": TINY}


def train_command(overrides: list[str]) -> str:
    """The shell command that repeats one run (its run directory aside)."""
    return "rtrl-rl train " + " ".join(overrides)


def run_one(spec: dict, work_dir: str) -> dict:
    """Train one grid point in this process; return the spec with its measured figures.

    Its terminal output goes to ``<run_dir>/train.log``; a failure is returned as an
    ``error`` (the traceback) instead of raised, so one broken run cannot stop the grid.
    """
    from rtrl_rl.config import load_config
    from rtrl_rl.session import fresh_run_dir
    from rtrl_rl.trainer import train

    run_dir = Path(work_dir) / f"{spec['task']}-L{spec['length']}-{spec['rule']}-s{spec['seed']}"
    fresh_run_dir(run_dir)  # a rerun into the same --work-dir replaces that grid point's run
    result = {k: spec[k] for k in ("task", "length", "rule", "seed")}
    result["command"] = train_command(spec["overrides"])
    result["run_dir"] = str(run_dir)
    start = time.perf_counter()
    with open(run_dir / "train.log", "w") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        try:
            summary = train(load_config(None, [*spec["overrides"], f"run_dir={run_dir}"]))
        except Exception:  # noqa: BLE001 - reported in the results, never hidden
            result["error"] = traceback.format_exc()
            summary = None
    result["process_wall_s"] = round(time.perf_counter() - start, 2)
    if summary is not None:
        keep = ("steps", "wall_s", "sps", "success_rate", "mean_return", "stopped")
        result.update({k: summary.get(k) for k in keep})
        result["evaluations"] = [{k: e.get(k) for k in ("step", "wall_s", "success_rate", "mean_return")}
                                 for e in summary["evaluations"]]
        if str(summary.get("stopped", "")).startswith("interrupted"):
            # a stopped run is not a measurement at the grid's budget: an error, so reports leave it
            # out and a resumed grid runs it again
            result["error"] = f"{summary['stopped']} at step {summary.get('steps')}, before the budget"
    return result


def run_grid(grid: Grid, work_dir: str | Path, jobs: int = 2,
             on_result: Callable[[dict], None] | None = None,
             runner: Callable[[dict, str], dict] = run_one) -> list[dict]:
    """Run every spec of ``grid``, ``jobs`` at a time, each in a fresh process; results in
    completion order.

    ``grid`` is anything with ``specs()``; ``runner(spec, work_dir)`` (a module-level
    function, so spawned processes can import it) trains one spec, :func:`run_one` by default.
    Processes are spawned (not forked) with one OpenMP thread each: forked torch processes can
    deadlock, and two-thread runs would fight over the cores the other run needs. A process
    that dies without a result gives an ``error`` result. Ctrl-C or SIGTERM stops the grid and
    kills its running processes (no orphaned run keeps the cores); the results handed to
    ``on_result`` so far stay saved.
    """
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    ctx = multiprocessing.get_context("spawn")
    pending, running, results = list(grid.specs()), {}, []
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
    """One grid run in its own process: the result goes back through ``send``."""
    send.send(runner(spec, work_dir))
    send.close()


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM as Ctrl-C: unwinds ``run_grid``, which kills the running processes."""
    raise KeyboardInterrupt(f"signal {signum}")


def grid_description(grid: Grid) -> dict:
    """The grid as plain data for the JSON (tasks, their chance level, rules and labels)."""
    return {
        "name": grid.name, "segment_length": SEGMENT_LENGTH, "seeds": grid.seeds,
        "total_steps": grid.total_steps, "eval_interval_steps": grid.eval_interval_steps,
        "eval_episodes": grid.eval_episodes, "extra_overrides": grid.extra,
        "cells": {t: {"lengths": ls, "rules": rs} for t, (ls, rs) in grid.cells.items()},
        "tasks": {t: asdict(TASKS[t]) for t in grid.cells},
        "rules": {r: {"label": RULES[r][0], "overrides": RULES[r][1]} for r in RULES},
    }


def hyperparameters(grid: Grid) -> dict:
    """The resolved settings every run shares (from one run's config), for the report."""
    from rtrl_rl.config import load_config

    task = next(iter(grid.cells))
    config = load_config(None, grid.overrides(task, grid.cells[task][0][0], "rtrl-elstm", grid.seeds[0]))
    a, t = config.agent, config.train
    return {"num_envs": config.env.num_envs, "hidden_size": a.hidden_size, "encoder_size": a.encoder_size,
            "forget_bias": a.forget_bias, "encoder_grad": a.encoder_grad, "optimizer": t.optimizer, "lr": t.lr, "lr_decay": t.lr_decay,
            "gamma": t.gamma, "entropy_cost": t.entropy_cost, "baseline_cost": t.baseline_cost,
            "loss_reduction": t.loss_reduction, "max_grad_norm": t.max_grad_norm}


def plan(grid: Grid, runs: list[dict], jobs: int) -> dict:
    """What ``grid`` would take: its size, and its wall time estimated from measured runs.

    The estimate divides each run's budget by the mean throughput its rule reached in
    ``runs`` (evaluations included), spread over ``jobs`` processes; None when a rule of
    ``grid`` has no measured run.
    """
    sps: dict[str, list[float]] = {}
    for r in runs:
        if "error" not in r:
            sps.setdefault(r["rule"], []).append(r["sps"])
    specs = grid.specs()
    known = all(s["rule"] in sps for s in specs)
    estimate = known and sum(grid.total_steps / (sum(sps[s["rule"]]) / len(sps[s["rule"]])) for s in specs) / jobs
    lengths = sorted({L for ls, _ in grid.cells.values() for L in ls})
    return {"runs": len(specs), "tasks": list(grid.cells), "lengths": lengths, "seeds": grid.seeds,
            "total_steps": grid.total_steps, "estimate_s": estimate if known else None}
