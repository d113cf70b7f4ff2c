"""``rtrl-rl bench popgym-protocol``: POPGym's own protocol, beside its published figures and a replica of its baseline.

The protocol of the POPGym paper (Morad et al., ICLR 2023, Appendix B): 15,000,000
environment steps per run, 3 seeds, MMER (:mod:`rtrl_rl.bench.curves`, over windows of
one RLlib train batch, :data:`WINDOW_STEPS`), on the 13 tasks of the 3M-step grid
(:data:`rtrl_rl.bench.popgym.TASKS`). The rules:

- ``rtrl-best``: the best RTRL rule (its overrides: :data:`BEST_OVERRIDES`, over the 3M
  grid's shared settings and segment of 10);
- ``replica-gru``: POPGym's baseline at a CPU's budget (``configs/popgym/replica_cpu.yaml``),
  ``replica-lstm`` the same with an LSTM, ``replica-faithful`` its settings as POPGym's
  script and RLlib's defaults give them (``configs/popgym/replica_faithful.yaml``; hours per
  run on a CPU);
- ``tbptt-lstm``: TBPTT LSTM with T = 10, as on the 3M page;
- the peer, SB3-contrib RecurrentPPO, at equal wall time: each run trains for the best RTRL
  rule's mean wall time per run in the saved result (so it runs once that is measured:
  ``--rules sb3-recurrentppo --resume``).

The grid runs in parts: ``--tasks``, ``--rules`` and ``--seeds`` narrow an invocation, and
``--resume`` adds its cells to the same JSON (``docs/results/popgym_protocol.json``); the
page (``docs/results_popgym.md``, :mod:`rtrl_rl.bench.popgym_protocol_page`) names the cells
still missing. ``--cost`` measures the wall time per step of the best RTRL rule and both GRU
replicas side by side in one process (:mod:`rtrl_rl.bench.popgym_cost`). The tasks, a cell's
spec and its run are the 3M grid's (:mod:`rtrl_rl.bench.popgym`).
"""

from __future__ import annotations

import argparse
import statistics
import sys

from rtrl_rl.bench import driver, popgym, popgym_cost, record
from rtrl_rl.bench.grid import SEGMENT_LENGTH, Grid, plan
from rtrl_rl.bench.popgym import RTRL_EXTRA, SELECTION_BASE, SHARED, TASKS, Rule
from rtrl_rl.bench.popgym_targets import BEST_RTRL, PEER

#: the best RTRL rule's overrides: the one place to change it. The 3M grid's ``rtrl-lru+sel-base``
#: (lru with the input mixer, without the truncation bootstrap), chosen by the ``sel-*`` levers of
#: ``rtrl-rl bench popgym`` (one seed, 3M steps, on RepeatFirstEasy, CountRecallEasy and
#: MineSweeperEasy; docs/results_popgym_3m.md): the highest mean MMER over the three tasks was the
#: same rule with n = 128 (0.30 against 0.27), within the three seeds' spread of the n = 64 rule,
#: so the rule declared a tie (a mean within 0.05) and kept the cheaper one, at about half the
#: cost per step; PPO, POPGym's network, the 0-1 ring, a smaller recurrent lr, value norm,
#: entropy decay and two layers each scored lower.
BEST_OVERRIDES = ["agent.core=lru", "agent.learning=rtrl", *RTRL_EXTRA, *SELECTION_BASE]
#: environment steps per run: the paper's budget
STEPS = 15_000_000
#: MMER windows: one RLlib iteration of POPGym's baseline (64 envs x 1024 steps)
WINDOW_STEPS = 65_536
#: the ready configs of the replicas
REPLICA_CPU, REPLICA_FAITHFUL = "popgym/replica_cpu", "popgym/replica_faithful"
#: the side-by-side cost: these rules (the targets' pair first, then every other training rule, so
#: the grid's time can be planned) on one task; 65,536 steps are one update of the faithful replica
COST_RULES = (BEST_RTRL, "replica-gru", "replica-faithful", "replica-lstm", "tbptt-lstm")
COST_TASK, COST_STEPS = "CountRecallEasy", 65_536
#: the grid's training rules the "no run non-finite" target needs complete (the faithful replica
#: runs only where a GPU is lent, or on one task)
FINITE_RULES = (BEST_RTRL, "replica-gru", "replica-lstm", "tbptt-lstm")


def rules() -> dict[str, Rule]:
    """The protocol's training rules (the peer is not one: it trains in another library)."""
    return {
        BEST_RTRL: Rule("best RTRL (lru, input mixer, no truncation bootstrap)", BEST_OVERRIDES),
        "replica-gru": Rule("replica, cpu (GRU)", [], None, REPLICA_CPU),
        "replica-lstm": Rule("replica, cpu (LSTM)", ["agent.core=lstm"], None, REPLICA_CPU),
        "replica-faithful": Rule("replica, faithful (GRU)", [], None, REPLICA_FAITHFUL),
        "tbptt-lstm": popgym.rules()["tbptt-lstm"],
    }


