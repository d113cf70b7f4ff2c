"""``python -m benchmarks.popgym``: the POPGym grid (and the peer), then the page and plots.

Top to bottom: record the machine and versions; run the grid on the memory experiment's
process pool, saving the JSON after every run; write ``results_popgym.md`` and the plots.
``--report-only`` rebuilds the page from the saved JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from rtrl_rl.experiments import popgym as pg
from rtrl_rl.experiments.cli import _load, machine, stamp_cpu, versions
from rtrl_rl.experiments.memory import run_grid
from rtrl_rl.experiments.popgym_report import write_page

JSON_NAME = "popgym.json"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line (validated before anything runs: bad input exits 2)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.popgym", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 tasks, 1 seed, 1M steps (the default is the full "
                        "grid: 13 tasks, 3 seeds, 3M steps)")
    parser.add_argument("--tasks", nargs="+", choices=list(pg.TASKS), help="only these tasks")
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds (default: the grid's)")
    parser.add_argument("--steps", type=int, help="environment steps per run (default: the grid's)")
    parser.add_argument("--rtrl-cores", nargs="+", default=pg.RTRL_CORES,
                        help=f"RTRL cores, one rule each (default {' '.join(pg.RTRL_CORES)})")
    parser.add_argument("--rules", nargs="+", help="only these rules (names as in the JSON, e.g. rtrl-elstm)")
    parser.add_argument("--peer", action="store_true", help="also run SB3-contrib RecurrentPPO on every task "
                        "(needs the [peers] extra)")
    parser.add_argument("--peer-steps", type=int, help="the peer's steps per run (default: the grid's budget)")
    parser.add_argument("--peer-wall-s", type=float, default=0.0, help="stop each peer run after this many seconds "
                        "of training (for a comparison at equal wall time: the RTRL runs' wall time per run)")
    parser.add_argument("--append", action="store_true", help="add this invocation's runs to the saved JSON "
                        "instead of starting anew; runs it already holds (same task, rule and seed, no error) are "
                        "not run again, so an interrupted grid resumes")
    parser.add_argument("--no-grid", action="store_true", help="run none of the grid's rules: only --peer and "
                        "--recall")
    parser.add_argument("--recall", action="store_true", help="also compare wall time to 95%% greedy success "
                        "on memory:recall (rtrl-rl train defaults against the peer)")
    parser.add_argument("--recall-peer-steps", type=int, default=300_000, help="the peer's budget on recall")
    parser.add_argument("--cost", action="store_true", help="also measure the wall time per step of the best "
                        "RTRL rule against the episode-long TBPTT LSTM side by side in this process (alternating "
                        "short runs on the long-dependency tasks, or on --tasks)")
    parser.add_argument("--cost-steps", type=int, default=None, help="environment steps of each short run of "
                        "--cost (default 100,000)")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="runs at a time")
    parser.add_argument("--out", default="docs/results", help="folder of the JSON and the plots")
    parser.add_argument("--md", default=None, help="the page (default: results_popgym.md beside --out)")
    parser.add_argument("--work-dir", default=None, help="keep the run directories here (default: a temp dir)")
    parser.add_argument("--report-only", action="store_true", help="rebuild the page from the saved JSON")
    parser.add_argument("--join", nargs="+", metavar="JSON", help="with --report-only: first add the runs of these "
                        "saved results (other invocations' popgym.json, the same step budget) to the saved JSON")
    parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # the tests' plumbing grid
    args = parser.parse_args(argv)
    from rtrl_rl.agents.cores import CORES

    bad = [c for c in args.rtrl_cores if c not in CORES]
    if bad:
        parser.error(f"unknown core(s) {bad}; choose from {sorted(CORES)}")
    if (args.peer or args.recall) and not args.report_only:
        from rtrl_rl.experiments.peers import sb3_missing

        if sb3_missing():
            parser.error(sb3_missing())
    if args.jobs < 1 or any(n is not None and n < 1 for n in (args.steps, args.cost_steps)) or args.peer_wall_s < 0:
        parser.error("--jobs, --steps and --cost-steps must be positive, --peer-wall-s not negative")
    if args.no_grid and not (args.peer or args.recall or args.cost):
        parser.error("--no-grid runs nothing without --peer, --recall or --cost")
    if args.join and not args.report_only:
        parser.error("--join goes with --report-only")
    missing = [j for j in args.join or [] if not Path(j).is_file()]
    if missing:
        parser.error(f"--join: no such file {missing[0]}")
    if (args.append or args.report_only) and not (Path(args.out) / JSON_NAME).exists():
        parser.error(f"{'--append' if args.append else '--report-only'}: there is no {Path(args.out) / JSON_NAME} "
                     "(a saved result of this benchmark; --out names its folder)")
    known = set(pg.rules(args.rtrl_cores))
    if args.rules and not set(args.rules) <= known:
        parser.error(f"unknown rule(s) {sorted(set(args.rules) - known)}; choose from {sorted(known)}")
    return args


def build_grid(args: argparse.Namespace) -> pg.Grid:
    """The grid the arguments ask for."""
    grid = pg.tiny_grid() if args.tiny else (pg.quick_grid if args.quick else pg.full_grid)(args.rtrl_cores)
    if args.tasks:
        grid.tasks = list(args.tasks)
    if args.seeds:
        grid.seeds = list(args.seeds)
    if args.steps:
        grid.total_steps = args.steps
    if args.rules:
        grid.rules = {k: v for k, v in pg.rules(args.rtrl_cores).items() if k in args.rules}
    return grid


def command_line(argv: list[str]) -> str:
    """The command as typed (the page leaves out the options that only place files)."""
    return " ".join(["python -m benchmarks.popgym", *argv])


def main(argv: list[str] | None = None) -> int:
    """Measure (unless ``--report-only``), then write the JSON, the page and the plots."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    out = Path(args.out)
    md = Path(args.md) if args.md else out.parent / "results_popgym.md"
    json_path = out / JSON_NAME
    if args.report_only:
        data = json.loads(json_path.read_text())
        for other in map(Path, args.join or []):
            data = join(data, json.loads(other.read_text()))
        data["meta"]["json"] = str(json_path)
        data["meta"]["report_command"] = f"python -m benchmarks.popgym --report-only --out {args.out}"
        if args.join:
            write_json(json_path, data)
        print("wrote", *map(str, write_page(data, out, md)))
        return 0
    out.mkdir(parents=True, exist_ok=True)
    grid = build_grid(args)
    start = time.perf_counter()
    specs = [] if args.no_grid else grid.specs()
    peer_steps = args.peer_steps or grid.total_steps
    if args.peer:
        specs += pg.peer_specs(grid.tasks, grid.seeds, peer_steps, args.peer_wall_s)
    if args.recall:
        specs += pg.recall_specs(args.recall_peer_steps, grid.seeds[:1])
    from rtrl_rl.experiments.peers import N_ENVS

    data = {"meta": {
        "command": command_line(argv), "report_command": f"python -m benchmarks.popgym --report-only --out {args.out}",
        "json": str(json_path), "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "jobs": args.jobs,
        "machine": machine(), "versions": versions() | _peer_versions(),
        "peer": f"SB3-contrib defaults (n_steps 128, batch 128, 10 epochs, lr 3e-4, LSTM 256), {N_ENVS} envs, "
                + (f"{args.peer_wall_s:.0f} s of training per run (at most {peer_steps:,} steps)" if args.peer_wall_s
                   else f"{peer_steps:,} steps per run") + ("" if args.peer else " (not run in this invocation)"),
        "recall": pg.RECALL, "not_measured": _not_measured(grid, args, peer_steps)},
        "grid": {"name": grid.name, "tasks": grid.tasks, "seeds": grid.seeds, "total_steps": grid.total_steps,
                 "segment_length": pg.SEGMENT_LENGTH, "window_steps": pg.WINDOW_STEPS, "shared": pg.SHARED,
                 "rules": {r: {"label": lab, "overrides": o} for r, (lab, o) in grid.rules.items()},
                 "episodes": {t: pg.TASKS[t].episode for t in grid.tasks}},
        "runs": []}

    if args.append:
        data = append_to(json.loads(json_path.read_text()), data)
        saved = {(r["task"], r["rule"], r["seed"]) for r in data["runs"] if "error" not in r}
        specs = [s for s in specs if (s["task"], s["rule"], s["seed"]) not in saved]

    done: list[dict] = []

    def save(result: dict) -> None:
        stamp_cpu([result], data["meta"]["machine"]["cpu"])
        done.append(result)
        same = (result["task"], result["rule"], result["seed"])
        data["runs"] = [r for r in data["runs"] if (r["task"], r["rule"], r["seed"]) != same] + [result]
        status = (result.get("error", "").strip().splitlines()[-1:]
                  or [f"MMER {result.get('mmer')}, final {result.get('final_return')}, "
                      f"to-target {result.get('time_to_target_s')}"])
        print(f"[{len(done)}/{len(specs)}] {result['task']} {result['rule']} seed {result['seed']}: "
              f"{status[0]} ({result.get('wall_s') or 0:.0f} s)", flush=True)
        write_json(json_path, data)

    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="popgym-grid-"))
    work.mkdir(parents=True, exist_ok=True)
    run_grid(_Specs(specs), work, jobs=args.jobs, on_result=save, runner=pg.run_task)
    if args.cost:
        from rtrl_rl.experiments import popgym_cost

        tasks = [t for t in popgym_cost.LONG_TASKS if t in grid.tasks] or list(grid.tasks)
        data["cost"] = popgym_cost.measure(tasks, steps=args.cost_steps or popgym_cost.COST_STEPS, extra=grid.extra)
        write_json(json_path, data)
    took = time.perf_counter() - start
    data["meta"].update(wall_s=took + data["meta"].get("wall_s_earlier", 0.0))
    data["meta"]["machine"]["load_end"] = _load()
    files = write_page(data, out, md)
    write_json(json_path, data)
    print(f"done in {took:.0f} s; wrote", *map(str, files))
    return 1 if any("error" in r for r in done) else 0


