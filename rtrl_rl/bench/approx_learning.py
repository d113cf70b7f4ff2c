"""``rtrl-rl bench approx-learning``: the dense LSTM trained by each learning rule, side by side.

The grid: (task, rule, seed), each cell a plain ``rtrl-rl train`` run with segments of
T = 10 and one step budget per task family. Memory tasks (recall with distractors, with
blank delays, the T-maze; all with a delay beyond the segment) are scored by greedy
success, POPGym tasks by MMER and the final greedy return, through the POPGym
experiment's cell. Every LSTM rule trains the same network (:data:`LSTM_N` units on a
:data:`LSTM_ENCODER`-wide encoder): exact RTRL of a dense LSTM costs O(n⁴) per step,
which fixes how large it can be. The RTRL eLSTM runs at the agent's default size, as the
library's reference. The page is the learning part of ``docs/approximations.md``.
"""

from __future__ import annotations

import argparse
import sys

from rtrl_rl.bench import driver, memory
from rtrl_rl.bench import popgym as pg
from rtrl_rl.bench.approx_learning_page import finished
from rtrl_rl.bench.approximations_page import write_page
from rtrl_rl.bench.curves import WINDOW_STEPS
from rtrl_rl.bench.grid import SEGMENT_LENGTH, Block, Budget, Cell, Grid
from rtrl_rl.bench.pool import train_cell

#: hidden size and encoder width of every dense-LSTM rule: exact RTRL keeps n x 4n(n + d + 1)
#: influence entries per stream and costs O(n⁴) per step, which sets how large they can be
LSTM_N = 8
LSTM_ENCODER = 16

#: rule -> (label, overrides of every task, extra overrides on POPGym tasks)
RULES: dict[str, tuple[str, list[str], list[str]]] = {
    "lstm-tbptt": (f"TBPTT LSTM (n = {LSTM_N})", ["agent.core=lstm", "agent.learning=tbptt"], []),
    "lstm-snap1": (f"SnAp-1 LSTM (n = {LSTM_N})", ["agent.core=lstm", "agent.learning=snap1"], []),
    "lstm-uoro": (f"UORO LSTM (n = {LSTM_N})", ["agent.core=lstm", "agent.learning=uoro"], []),
    "lstm-kfrtrl": (f"KF-RTRL LSTM (n = {LSTM_N})", ["agent.core=lstm", "agent.learning=kfrtrl"], []),
    "lstm-rtrl": (f"exact RTRL LSTM (n = {LSTM_N})", ["agent.core=lstm", "agent.learning=rtrl"], []),
    # the eLSTM keeps the agent's default size; on POPGym the POPGym experiment's input-gradient setting
    "rtrl-elstm": ("RTRL eLSTM (n = 64, default)", ["agent.core=elstm", "agent.learning=rtrl"], pg.RTRL_EXTRA),
    # a reference for POPGym only (memory tasks have an analytic chance level)
    "feedforward": ("feed-forward", ["agent.core=none", "agent.learning=none"], []),
}
LSTM_RULES = [r for r in RULES if r.startswith("lstm-")]
ALL_RULES = [*LSTM_RULES, "rtrl-elstm", "feedforward"]
#: the rule an order of magnitude costlier per step than any other here: last within each seed
EXACT = "lstm-rtrl"

#: memory task -> the length L (delay or corridor): beyond the segment T = 10, so no truncated
#: gradient spans it, and short enough that the RTRL eLSTM learns it within the budget
MEMORY_TASKS = {"recall-distractors": 12, "recall-blank": 12, "tmaze": 12}
#: POPGym tasks: one learnt by RTRL cores at this library's POPGym budget, one control task
POPGYM_TASKS = ["RepeatPreviousEasy", "PositionOnlyCartPoleEasy"]


def rule_overrides(rule: str, popgym: bool) -> list[str]:
    """A rule's overrides: its own, the shared LSTM size, the POPGym extras on POPGym."""
    _, common, on_popgym = RULES[rule]
    size = [f"agent.hidden_size={LSTM_N}", f"agent.encoder_size={LSTM_ENCODER}"] if rule in LSTM_RULES else []
    return [*common, *size, *(on_popgym if popgym else [])]


def grid(name: str, memory_tasks: dict[str, int], popgym_tasks: list[str], rules: list[str], seeds: list[int],
         memory_budget: Budget, popgym_budget: Budget | None, popgym_only: tuple[str, ...] = ("feedforward",),
         extra: list[str] | None = None) -> Grid:
    """Within each seed: the memory tasks, then POPGym, by every rule but exact RTRL; then exact RTRL."""
    blocks = []
    for exact in (False, True):
        chosen = [r for r in rules if (r == EXACT) == exact]
        mem = tuple(r for r in chosen if r not in popgym_only)
        blocks += [Block((t,), mem, memory_budget, (L,), "memory") for t, L in memory_tasks.items() if mem]
        if popgym_tasks and chosen:
            blocks.append(Block(tuple(popgym_tasks), tuple(chosen), popgym_budget, (None,), "popgym"))
    return Grid(name, blocks, seeds, list(extra or []))


def _memory(steps: int, every: int, episodes: int = 256) -> Budget:
    return Budget(steps, every, episodes)


