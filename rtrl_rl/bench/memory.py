"""``rtrl-rl bench memory``: which learning rules carry a cue across more steps than a segment?

The grid: (task, length L, learning rule, seed), each cell a plain ``rtrl-rl train`` run
with the same frame budget, no early stop and periodic greedy evaluations (the learning
curve); L runs below and above the segment length T. Before the grid (so the two never
compete for the cores) it runs the cost benchmarks ``rtrl-rl bench cores`` and
``rtrl-rl bench runtime``. The page is ``docs/results.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, dataclass

from rtrl_rl.bench import driver, memory_costs
from rtrl_rl.bench.grid import SEGMENT_LENGTH, Block, Budget, Cell, Grid, plan
from rtrl_rl.bench.pool import train_cell


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


def task_overrides(task: str, length: int) -> list[str]:
    """The env overrides of a memory task at length L (env.id first: it resets env.options)."""
    t = TASKS[task]
    opts = [f"env.options.{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in t.options.items()]
    return [f"env.id={t.env_id}", *opts, f"env.options.{t.length_option}={length}"]


def grid(name: str, cells: dict[str, tuple[list[int], list[str]]], seeds: list[int], budget: Budget,
         extra: list[str] | None = None) -> Grid:
    """A memory grid: per task, its lengths and rules; one budget and seed list for all runs."""
    blocks = [Block((task,), tuple(rules), budget, tuple(lengths)) for task, (lengths, rules) in cells.items()]
    return Grid(name, blocks, seeds, list(extra or []))


LENGTHS = [5, 10, 20, 40, 80]
#: the rules of the quick grid's widest cell: every rule but the complex-diagonal cores
#: (they have their own grid, ``cores``), so the quick grid keeps its time
QUICK_RULES = [r for r in RULES if r not in ("rtrl-lru", "rtrl-rtu", "rtrl-rtu-nonlinear")]
QUICK_CELLS = {"recall-distractors": ([5, 20, 40], QUICK_RULES), "recall-blank": ([20, 40], ["rtrl-elstm", "tbptt-elstm"]),
               "tmaze": ([5, 20, 40], ["rtrl-elstm", "tbptt-elstm", "feedforward"])}
QUICK_BUDGET = Budget(2_000_000, 200_000)
COMPLEX = ["rtrl-elstm", "rtrl-lru", "rtrl-rtu", "rtrl-rtu-nonlinear"]

GRIDS = {
    # every task, length and rule, 3 seeds (hours of CPU time)
    "full": grid("full", {task: (LENGTHS, list(RULES)) for task in TASKS}, [0, 1, 2], Budget(5_000_000, 250_000)),
    # all rules where the claim is sharpest, the contrasting rules elsewhere; one seed; 15 minutes on 2 cores
    "quick": grid("quick", QUICK_CELLS, [0], QUICK_BUDGET),
    # the quick grid's cells with the full grid's 3 seeds (about 3x the quick grid's time)
    "quick3": grid("quick3", QUICK_CELLS, [0, 1, 2], QUICK_BUDGET),
    # the complex-diagonal cores against RTRL eLSTM, the quick grid's budget (20 runs)
    "cores": grid("cores", {"recall-distractors": ([5, 20, 40], COMPLEX), "tmaze": ([20, 40], COMPLEX)}, [0],
                  QUICK_BUDGET),
    # a seconds-long grid for the tests of the plumbing
    "tiny": grid("tiny", {"recall-distractors": ([2, 12], ["rtrl-elstm", "feedforward"]), "tmaze": ([3], ["tbptt-elstm"])},
                 [0], Budget(2_560, 1_280, 16), ["env.num_envs=16"]),
}
EXPERIMENT = driver.Experiment("memory", "memory.json", "results.md", tuple(GRIDS))


def spec(cell: Cell, extra: list[str]) -> dict:
    """One run: the task at its L, the rule, the budget (env.id first: it resets env.options)."""
    overrides = [*task_overrides(cell.task, cell.length), *RULES[cell.rule][1], f"train.segment_length={SEGMENT_LENGTH}",
                 *cell.block.budget.overrides(cell.seed), *extra]
    return {"task": cell.task, "length": cell.length, "rule": cell.rule, "seed": cell.seed,
            "total_steps": cell.block.budget.total_steps, "overrides": overrides}


def specs(g: Grid) -> list[dict]:
    return g.specs(lambda cell: spec(cell, g.extra))


def describe(g: Grid) -> dict:
    """The grid as plain data for the JSON (tasks, their chance level, rules and labels)."""
    budget = g.blocks[0].budget
    return {
        "name": g.name, "segment_length": SEGMENT_LENGTH, "seeds": g.seeds, "total_steps": budget.total_steps,
        "eval_interval_steps": budget.eval_interval_steps, "eval_episodes": budget.eval_episodes,
        "extra_overrides": g.extra,
        "cells": {b.tasks[0]: {"lengths": list(b.lengths), "rules": list(b.rules)} for b in g.blocks},
        "tasks": {b.tasks[0]: asdict(TASKS[b.tasks[0]]) for b in g.blocks},
        "rules": {r: {"label": RULES[r][0], "overrides": RULES[r][1]} for r in RULES},
        "hyperparameters": hyperparameters(g),
        # what the page's "Reproduce" commands run
        "plans": {name: plan(specs(GRIDS[name])) for name in ("full", "quick")},
    }


def hyperparameters(g: Grid) -> dict:
    """The resolved settings every run shares (from one run's config), for the page."""
    from rtrl_rl.config import load_config

    config = load_config(None, specs(g)[0]["overrides"])
    a, t = config.agent, config.train
    return {"num_envs": config.env.num_envs, "hidden_size": a.hidden_size, "encoder_size": a.encoder_size,
            "forget_bias": a.forget_bias, "encoder_grad": a.encoder_grad, "optimizer": t.optimizer, "lr": t.lr,
            "lr_decay": t.lr_decay, "gamma": t.gamma, "entropy_cost": t.entropy_cost,
            "baseline_cost": t.baseline_cost, "loss_reduction": t.loss_reduction, "max_grad_norm": t.max_grad_norm}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The experiment's arguments: the common ones and the cost benchmarks'."""
    driver.add_arguments(parser, EXPERIMENT)
    parser.add_argument("--skip-bench", action="store_true", help="do not run the cost benchmarks")
    parser.add_argument("--bench-timeout", type=float, default=600.0, help="seconds allowed per cost benchmark")


def run(args: argparse.Namespace) -> int:
    """Measure (unless ``--report-only``), then write the JSON, the page and the charts."""
    from rtrl_rl.bench.memory_page import write_page

    error = driver.check(args, EXPERIMENT)
    if error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    g = GRIDS[args.grid]

    def costs(data: dict) -> None:  # before the grid, so the two never compete for the cores
        began = time.perf_counter()
        if not args.skip_bench:
            data["costs"] = memory_costs.measure(args.grid != "full", args.out, args.bench_timeout)
        data.setdefault("costs", {})
        data["meta"]["history"][-1]["bench_wall_s"] = round(time.perf_counter() - began, 1)

    def order(data: dict) -> None:
        data["runs"].sort(key=lambda r: (list(TASKS).index(r["task"]), r["length"], list(RULES).index(r["rule"]),
                                         r["seed"]))

    return driver.drive(EXPERIMENT, args, describe=describe(g), specs=specs(g), runner=train_cell,
                        write_page=write_page, before=costs, after=order)
