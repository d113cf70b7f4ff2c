"""``rtrl-rl bench minatar``: the segment agent and the streaming learner on MinAtar's five games.

The grid: (game, rule, seed), each cell a plain ``rtrl-rl train`` run of a ready config
(``configs/minatar/segment.yaml`` or ``stream.yaml``) with the rule's overrides, 5M
frames (a MinAtar step is a frame: no frame skip), TensorBoard on for the training curve
and no greedy evaluation (the published MinAtar curves are training returns). The page,
``docs/results_minatar.md``, computes each run's final return from that curve and sets it
beside the published figures of ``docs/results/minatar_published.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import NamedTuple

from rtrl_rl.bench import driver
from rtrl_rl.bench.curves import training_curve
from rtrl_rl.bench.grid import Block, Budget, Cell, Grid, plan
from rtrl_rl.bench.pool import cell_dir, train_cell
from rtrl_rl.envs.minatar_suite import GAMES


class Rule(NamedTuple):
    """A rule of the grid: its label, the ready config it trains and the overrides on top."""

    label: str
    config: str
    overrides: list[str]


FEED_FORWARD = ["agent.core=none", "agent.learning=none"]
RULES: dict[str, Rule] = {
    "segment-rtrl": Rule("segment agent, RTRL eLSTM", "minatar/segment", []),
    "segment-ff": Rule("segment agent, feed-forward", "minatar/segment", FEED_FORWARD),
    "stream-rtrl": Rule("streaming learner, RTRL eLSTM", "minatar/stream", []),
    "stream-ff": Rule("streaming learner, feed-forward", "minatar/stream", FEED_FORWARD),
}
SEGMENT_RULES, STREAM_RULES = ("segment-rtrl", "segment-ff"), ("stream-rtrl", "stream-ff")
#: the budget of the published MinAtar curves (Young & Tian 2019), in frames = agent steps
FRAMES = 5_000_000
#: steps of each short run of ``--cost`` (the streaming rules' wall time per step, where a 5M-frame run is hours)
COST_STEPS = 3_000
#: the run's final return: the mean of the training curve's points over the last FINAL_FRACTION of its steps
FINAL_FRACTION = 0.05


def _budget(steps: int) -> Budget:
    return Budget(steps, eval_interval_steps=0, eval_episodes=0, tensorboard=True)


def grid(name: str, games: list[str], rule_names: list[str], seeds: list[int], steps: int,
         stream_steps: int | None = None, extra: list[str] | None = None) -> Grid:
    """The segment rules' block, then the streaming rules' (the costlier), every seed;
    ``stream_steps``: the streaming block's budget when it differs (the quick grid)."""
    blocks = []
    for rules, budget in ((SEGMENT_RULES, steps), (STREAM_RULES, stream_steps or steps)):
        kept = tuple(r for r in rule_names if r in rules)
        if kept:
            blocks.append(Block(tuple(games), kept, _budget(budget)))
    return Grid(name, blocks, seeds, list(extra or []))


GAME_NAMES = list(GAMES.values())
GRIDS = {
    # the five games, the four rules, 3 seeds, 5M frames each
    "full": lambda: grid("full", GAME_NAMES, list(RULES), [0, 1, 2], FRAMES),
    # seconds long, for the tests of the plumbing: each algorithm once, each core once (2 segment
    # updates of the config's 64 streams; 300 streaming steps)
    "quick": lambda: grid("quick", ["Breakout"], ["segment-rtrl", "stream-ff"], [0], 2_560, 300),
}
EXPERIMENT = driver.Experiment("minatar", "minatar.json", "results_minatar.md", tuple(GRIDS), jobs=1, compact=True)


def spec(cell: Cell, extra: list[str]) -> dict:
    """One training run of the rule's ready config (env.id first: it resets env.options)."""
    rule = RULES[cell.rule]
    overrides = [f"env.id=minatar:{cell.task}", *rule.overrides, *cell.block.budget.overrides(cell.seed), *extra]
    return {"task": cell.task, "rule": cell.rule, "seed": cell.seed, "config": rule.config,
            "total_steps": cell.block.budget.total_steps, "overrides": overrides}