def all_rules() -> list[str]:
    """Every name ``--rules`` takes: the training rules, then the peer."""
    return [*rules(), PEER]


GRIDS = {
    # the protocol: every task, every training rule, 3 seeds, 15M steps (the peer joins with --rules)
    "full": lambda: popgym.grid("full", list(TASKS), list(rules()), [0, 1, 2], STEPS),
    # two tasks (a dependency inside the segment, one beyond it), the cheaper rules, one seed, 2M steps
    "quick": lambda: popgym.grid("quick", ["RepeatPreviousEasy", "RepeatFirstEasy"],
                                 [BEST_RTRL, "replica-gru", "tbptt-lstm"], [0], 2_000_000),
    # seconds long, for the tests of the plumbing: one update of the replica (4 streams x 1024)
    "tiny": lambda: popgym.grid("tiny", ["RepeatPreviousEasy"], [BEST_RTRL, "replica-gru"], [0], 4_096, 8,
                                ["env.num_envs=4"]),
}
EXPERIMENT = driver.Experiment("popgym-protocol", "popgym_protocol.json", "results_popgym.md", tuple(GRIDS),
                               compact=True)


def run_task(spec: dict, work_dir: str) -> dict:
    """One cell: MMER over :data:`WINDOW_STEPS`, the curve's wall times from the run's start."""
    return popgym.measure_cell(spec, work_dir, WINDOW_STEPS, from_start=True)


def peer_specs(tasks: list[str], seeds: list[int], wall_s: float) -> list[dict]:
    """The peer's cells at ``wall_s`` seconds of training each (at most :data:`STEPS` steps)."""
    return [{**s, "command": f"rtrl-rl bench popgym-protocol --rules {PEER} --tasks {s['task']} --seeds {s['seed']} "
             "--resume"} for s in popgym.peer_specs(tasks, seeds, STEPS, wall_s)]


def best_wall_s(data: dict | None) -> float | None:
    """The best RTRL rule's mean wall time per finished run in ``data`` (None: no such run)."""
    walls = [r["wall_s"] for r in (data or {}).get("runs", []) if r["rule"] == BEST_RTRL and "error" not in r
             and r.get("wall_s")]
    return statistics.fmean(walls) if walls else None


def update_shape(rule: Rule) -> tuple[int, int]:
    """``rule``'s environment steps per update (streams x segment) and optimiser steps per update
    (PPO: epochs x minibatches; V-trace: one)."""
    from rtrl_rl.config import load_config
    from rtrl_rl.config import resolve_config_path

    config = resolve_config_path(rule.config) if rule.config else None
    c = load_config(config, rule.overrides)
    batch = c.env.num_envs * (c.train.segment_length if rule.config else int(rule.segment))
    return batch, (c.ppo.epochs * c.ppo.minibatches if c.agent.algorithm == "ppo" else 1)


def describe(g: Grid, catalog: dict[str, Rule]) -> dict:
    """The grid as plain data: tasks, rules (with their configs and steps per update), the peer,
    the published figures, and what the full and quick grids hold."""
    from rtrl_rl.bench.popgym_published import PAPER, PUBLISHED, status

    full, quick = GRIDS["full"](), GRIDS["quick"]()
    described = {r: {"label": rule.label, "overrides": rule.overrides, "segment": rule.segment,
                     "config": rule.config, **dict(zip(("batch", "optimizer_steps"), update_shape(rule)))}
                 for r, rule in catalog.items()}
    budget = g.blocks[0].budget.total_steps if g.blocks else STEPS
    return {"name": g.name, "tasks": g.tasks, "seeds": g.seeds, "total_steps": budget,
            "segment_length": SEGMENT_LENGTH, "window_steps": WINDOW_STEPS, "shared": SHARED,
            "rules": {**described, PEER: {"label": popgym.PEER_LABEL, "overrides": [], "peer": True}},
            "episodes": {t: TASKS[t].episode for t in g.tasks},
            "published": {t: {"gru": p.gru, "best": p.best, "best_model": p.best_model, "status": status(t)}
                          for t, p in PUBLISHED.items()},
            "paper": PAPER, "finite_rules": list(FINITE_RULES),
            "plans": {"full": plan(popgym.specs(full, catalog)), "peer": plan(peer_specs(full.tasks, full.seeds, 0.0)),
                      "quick": plan(popgym.specs(quick, catalog))}}