def _popgym(steps: int, episodes: int = 256) -> Budget:
    return Budget(steps, 0, episodes, tensorboard=True)


GRIDS = {
    # the page's grid: 3 seeds, 200k steps per memory run and 100k per POPGym run
    "full": grid("full", MEMORY_TASKS, POPGYM_TASKS, ALL_RULES, [0, 1, 2], _memory(200_000, 50_000), _popgym(100_000)),
    # the full grid's budget tells no rule apart (the RTRL eLSTM alone learns, partly): the same rules
    # but feed-forward on recall-blank only, at ten times the budget, 3 seeds; its own JSON
    "long": grid("long", {"recall-blank": 12}, [], [*LSTM_RULES, "rtrl-elstm"], [0, 1, 2],
                 _memory(2_000_000, 250_000), None, popgym_only=()),
    # one seed of the full grid at half its budget
    "quick": grid("quick", MEMORY_TASKS, POPGYM_TASKS, ALL_RULES, [0], _memory(100_000, 50_000), _popgym(50_000)),
    # seconds long, for the tests of the plumbing
    "tiny": grid("tiny", {"recall-distractors": 12}, ["RepeatPreviousEasy"], ["lstm-snap1", "rtrl-elstm", "feedforward"],
                 [0], _memory(1_280, 640, 8), _popgym(1_280, 8), extra=["env.num_envs=16"]),
}
EXPERIMENT = driver.Experiment("approx-learning", "approx_learning.json", "approximations.md", tuple(GRIDS), jobs=1)
#: the long grid's results sit beside the full grid's, and the page's section reads both
LONG = driver.Experiment("approx-learning", "approx_learning_long.json", "approximations.md", tuple(GRIDS), jobs=1)


def spec(cell: Cell, extra: list[str]) -> dict:
    """One run: a memory task at its L through the memory experiment's overrides, or a
    POPGym task through the POPGym experiment's."""
    budget = cell.block.budget
    if cell.block.family == "memory":
        overrides = [*memory.task_overrides(cell.task, cell.length), *rule_overrides(cell.rule, popgym=False),
                     f"train.segment_length={SEGMENT_LENGTH}", *budget.overrides(cell.seed), *extra]
        return {"task": cell.task, "length": cell.length, "rule": cell.rule, "seed": cell.seed, "family": "memory",
                "total_steps": budget.total_steps, "overrides": overrides}
    catalog = {cell.rule: pg.Rule(RULES[cell.rule][0], rule_overrides(cell.rule, popgym=True))}
    return {**pg.spec(cell, catalog, extra), "family": "popgym"}


def specs(g: Grid) -> list[dict]:
    return g.specs(lambda cell: spec(cell, g.extra))


def run_spec(spec: dict, work_dir: str) -> dict:
    """Train one spec: the memory cell, or the POPGym cell (MMER)."""
    if spec["family"] == "memory":
        return train_cell(spec, work_dir)
    result = pg.run_task(spec, work_dir)
    result.pop("curve", None)  # MMER is kept; the per-update curve stays in the run's TensorBoard
    return result


def describe(g: Grid) -> dict:
    """The grid as plain data for the JSON."""
    mem = next((b for b in g.blocks if b.family == "memory"), None)
    pop = next((b for b in g.blocks if b.family == "popgym"), None)
    memory_tasks = {b.tasks[0]: b.lengths[0] for b in g.blocks if b.family == "memory"}
    popgym_tasks = list(pop.tasks) if pop else []
    rules = g.rules
    return {"name": g.name, "segment_length": SEGMENT_LENGTH, "lstm_n": LSTM_N, "lstm_encoder": LSTM_ENCODER,
            "seeds": g.seeds, "memory_steps": mem.budget.total_steps if mem else 0,
            "popgym_steps": pop.budget.total_steps if pop else 0,
            "eval_interval_steps": mem.budget.eval_interval_steps if mem else 0,
            "eval_episodes": (mem or pop).budget.eval_episodes, "window_steps": WINDOW_STEPS, "extra_overrides": g.extra,
            "memory_tasks": {t: {"length": L, "chance": memory.TASKS[t].chance, "what": memory.TASKS[t].what}
                             for t, L in memory_tasks.items()},
            "popgym_tasks": {t: {"why": pg.TASKS[t].why, "episode": pg.TASKS[t].episode} for t in popgym_tasks},
            "rules": {r: {"label": RULES[r][0], "overrides": rule_overrides(r, False),
                          "popgym_overrides": rule_overrides(r, True)} for r in rules},
            "popgym_only": [r for r in rules if memory_tasks and all(r not in b.rules for b in g.blocks
                                                                      if b.family == "memory")]}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    driver.add_arguments(parser, EXPERIMENT)


def run(args: argparse.Namespace) -> int:
    """Measure (unless ``--report-only``), then write the JSON and the page."""
    if args.quick:
        args.grid = "quick"
    exp = LONG if args.grid == "long" else EXPERIMENT
    error = driver.check(args, exp)
    if error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    g = GRIDS[args.grid]
    return driver.drive(exp, args, describe=describe(g), specs=specs(g), runner=run_spec, write_page=write_page,
                        done=finished)
