"""``rtrl-rl bench ppo``: PPO beside V-trace on the default task. The page is ``docs/results_ppo.md``.

The task is the default run's (``configs/default.yaml``: ``memory:recall`` with distractors,
K = 4 symbols, delay 40, 128 streams, segments of 10, RTRL eLSTM n = 64). Two kinds of
cell, one grid:

1. learning: ``rtrl-rl train`` with the rule's overrides, one seed, one thread; the run
   stops at the first greedy evaluation (every 200k steps, 256 episodes) that reaches 95%
   success, as the default run does, or at the budget. Rules: V-trace (the default), PPO
   with the settings chosen for this task (:data:`PPO`), the same PPO with truncated BPTT,
   and PPO at the library's gradient clip (40, beside CleanRL's 0.5 that :data:`PPO` uses);
2. cost: V-trace's and PPO's updates side by side in one process, round by round, and
   where PPO's update time goes (:mod:`rtrl_rl.bench.ppo_cost`).

The cells run one at a time by default (``--jobs 1``): wall times are the point.
"""

from __future__ import annotations

import argparse
import sys
import time

from rtrl_rl.bench import driver
from rtrl_rl.bench.grid import Block, Budget, Cell, Grid, plan
from rtrl_rl.bench.ppo_page import write_page

TASK = "recall-distractors"
#: the PPO settings chosen for the default task: the ppo.* defaults (CleanRL's recurrent PPO)
#: with CleanRL's gradient-norm clip, 0.5, instead of the library's 40 (IMPALA's, for summed losses)
PPO = ["agent.algorithm=ppo", "train.max_grad_norm=0.5"]
RULES = {  # name -> (label, overrides of the default config)
    "vtrace": ("V-trace (the default run)", []),
    "ppo": ("PPO, gradient clip 0.5", PPO),
    "ppo-tbptt": ("PPO, gradient clip 0.5, truncated BPTT", [*PPO, "agent.learning=tbptt"]),
    "ppo-gradclip40": ("PPO, gradient clip 40", ["agent.algorithm=ppo"]),
}
#: the default run's evaluation and stop, written out so that each cell's command says it
TARGET, CHANCE = 0.95, 0.25


def grid(name: str, seeds: list[int], steps: int, extra: list[str] = (), rules: tuple[str, ...] = tuple(RULES),
         eval_interval: int = 200_000, episodes: int = 256) -> Grid:
    return Grid(name, [Block((TASK,), rules, Budget(steps, eval_interval, episodes))], seeds, list(extra))


#: cost cell settings per grid: rounds of interleaved timing, updates of each rule per round
COST = {"full": (5, 20), "quick": (2, 5), "tiny": (1, 1)}
GRIDS = {
    "full": grid("full", [0, 1, 2], 3_000_000),
    # one seed, two rules, a tenth of the budget: the plumbing in minutes
    "quick": grid("quick", [0], 300_000, rules=("vtrace", "ppo"), eval_interval=100_000, episodes=64),
    # seconds, for the tests: a short delay, few small streams
    "tiny": grid("tiny", [0], 640, ["env.num_envs=8", "env.options.delay=2", "agent.hidden_size=8"],
                 eval_interval=320, episodes=8),
}
EXPERIMENT = driver.Experiment("ppo", "ppo.json", "results_ppo.md", tuple(GRIDS), jobs=1)
#: what every run sets: one thread, no display, no TensorBoard, no periodic checkpoint
COMMON = ["train.threads=1", "log.progress=false", "log.tensorboard=false", "runtime.checkpoint_every_s=1e9"]


def spec(cell: Cell, extra: list[str]) -> dict:
    """A learning cell: the rule's overrides, the default run's stop at 95%, the budget."""
    b = cell.block.budget
    overrides = [*RULES[cell.rule][1], *COMMON, *extra, f"train.seed={cell.seed}", f"train.total_steps={b.total_steps}",
                 f"train.target_success={TARGET}", f"log.eval_interval_steps={b.eval_interval_steps}",
                 f"log.eval_episodes={b.eval_episodes}"]
    return {"task": cell.task, "rule": cell.rule, "seed": cell.seed, "total_steps": b.total_steps,
            "overrides": overrides}


def specs(g: Grid) -> list[dict]:
    """The cost cell first (minutes), then the learning runs seed by seed."""
    rounds, updates = COST[g.name]
    sides = {rule: [*RULES[rule][1], *COMMON, *g.extra] for rule in ("vtrace", "ppo")}
    return [{"into": "cost", "task": TASK, "rule": "vtrace+ppo", "seed": 0, "rounds": rounds, "updates": updates,
             "sides": sides}, *g.specs(lambda cell: spec(cell, g.extra))]


def describe(g: Grid) -> dict:
    """The grid as plain data: what the page needs besides the rows."""
    b = g.blocks[0].budget
    return {"name": g.name, "task": TASK, "config": "configs/default.yaml", "target": TARGET, "chance": CHANCE,
            "rules": {r: {"label": RULES[r][0], "overrides": RULES[r][1]} for r in g.rules},
            "seeds": g.seeds, "steps": b.total_steps, "eval_interval_steps": b.eval_interval_steps,
            "eval_episodes": b.eval_episodes, "common": COMMON, "extra": g.extra,
            "plans": {name: plan(full.specs(lambda cell: spec(cell, full.extra))) for name, full in GRIDS.items()}}


def run_cell(spec: dict, work_dir: str) -> dict:
    """One cell in its worker process: the cost measurement, or a learning run with the CPU
    seconds it took (the memory task steps in this process, so that is the whole run)."""
    if spec.get("into") == "cost":
        from rtrl_rl.bench.ppo_cost import measure

        return {k: spec[k] for k in ("into", "task", "rule", "seed")} | measure(spec["rounds"], spec["updates"],
                                                                                 spec["sides"])
    from rtrl_rl.bench.pool import train_cell

    cpu = time.process_time()
    result = train_cell(spec, work_dir)
    return result | {"cpu_s": round(time.process_time() - cpu, 2)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    driver.add_arguments(parser, EXPERIMENT)
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds (default: the grid's)")
    parser.add_argument("--rules", nargs="+", choices=list(RULES), help="only these rules")


def run(args: argparse.Namespace) -> int:
    """Measure (unless ``--report-only``), then write the JSON, the page and the chart."""
    error = driver.check(args, EXPERIMENT)
    if error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    g = GRIDS[args.grid].narrowed(rules=args.rules, seeds=args.seeds)
    return driver.drive(EXPERIMENT, args, describe=describe(g), specs=specs(g), runner=run_cell,
                        write_page=write_page)