def measure_cost(task: str, catalog: dict[str, Rule], steps: int, rounds: int, extra: list[str]) -> dict:
    """:data:`COST_RULES` side by side on ``task``: short runs without evaluation or TensorBoard."""
    cost_grid = popgym.grid("cost", [task], list(COST_RULES), [0], steps, eval_episodes=0,
                            extra=["log.tensorboard=false", *extra])
    return popgym_cost.measure(popgym_cost.by_task(popgym.specs(cost_grid, catalog)), steps, rounds)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The common arguments, the grid's narrowing and the cost."""
    driver.add_arguments(parser, EXPERIMENT)
    parser.add_argument("--tasks", nargs="+", choices=list(TASKS), help="only these tasks")
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds (default: the grid's)")
    parser.add_argument("--steps", type=int, help=f"environment steps per run (default: the grid's; full {STEPS:,})")
    parser.add_argument("--rules", nargs="+", help=f"only these rules, of {' '.join(all_rules())} ({PEER}: "
                        "SB3-contrib RecurrentPPO at the best RTRL rule's mean wall time per run; needs --resume "
                        "and a measured rtrl-best)")
    parser.add_argument("--no-grid", action="store_true", help="run none of the grid's cells: only --cost")
    parser.add_argument("--cost", action="store_true", help=f"also measure the wall time per step of "
                        f"{', '.join(COST_RULES)} side by side in this process")
    parser.add_argument("--cost-task", choices=list(TASKS), default=COST_TASK, help=f"the task of --cost "
                        f"(default {COST_TASK})")
    parser.add_argument("--cost-steps", type=int, default=COST_STEPS, help="environment steps of each short run "
                        f"of --cost (default {COST_STEPS:,}: one update of the faithful replica)")
    parser.add_argument("--cost-rounds", type=int, default=popgym_cost.COST_ROUNDS, help="alternating rounds of "
                        f"--cost (default {popgym_cost.COST_ROUNDS})")


def _refused(args: argparse.Namespace) -> str | None:
    """Why these arguments cannot run (checked before anything is written)."""
    known = all_rules()
    if args.rules and not set(args.rules) <= set(known):
        return f"unknown rule(s) {sorted(set(args.rules) - set(known))}; choose from {known}"
    if any(n is not None and n < 1 for n in (args.steps, args.cost_steps, args.cost_rounds)):
        return "--steps, --cost-steps and --cost-rounds must be positive"
    if args.no_grid and not args.cost:
        return "--no-grid runs nothing without --cost"
    error = driver.check(args, EXPERIMENT)
    if error or args.report_only or args.no_grid or PEER not in (args.rules or []):
        return error
    from rtrl_rl.bench.popgym_peer import sb3_missing

    json_path, _ = EXPERIMENT.paths(args)
    if not args.resume:
        return (f"{PEER} trains for the best RTRL rule's mean wall time per run in the saved result: "
                f"it needs --resume (and {json_path} holding finished {BEST_RTRL} runs)")
    if best_wall_s(record.load(json_path)) is None:
        return (f"{PEER} trains for the best RTRL rule's mean wall time per run, and {json_path} holds no finished "
                f"{BEST_RTRL} run yet: run --rules {BEST_RTRL} first")
    return sb3_missing()


def build_grid(args: argparse.Namespace) -> Grid:
    """The training cells the arguments ask for: the named grid, then --tasks, --rules, --seeds, --steps."""
    g = GRIDS[args.grid]()
    return popgym.narrowed(g, args, [r for r in (args.rules or g.rules) if r != PEER])


def run(args: argparse.Namespace) -> int:
    """Measure (unless ``--report-only``), then write the JSON, the page and the charts."""
    from rtrl_rl.bench.popgym_protocol_page import write_page

    error = _refused(args)
    if error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    g, catalog = build_grid(args), rules()
    todo = [] if args.no_grid else popgym.specs(g, catalog)
    if PEER in (args.rules or []) and not args.no_grid and not args.report_only:
        json_path, _ = EXPERIMENT.paths(args)
        todo += peer_specs(g.tasks, g.seeds, round(best_wall_s(record.load(json_path)), 1))

    def settings(data: dict) -> None:
        from rtrl_rl.bench.popgym_peer import N_ENVS, peer_versions

        data["meta"]["versions"] |= peer_versions()
        data["meta"].setdefault("peer", f"SB3-contrib defaults (n_steps 128, batch 128, 10 epochs, lr 3e-4, LSTM 256), "
                                        f"{N_ENVS} envs, trained for the best RTRL rule's mean wall time per run")

    def cost(data: dict) -> None:
        if args.cost:
            data["cost"] = measure_cost(args.cost_task, catalog, args.cost_steps, args.cost_rounds, g.extra)

    return driver.drive(EXPERIMENT, args, describe=describe(g, catalog), specs=todo, runner=run_task,
                        write_page=write_page, before=settings, after=cost)