def specs(g: Grid) -> list[dict]:
    return g.specs(lambda cell: spec(cell, g.extra))


def cost_specs(rules: list[str], steps: int) -> list[dict]:
    """Short runs of ``rules`` on Breakout, seed 0, into the result's ``cost`` list: their
    wall time per step, for rules whose full runs are not measured."""
    out = []
    for rule in rules:
        block = Block(("Breakout",), (rule,), Budget(steps, eval_episodes=0, tensorboard=False))
        out.append({**spec(Cell("Breakout", None, rule, 0, block), []), "into": "cost"})
    return out


def run_game(spec: dict, work_dir: str) -> dict:
    """One cell: the training run, then its training curve from TensorBoard (a ``cost``
    run: its wall time per step only)."""
    started = time.time()
    result = train_cell(spec, work_dir)
    result["started_unix"] = round(started, 1)
    if "into" in spec:
        result["into"] = spec["into"]
    elif "error" not in result:
        # [step, wall s, mean return]; rounded so that 60 runs of 4,000 points stay a few MB
        result["curve"] = [[step, round(wall, 1), round(ret, 3)] for step, wall, ret in
                           training_curve(cell_dir(spec, work_dir))]
    return result


def describe(g: Grid) -> dict:
    """The grid as plain data. Every invocation of a grid names all of it (games, rules,
    seeds, each block's budget), however narrowed, so a part run joins the saved result and
    the page can say which cells are missing."""
    whole = GRIDS[g.name]()
    return {"name": g.name, "games": whole.tasks, "seeds": whole.seeds, "frames_per_step": 1,
            "total_steps": {"segment" if b.rules[0] in SEGMENT_RULES else "stream": b.budget.total_steps
                            for b in whole.blocks},
            "final_fraction": FINAL_FRACTION, "extra": whole.extra,
            "rules": {r: {"label": RULES[r].label, "config": RULES[r].config, "overrides": RULES[r].overrides}
                      for r in whole.rules},
            "plans": {"full": plan(specs(GRIDS["full"]()))}}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The common arguments and the grid's narrowing (a part of the full grid, resumable)."""
    driver.add_arguments(parser, EXPERIMENT)
    parser.add_argument("--games", nargs="+", choices=GAME_NAMES, help="only these games, in this order")
    parser.add_argument("--rules", nargs="+", choices=list(RULES), help="only these rules")
    parser.add_argument("--seeds", type=int, nargs="+", help="only these seeds (default: the grid's)")
    parser.add_argument("--cost", nargs="+", choices=list(RULES), default=[], metavar="RULE",
                        help=f"also time a short run ({COST_STEPS:,} steps, Breakout) of each of these rules "
                             "(the page's estimate of their full runs)")
    parser.add_argument("--no-grid", action="store_true", help="run none of the grid's cells: only --cost")


def build_grid(args: argparse.Namespace) -> Grid:
    """The named grid, narrowed to --games (in their order), --rules and --seeds."""
    g = GRIDS[args.grid]()
    steps = {b.rules[0] in SEGMENT_RULES: b.budget.total_steps for b in g.blocks}
    rules = [r for r in g.rules if not args.rules or r in args.rules]
    return grid(g.name, args.games or g.tasks, rules, args.seeds or g.seeds, steps[True], steps[False], g.extra)


def run(args: argparse.Namespace) -> int:
    """Train the grid's missing cells (unless ``--report-only``), then write the JSON, the page and its chart."""
    from rtrl_rl.bench.minatar_page import write_page

    error = driver.check(args, EXPERIMENT)
    if error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    g = build_grid(args)
    if not g.blocks or (args.no_grid and not args.cost):
        print("error: --rules, --no-grid and --cost leave no cell to run", file=sys.stderr)
        return 2
    todo = ([] if args.no_grid else specs(g)) + cost_specs(args.cost, COST_STEPS)
    return driver.drive(EXPERIMENT, args, describe=describe(g), specs=todo, runner=run_game,
                        write_page=write_page)
