"""``rtrl-rl bench popgym``: the library's learning rules side by side on POPGym's memory tasks, 3M steps.

The grid: (task, rule, seed), each cell a plain ``rtrl-rl train`` run with the same budget
of environment steps, TensorBoard on (the training curve) and one greedy evaluation at
the end; the metric is POPGym's MMER plus that final return. ``--peer`` adds SB3-contrib
RecurrentPPO on the same tasks, ``--recall`` the wall time to 95 % greedy success on the
default task, ``--cost`` the wall time per step of the best RTRL rule against the
episode-long BPTT baseline measured side by side. The page is ``docs/results_popgym_3m.md``.

The tasks, the rules' settings, a cell's spec and its run (:func:`spec`, :func:`measure_cell`)
are also those of ``rtrl-rl bench popgym-protocol`` (:mod:`rtrl_rl.bench.popgym_protocol`),
the paper's 15M-step protocol.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from rtrl_rl.bench import driver, popgym_cost
from rtrl_rl.bench.curves import WINDOW_STEPS, mmer, training_curve
from rtrl_rl.bench.grid import SEGMENT_LENGTH, Block, Budget, Cell, Grid, plan
from rtrl_rl.bench.pool import cell_dir, failure, train_cell
from rtrl_rl.bench.popgym_targets import BEST_RTRL, LONG_TASKS, PEER


@dataclass(frozen=True)
class Task:
    """A POPGym task: its ``popgym:`` name, its longest episode in steps and what memory it needs.

    ``episode`` is popgym's ``max_episode_length`` (HigherLower and Concentration do not define
    it: 51 and 104, their decks' lengths, measured with random play); it is the segment of the
    episode-long BPTT rule."""

    name: str
    episode: int
    why: str


TASKS: dict[str, Task] = {t.name: t for t in [
    Task("RepeatPreviousEasy", 51, "output the card seen 4 steps ago"),
    Task("RepeatFirstEasy", 51, "output the first card of the episode"),
    Task("AutoencodeEasy", 103, "watch a sequence, then play it back in reverse"),
    Task("CountRecallEasy", 51, "how often has this card been seen"),
    Task("HigherLowerEasy", 51, "will the next card be higher (counting cards helps)"),
    Task("ConcentrationEasy", 104, "remember face-down cards to find pairs"),
    Task("PositionOnlyCartPoleEasy", 200, "infer the velocities from positions"),
    Task("NoisyPositionOnlyCartPoleEasy", 200, "the same with noisy positions"),
    Task("VelocityOnlyCartpoleEasy", 200, "infer the positions from velocities"),
    Task("MineSweeperEasy", 14, "remember the revealed cells"),
    Task("BattleshipEasy", 64, "remember the shots and hits"),
    Task("MultiarmedBanditEasy", 200, "remember which arm paid"),
    Task("RepeatPreviousMedium", 103, "output the card seen 32 steps ago (beyond any cheap segment)"),
]}


class Rule(NamedTuple):
    """A learning rule of the grid: its label, its overrides and its segment length (an
    int, or ``"episode"``: the task's longest episode).

    A rule with a ``config`` (a ready config's name, ``popgym/replica_cpu``) runs that config
    as written, its segment and its settings, under the rule's overrides: neither
    :data:`SHARED` nor ``segment`` applies to it. The others run the library's defaults under
    :data:`SHARED`, the segment and the overrides."""

    label: str
    overrides: list[str]
    segment: int | str = SEGMENT_LENGTH
    config: str | None = None


#: the RTRL cores of the grid, one rule each (``rtrl-<core>``); another exact core joins with
#: ``--rtrl-cores elstm mingru <name>`` (any name ``agent.core`` accepts)
RTRL_CORES = ["lru", "elstm", "mingru"]
#: RTRL's input-gradient setting on POPGym: the ``step`` default starves the encoder here
RTRL_EXTRA = ["agent.encoder_grad=segment"]
#: settings of every run of every rule (before the rule's own overrides). POPGym's per-step
#: rewards are small (±1/episode length), so the default entropy cost 0.01 outweighs the policy
#: gradient; 0.001 was chosen on RepeatFirstEasy and CountRecallEasy (for RTRL lru and TBPTT LSTM
#: alike: the page's "Levers" table) and held fixed for all tasks.
SHARED = ["train.entropy_cost=0.001"]
#: the best RTRL agent found (the rule the targets judge): lru with the input mixer (a linear
#: recurrence needs a non-linear layer to store an input gated by the episode start). Chosen on
#: RepeatFirstEasy, CountRecallEasy and MineSweeperEasy (the levers on the page); LayerNorm on the
#: core output kept lru from diverging on MineSweeperEasy but cost RepeatFirstEasy 0.5 of MMER.
BEST_OVERRIDES = ["agent.core=lru", "agent.learning=rtrl", *RTRL_EXTRA, "agent.input_mixer=true"]

#: the starting point of the protocol's selection (the ``sel-*`` levers)
SELECTION_BASE = ["agent.input_mixer=true", "train.truncation_bootstrap=false"]
#: variants of the RTRL LRU rule (the levers tried on the tuning tasks): name -> (what changes, overrides)
LEVERS: dict[str, tuple[str, list[str]]] = {
    "identity-encoder": ("no encoder (one-hot observation straight into the core)", ["agent.encoder=identity"]),
    "step-encoder-grad": ("encoder gradient of the same step only", ["agent.encoder_grad=step"]),
    "two-layers": ("a stack of two LRU layers", ["agent.core_layers=2"]),
    "start-flag": ("an episode-start flag as input", ["agent.start_flag=true"]),
    "wide": ("n = 128 units", ["agent.hidden_size=128"]),
    "lr-1e-3": ("Adam learning rate 1e-3", ["train.lr=0.001"]),
    "input-mixer": ("a ReLU layer over the whole step input before the core", ["agent.input_mixer=true"]),
    "core-norm": ("LayerNorm on the core output", ["agent.core_norm=true"]),
    "mixer-norm": ("the input mixer and LayerNorm on the core output",
                   ["agent.input_mixer=true", "agent.core_norm=true"]),
    # tried on MineSweeperEasy, where the best rule (the mixer) stays below TBPTT LSTM and diverges once
    "mixer-wide": ("the input mixer, n = 128 units", ["agent.input_mixer=true", "agent.hidden_size=128"]),
    "mixer-lr-1e-3": ("the input mixer, Adam learning rate 1e-3", ["agent.input_mixer=true", "train.lr=0.001"]),
    "mixer-two-layers": ("the input mixer, a stack of two LRU layers", ["agent.input_mixer=true", "agent.core_layers=2"]),
    # the 15M-step protocol's selection, on RepeatFirstEasy, CountRecallEasy and MineSweeperEasy: one change
    # at a time from the best rule without the truncation bootstrap (POPGym truncates every episode at a
    # fixed length that the observation does not show, so bootstrapping there teaches a value of steps that
    # never come; with it, MineSweeperEasy's losses grew to 1e19)
    **{f"sel-{name}": (what, [*SELECTION_BASE, *extra]) for name, (what, extra) in {
        "base": ("selection base (input mixer, no truncation bootstrap)", []),
        "ppo": ("selection base + PPO instead of V-trace", ["agent.algorithm=ppo"]),
        "popgym-net": ("selection base + POPGym's encoder and heads", ["agent.encoder=popgym", "agent.heads=popgym"]),
        "ring-0-1": ("selection base + the ring init r_min 0, r_max 1", ["agent.ring_r_min=0", "agent.ring_r_max=1"]),
        "recurrent-lr-0.1": ("selection base + lr x 0.1 on the recurrent parameters", ["train.recurrent_lr_scale=0.1"]),
        "value-norm": ("selection base + LayerNorm before the value head", ["agent.value_norm=true"]),
        "entropy-decay": ("selection base + the entropy cost decayed to 0", ["train.entropy_decay=true"]),
        "wide": ("selection base + n = 128 units", ["agent.hidden_size=128"]),
        "two-layers": ("selection base + a stack of two LRU layers", ["agent.core_layers=2"]),
    }.items()},
}
#: variants of every grid rule (``<rule>+<lever>``): the shared settings put back to the library's
SHARED_LEVERS: dict[str, tuple[str, list[str]]] = {
    "entropy-1e-2": ("entropy cost 0.01 (the library's default)", ["train.entropy_cost=0.01"]),
}

PEER_LABEL = "SB3-contrib RecurrentPPO (MlpLstmPolicy)"
#: the embedded default task, on which wall time to 95% greedy success is compared
RECALL = {"spec": "memory:recall", "options": {"delay": 40, "num_symbols": 4, "distractors": True},
          "target": 0.95, "eval_interval_steps": 20_000, "eval_episodes": 256}
#: what no invocation here measures, and why
NOT_MEASURED = ["Sample Factory: not run. Its latest release (sample-factory 2.1.1) requires gymnasium<1.0 (and "
                "numpy<2.0, wandb, opencv-python, pyglet); this library needs gymnasium>=1.0, so installing it "
                "would replace a core dependency."]


def rules(rtrl_cores: list[str] | None = None) -> dict[str, Rule]:
    """Every rule: the grid's, then one ``rtrl-lru+<lever>`` per :data:`LEVERS` entry and one
    ``<rule>+<lever>`` per grid rule and :data:`SHARED_LEVERS` entry (``--rules`` runs them)."""
    out = {BEST_RTRL: Rule("RTRL lru, input mixer", BEST_OVERRIDES)}
    out.update({f"rtrl-{core}": Rule(f"RTRL {core}", [f"agent.core={core}", "agent.learning=rtrl", *RTRL_EXTRA])
                for core in (rtrl_cores or RTRL_CORES)})
    out["tbptt-lstm"] = Rule(f"TBPTT LSTM (T = {SEGMENT_LENGTH})", ["agent.core=lstm", "agent.learning=tbptt"])
    out["tbptt-gru"] = Rule(f"TBPTT GRU (T = {SEGMENT_LENGTH})", ["agent.core=gru", "agent.learning=tbptt"])
    out["tbptt-lstm-episode"] = Rule("TBPTT LSTM (T = episode)", ["agent.core=lstm", "agent.learning=tbptt"], "episode")
    out["feedforward"] = Rule("feed-forward", ["agent.core=none", "agent.learning=none"])
    lru = ["agent.core=lru", "agent.learning=rtrl", *RTRL_EXTRA]
    base = dict(out)
    out.update({f"rtrl-lru+{name}": Rule(f"RTRL lru, {what}", [*lru, *extra]) for name, (what, extra) in LEVERS.items()})
    out.update({f"{name}+{lever}": Rule(f"{r.label}, {what}", [*r.overrides, *extra], r.segment)
                for name, r in base.items() for lever, (what, extra) in SHARED_LEVERS.items()})
    return out


def grid_rules(rtrl_cores: list[str] | None = None) -> list[str]:
    """The rules a grid runs unless ``--rules`` names others: all but the levers."""
    return [k for k in rules(rtrl_cores) if "+" not in k]


def grid(name: str, tasks: list[str], rule_names: list[str], seeds: list[int], steps: int,
         eval_episodes: int = 256, extra: list[str] | None = None) -> Grid:
    """Every task x rule x seed at one budget; seed-major, so the rules of a task run side by
    side (under the same load, so their wall times compare) and a stopped grid has whole seeds."""
    return Grid(name, [Block(tuple(tasks), tuple(rule_names), Budget(steps, 0, eval_episodes, tensorboard=True))],
                seeds, list(extra or []))


GRIDS = {
    # every task, every rule, 3 seeds, 3M steps per run
    "full": lambda cores=None: grid("full", list(TASKS), grid_rules(cores), [0, 1, 2], 3_000_000),
    # a dependency inside the segment, one beyond it, counting; one seed, 1M steps
    "quick": lambda cores=None: grid("quick", ["RepeatPreviousEasy", "RepeatFirstEasy", "CountRecallEasy"],
                                     grid_rules(cores), [0], 1_000_000),
    # seconds long, for the tests of the plumbing
    "tiny": lambda cores=None: grid("tiny", ["RepeatPreviousEasy", "MineSweeperEasy"],
                                    ["rtrl-elstm", "tbptt-lstm-episode"], [0], 2_560, 8, ["env.num_envs=16"]),
}
EXPERIMENT = driver.Experiment("popgym", "popgym.json", "results_popgym_3m.md", tuple(GRIDS), compact=True)


def segment(rule: Rule, task: str) -> int:
    """The segment length of ``rule`` on ``task`` (a config rule's: its config's)."""
    if rule.config is not None:
        from rtrl_rl.config import load_config
        from rtrl_rl.config import resolve_config_path

        return load_config(resolve_config_path(rule.config), rule.overrides).train.segment_length
    return TASKS[task].episode if rule.segment == "episode" else int(rule.segment)


def spec(cell: Cell, catalog: dict[str, Rule], extra: list[str]) -> dict:
    """One training run (env.id first: it resets env.options)."""
    rule = catalog[cell.rule]
    T = segment(rule, cell.task)
    env = f"env.id=popgym:{TASKS[cell.task].name}"
    settings = [env, *rule.overrides] if rule.config else [env, f"train.segment_length={T}", *SHARED, *rule.overrides]
    out = {"task": cell.task, "rule": cell.rule, "seed": cell.seed, "length": T,
           "total_steps": cell.block.budget.total_steps,
           "overrides": [*settings, *cell.block.budget.overrides(cell.seed), *extra]}
    return out | ({"config": rule.config} if rule.config else {})


def specs(g: Grid, catalog: dict[str, Rule] | None = None) -> list[dict]:
    catalog = catalog or rules()
    return g.specs(lambda cell: spec(cell, catalog, g.extra))


def peer_specs(tasks: list[str], seeds: list[int], total_steps: int, wall_s: float = 0.0) -> list[dict]:
    """The peer's runs: the grid's tasks and seeds, ``total_steps`` each, or (``wall_s > 0``)
    as many steps as ``wall_s`` seconds of training allow."""
    return [{"task": t, "rule": PEER, "seed": s, "kind": "peer", "total_steps": total_steps, "wall_s_budget": wall_s}
            for s in seeds for t in tasks]


def recall_specs(peer_steps: int, seeds: list[int]) -> list[dict]:
    """``rtrl-rl train`` (the defaults) and the peer on the default task, to 95% greedy success."""
    out = [{"task": "memory:recall", "rule": "rtrl-rl-default", "seed": s, "length": SEGMENT_LENGTH,
            "total_steps": 0, "overrides": [f"train.seed={s}", "train.threads=1", "log.progress=false",
                                            "log.tensorboard=false"]} for s in seeds]
    return out + [{"task": "memory:recall", "rule": PEER, "seed": s, "kind": "peer-recall", "total_steps": peer_steps}
                  for s in seeds]


def run_task(spec: dict, work_dir: str) -> dict:
    """One cell of this grid (see :func:`measure_cell`)."""
    return measure_cell(spec, work_dir)


def measure_cell(spec: dict, work_dir: str, window: int = WINDOW_STEPS, from_start: bool = False) -> dict:
    """One cell: a training run (then its curve, MMER over windows of ``window`` steps and final
    return) or a peer run. ``from_start``: the curve's wall times count from the run's start
    (its event file's opening) rather than from its first point."""
    started = time.time()
    result = train_cell(spec, work_dir) if spec.get("kind", "train") == "train" else _peer_cell(spec, work_dir)
    result["started_unix"] = round(started, 1)
    if "error" in result:
        return result
    if result["task"] == RECALL["spec"]:
        result["time_to_target_s"] = next((e["wall_s"] for e in result.get("evaluations", [])
                                           if (e.get("success_rate") or 0.0) >= RECALL["target"]), None)
        return result
    curve = result["curve"] if "curve" in result else training_curve(cell_dir(spec, work_dir), from_start)
    # wall times to 3 and returns to 5 decimals: the saved grid stays small, and MMER comes from what is saved
    result["curve"] = [[step, round(wall, 3), round(ret, 5)] for step, wall, ret in curve]
    result["mmer"] = mmer(result["curve"], window)
    result["final_return"] = (result["evaluations"][-1] if result.get("evaluations") else {}).get("mean_return")
    return result


def peer_command(spec: dict) -> str:
    """The command that runs the peer cell of ``spec`` again (and its recall partner)."""
    if spec["kind"] == "peer-recall":
        return f"rtrl-rl bench popgym --no-grid --recall --recall-peer-steps {spec['total_steps']} --seeds {spec['seed']}"
    budget = (f"--peer-wall-s {spec['wall_s_budget']:g}" if spec.get("wall_s_budget")
              else f"--peer-steps {spec['total_steps']}")
    return f"rtrl-rl bench popgym --no-grid --peer {budget} --tasks {spec['task']} --seeds {spec['seed']}"


def _peer_cell(spec: dict, work_dir: str) -> dict:
    """The peer on one task (``kind`` peer) or on the default task (``peer-recall``)."""
    from rtrl_rl.bench.popgym_peer import run_recurrent_ppo

    result = {k: spec[k] for k in ("task", "rule", "seed")}
    result["command"] = spec.get("command") or peer_command(spec)
    log = Path(work_dir) / f"{spec['task'].replace(':', '-')}-{spec['rule']}-s{spec['seed']}.log"
    with open(log, "w") as out, contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            if spec["kind"] == "peer":
                result.update(run_recurrent_ppo(f"popgym:{TASKS[spec['task']].name}", spec["total_steps"],
                                                spec["seed"], wall_budget_s=spec.get("wall_s_budget", 0.0)))
            else:
                result.update(run_recurrent_ppo(RECALL["spec"], spec["total_steps"], spec["seed"],
                                                options=RECALL["options"], eval_episodes=RECALL["eval_episodes"],
                                                eval_interval_steps=RECALL["eval_interval_steps"],
                                                target_success=RECALL["target"]))
        except Exception as error:  # noqa: BLE001 - reported in the results, never hidden
            result["error"] = failure(error)
    return result


def describe(g: Grid, catalog: dict[str, Rule]) -> dict:
    """The grid as plain data: tasks, the whole rule catalog (the page's order), the peer, and
    what the full and quick grids hold (the page's "Reproduce")."""
    full = GRIDS["full"]()
    budget = g.blocks[0].budget if g.blocks else full.blocks[0].budget
    described = {r: {"label": rule.label, "overrides": rule.overrides, "segment": rule.segment}
                 for r, rule in catalog.items()}
    return {"name": g.name, "tasks": g.tasks, "seeds": g.seeds, "total_steps": budget.total_steps,
            "segment_length": SEGMENT_LENGTH, "window_steps": WINDOW_STEPS, "shared": SHARED,
            "rules": {**described, PEER: {"label": PEER_LABEL, "overrides": [], "peer": True}},
            "episodes": {t: TASKS[t].episode for t in g.tasks}, "recall": RECALL,
            "plans": {"full": plan([*specs(full), *peer_specs(full.tasks, full.seeds, 0, 270.0)]),
                      "quick": plan(specs(GRIDS["quick"]()))}}


def measure_cost(g: Grid, catalog: dict[str, Rule], steps: int) -> dict:
    """The side-by-side cost measurement on the grid's long-dependency tasks (all its tasks
    when it has none): short runs without evaluation or TensorBoard."""
    tasks = [t for t in LONG_TASKS if t in g.tasks] or g.tasks
    cost_grid = grid("cost", tasks, list(popgym_cost.COST_RULES), [0], steps, eval_episodes=0,
                     extra=["log.tensorboard=false", *g.extra])
    return popgym_cost.measure(popgym_cost.by_task(specs(cost_grid, catalog)), steps)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The common arguments, the grid's narrowing, the peer, the recall and the cost."""
    driver.add_arguments(parser, EXPERIMENT)
    parser.add_argument("--tasks", nargs="+", choices=list(TASKS), help="only these tasks")
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds (default: the grid's)")
    parser.add_argument("--steps", type=int, help="environment steps per run (default: the grid's)")
    parser.add_argument("--rtrl-cores", nargs="+", default=RTRL_CORES,
                        help=f"RTRL cores, one rule each (default {' '.join(RTRL_CORES)})")
    parser.add_argument("--rules", nargs="+", help="only these rules (names as in the JSON, e.g. rtrl-elstm)")
    parser.add_argument("--peer", action="store_true", help="also run SB3-contrib RecurrentPPO on every task "
                        "(needs the [peers] extra)")
    parser.add_argument("--peer-steps", type=int, help="the peer's steps per run (default: the grid's budget)")
    parser.add_argument("--peer-wall-s", type=float, default=0.0, help="stop each peer run after this many seconds "
                        "of training")
    parser.add_argument("--no-grid", action="store_true", help="run none of the grid's rules: only --peer, --recall "
                        "and --cost")
    parser.add_argument("--recall", action="store_true", help="also compare wall time to 95%% greedy success "
                        "on memory:recall (rtrl-rl train defaults against the peer)")
    parser.add_argument("--recall-peer-steps", type=int, default=300_000, help="the peer's budget on recall")
    parser.add_argument("--cost", action="store_true", help="also measure the wall time per step of the best "
                        "RTRL rule against the episode-long TBPTT LSTM side by side in this process")
    parser.add_argument("--cost-steps", type=int, default=None, help="environment steps of each short run of "
                        "--cost (default 100,000)")


def _refused(args: argparse.Namespace) -> str | None:
    """Why these arguments cannot run (checked before anything is written)."""
    from rtrl_rl.agents.cores import CORES

    bad = [c for c in args.rtrl_cores if c not in CORES]
    if bad:
        return f"unknown core(s) {bad}; choose from {sorted(CORES)}"
    if any(n is not None and n < 1 for n in (args.steps, args.cost_steps, args.peer_steps)) or args.peer_wall_s < 0:
        return "--steps, --peer-steps and --cost-steps must be positive, --peer-wall-s not negative"
    if args.no_grid and not (args.peer or args.recall or args.cost):
        return "--no-grid runs nothing without --peer, --recall or --cost"
    known = set(rules(args.rtrl_cores))
    if args.rules and not set(args.rules) <= known:
        return f"unknown rule(s) {sorted(set(args.rules) - known)}; choose from {sorted(known)}"
    if (args.peer or args.recall) and not args.report_only:
        from rtrl_rl.bench.popgym_peer import sb3_missing

        return sb3_missing()
    return driver.check(args, EXPERIMENT)


def narrowed(g: Grid, args: argparse.Namespace, rule_names: list[str] | None = None) -> Grid:
    """``g`` as --tasks, --rules (or ``rule_names``), --seeds and --steps narrow it."""
    b = g.blocks[0]
    chosen = rule_names if rule_names is not None else args.rules or list(b.rules)
    return grid(g.name, args.tasks or list(b.tasks), chosen, args.seeds or g.seeds,
                args.steps or b.budget.total_steps, b.budget.eval_episodes, g.extra)


def build_grid(args: argparse.Namespace) -> Grid:
    """The grid the arguments ask for: the named one, then --tasks, --rules, --seeds, --steps."""
    return narrowed(GRIDS[args.grid](args.rtrl_cores), args)


def run(args: argparse.Namespace) -> int:
    """Measure (unless ``--report-only``), then write the JSON, the page and the charts."""
    from rtrl_rl.bench.popgym_page import write_page

    error = _refused(args)
    if error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    g, catalog = build_grid(args), rules(args.rtrl_cores)
    budget = g.blocks[0].budget.total_steps
    todo = [] if args.no_grid else specs(g, catalog)
    peer_steps = args.peer_steps or budget
    if args.peer:
        todo += peer_specs(g.tasks, g.seeds, peer_steps, args.peer_wall_s)
    if args.recall:
        todo += recall_specs(args.recall_peer_steps, g.seeds[:1])

    def settings(data: dict) -> None:
        from rtrl_rl.bench.popgym_peer import N_ENVS, peer_versions

        data.setdefault("not_measured", NOT_MEASURED)
        data["meta"]["versions"] |= peer_versions()
        if args.peer:
            data["meta"]["peer"] = (f"SB3-contrib defaults (n_steps 128, batch 128, 10 epochs, lr 3e-4, LSTM 256), "
                                    f"{N_ENVS} envs, " + (f"{args.peer_wall_s:.0f} s of training per run (at most "
                                                          f"{peer_steps:,} steps)" if args.peer_wall_s else
                                                          f"{peer_steps:,} steps per run"))

    def cost(data: dict) -> None:
        if args.cost:
            data["cost"] = measure_cost(g, catalog, args.cost_steps or popgym_cost.COST_STEPS)

    return driver.drive(EXPERIMENT, args, describe=describe(g, catalog), specs=todo, runner=run_task,
                        write_page=write_page, before=settings, after=cost)