def write_json(path: Path, data: dict) -> None:
    """Save the result on one line: a full grid's curves are tens of thousands of points
    (``run_task`` rounds them), which indentation would make several times larger."""
    path.write_text(json.dumps(data, separators=(",", ":")))


def append_to(saved: dict, new: dict) -> dict:
    """``new`` (an invocation's fresh data, no runs yet) joined to ``saved``: runs, tasks, seeds
    and rules of both, the invocations' commands listed in order; the peer and recall settings
    and the not-measured notes are kept from whichever invocation ran them.

    Runs of one grid must share a step budget and the shared settings of every run, so a
    different ``--steps`` (or a saved result from before the shared settings changed) is refused.
    """
    if saved["grid"]["total_steps"] != new["grid"]["total_steps"]:
        raise SystemExit(f"--append: the saved grid ran {saved['grid']['total_steps']:,} steps per run, this "
                         f"invocation {new['grid']['total_steps']:,}; runs of one page share one budget")
    if saved["grid"].get("shared", []) != new["grid"].get("shared", []):
        raise SystemExit(f"--append: the saved grid's runs share the settings {saved['grid'].get('shared', [])}, "
                         f"this invocation's {new['grid'].get('shared', [])}; runs of one page share them")
    joined = json.loads(json.dumps(saved))
    meta, g = joined["meta"], joined["grid"]
    stamp_cpu(joined["runs"], meta["machine"]["cpu"])  # before the machine becomes the new invocation's
    meta["command"] = f"{meta['command']}; then {new['meta']['command']}"
    # a finished invocation's wall_s already holds the invocations before it (see main)
    meta["wall_s_earlier"] = meta.pop("wall_s", meta.get("wall_s_earlier", 0.0))
    meta["machine"] = new["meta"]["machine"] | {"load_start": meta["machine"]["load_start"]}
    meta["versions"] = meta["versions"] | new["meta"]["versions"]
    if "not run in this invocation" not in new["meta"]["peer"]:
        meta["peer"] = new["meta"]["peer"]
    meta["not_measured"] = new["meta"]["not_measured"]
    g["tasks"] = [t for t in pg.TASKS if t in g["tasks"] or t in new["grid"]["tasks"]]
    g["seeds"] = sorted(set(g["seeds"]) | set(new["grid"]["seeds"]))
    g["rules"] = g["rules"] | new["grid"]["rules"]
    g["episodes"] = {t: pg.TASKS[t].episode for t in g["tasks"]}
    return joined


def join(saved: dict, other: dict) -> dict:
    """Another invocation's finished result added to ``saved`` (see :func:`append_to`): its runs
    replace saved runs of the same task, rule and seed, and its wall time adds to the total."""
    other = {**other, "runs": stamp_cpu(json.loads(json.dumps(other["runs"])), other["meta"]["machine"]["cpu"])}
    joined = append_to(saved, {**other, "runs": []})
    joined["meta"]["wall_s"] = joined["meta"].pop("wall_s_earlier") + other["meta"].get("wall_s", 0.0)
    keys = {(r["task"], r["rule"], r["seed"]) for r in other["runs"]}
    joined["runs"] = [r for r in joined["runs"] if (r["task"], r["rule"], r["seed"]) not in keys] + other["runs"]
    if "cost" in other:
        joined["cost"] = other["cost"]
    return joined


class _Specs:
    """A ready spec list in the shape ``run_grid`` takes (anything with ``specs()``)."""

    def __init__(self, specs: list[dict]) -> None:
        self._specs = specs

    def specs(self) -> list[dict]:
        return self._specs


def _peer_versions() -> dict:
    try:
        import sb3_contrib
        import stable_baselines3
    except ImportError:
        return {}
    return {"sb3_contrib": sb3_contrib.__version__, "stable_baselines3": stable_baselines3.__version__}


def _not_measured(grid: pg.Grid, args: argparse.Namespace, peer_steps: int) -> list[str]:
    notes = []
    if grid.name != "full" or grid.tasks != list(pg.TASKS):
        notes.append("The full grid (13 tasks x every rule x 3 seeds x 3M steps: `python -m benchmarks.popgym "
                     "--peer --recall`) is not on this page.")
    if not args.peer:
        notes.append("The peer (SB3-contrib RecurrentPPO) did not run on the POPGym tasks in this invocation "
                     "(`--peer`).")
    elif args.peer_wall_s:
        notes.append(f"The peer trained for {args.peer_wall_s:.0f} s per run (then one greedy evaluation), not the "
                     f"grid's {grid.total_steps:,} steps: the comparison with it is at equal wall time (its steps "
                     "are in the wall-time table).")
    elif peer_steps != grid.total_steps:
        notes.append(f"The peer ran {peer_steps:,} steps per run, not the grid's {grid.total_steps:,}: at its "
                     "measured throughput (table) the same budget would not fit this invocation.")
    notes.append("Sample Factory: not run. Its latest release (sample-factory 2.1.1, fetched with pip download "
                 "--no-deps) requires gymnasium<1.0 (and numpy<2.0, wandb, opencv-python, pyglet); this library "
                 "needs gymnasium>=1.0, so installing it would replace a core dependency.")
    return notes
