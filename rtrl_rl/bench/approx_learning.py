"""``rtrl-rl bench approx-learning``: the dense LSTM trained by each learning rule, and its page section.

Runs the grid of :mod:`rtrl_rl.experiments.approx_learning` one process at a time (by
default), appends every finished run to the JSON at once (so an interrupted grid keeps
what it measured, and ``--resume`` runs only what is missing), then writes the
"Learning with them" section of ``docs/approximations.md`` from that JSON.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from rtrl_rl.experiments import approx_learning as al

DEFAULT_JSON = "docs/results/approx_learning.json"
DEFAULT_DOC = "docs/approximations.md"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the benchmark's arguments to ``parser``."""
    parser.add_argument("--grid", choices=sorted(al.GRIDS), default="full",
                        help="full: 3 seeds, 200k steps per memory run, 100k per POPGym run; long: recall-blank "
                             "only, 2M steps, 3 seeds (its JSON and subsection sit beside the full grid's); "
                             "quick: 1 seed, half the steps; tiny: seconds, for tests")
    parser.add_argument("--quick", action="store_true", help="same as --grid quick")
    parser.add_argument("--jobs", type=int, default=1, help="training processes at a time (default 1)")
    parser.add_argument("--json", default=None, help=f"results JSON (default {DEFAULT_JSON}; with --grid long "
                        f"{al.LONG_JSON_NAME} in the same folder)")
    parser.add_argument("--doc", default=DEFAULT_DOC, help=f"page whose section is (re)written (default {DEFAULT_DOC})")
    parser.add_argument("--work-dir", default=None, help="run directories (default: a temporary directory)")
    parser.add_argument("--resume", action="store_true", help="keep the runs already in --json, run the rest")
    parser.add_argument("--report-only", action="store_true", help="rewrite the section from --json; train nothing")


def command_line(args: argparse.Namespace) -> str:
    """The command as a user types it (the page prints it)."""
    parts = ["rtrl-rl bench approx-learning"]
    if args.grid != "full":
        parts.append(f"--grid {args.grid}")
    if args.json != default_json(args.grid):
        parts.append(f"--json {args.json}")
    if args.doc != DEFAULT_DOC:
        parts.append(f"--doc {args.doc}")
    return " ".join(parts)


def default_json(grid: str) -> str:
    """Where a grid's results go unless ``--json`` says: the long grid beside the full one."""
    return str(Path(DEFAULT_JSON).with_name(al.LONG_JSON_NAME)) if grid == "long" else DEFAULT_JSON


def results_of_page(json_path: Path, data: dict) -> tuple[dict | None, dict | None]:
    """(the full grid's results, the long grid's) for the section: ``data`` is one of them, the
    other is read from its file beside ``json_path`` (None where it has not been run)."""
    is_long = data["grid"]["name"] == "long"
    other = json_path.with_name(Path(DEFAULT_JSON).name if is_long else al.LONG_JSON_NAME)
    other_data = json.loads(other.read_text()) if other.exists() and other != json_path else None
    return (other_data, data) if is_long else (data, other_data)


def _key(run: dict) -> tuple:
    return run["task"], run["rule"], run["seed"]


def run(args: argparse.Namespace) -> int:
    """Measure (unless ``--report-only``), then write the JSON and the page section."""
    if args.quick:
        args.grid = "quick"
    if args.jobs < 1:
        print("error: --jobs must be >= 1")
        return 2
    args.json = args.json or default_json(args.grid)
    json_path, doc = Path(args.json), Path(args.doc)
    if args.report_only:
        from rtrl_rl.bench.approx_learning_page import write_section

        write_section(doc, *results_of_page(json_path, json.loads(json_path.read_text())))
        print("wrote", doc)
        return 0
    from rtrl_rl.bench.approx_learning_page import finished
    from rtrl_rl.experiments.cli import _load, machine, stamp_cpu, versions
    from rtrl_rl.experiments.memory import run_grid
    from rtrl_rl.experiments.popgym_cli import _Specs

    grid = al.GRIDS[args.grid]
    data = None
    if args.resume and json_path.exists():
        data = json.loads(json_path.read_text())
        data["runs"] = [r for r in data["runs"] if finished(r)]
    if data is None or data["grid"] != grid.describe():
        data = {"meta": {"command": command_line(args), "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                         "jobs": args.jobs, "machine": machine(), "versions": versions()},
                "grid": grid.describe(), "runs": []}
    stamp_cpu(data["runs"], data["meta"]["machine"]["cpu"])  # a resumed grid's earlier runs: their machine
    here = machine()["cpu"]
    if data["runs"]:  # a resume: the page says how (and how many at a time) the rest ran
        data["meta"].setdefault("resumes", []).append(
            {"command": command_line(args) + " --resume", "jobs": args.jobs, "cpu": here,
             "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")})
    done = {_key(r) for r in data["runs"]}
    todo = [s for s in grid.specs() if _key(s) not in done]
    json_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    def save(result: dict) -> None:
        data["runs"].append(stamp_cpu([result], here)[0])
        if "error" in result:
            status = result["error"].strip().splitlines()[-1]
        elif result["family"] == "memory":
            status = f"success {result['success_rate']:.3f}"
        else:
            status = f"MMER {result['mmer']}, final {result['final_return']}"
        print(f"[{len(data['runs'])}/{len(grid.specs())}] {result['task']} {result['rule']} seed {result['seed']}: "
              f"{status} ({result['process_wall_s']:.0f} s)", flush=True)
        data["meta"]["machine"]["load_end"] = _load()
        json_path.write_text(json.dumps(data, indent=1))

    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="approx-learning-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        run_grid(_Specs(todo), work, jobs=args.jobs, on_result=save, runner=al.run_spec)
    finally:
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)
    data["meta"]["wall_s"] = data["meta"].get("wall_s", 0.0) + time.perf_counter() - started
    json_path.write_text(json.dumps(data, indent=1))
    # imported late: a grid runs for long, and the page is written with the code of its end
    from rtrl_rl.bench.approx_learning_page import write_section

    write_section(doc, *results_of_page(json_path, data))
    print(f"done in {time.perf_counter() - started:.0f} s; wrote {json_path} and {doc}")
    return 1 if any("error" in r for r in data["runs"]) else 0


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.approx_learning`` entry point."""
    parser = argparse.ArgumentParser(prog="benchmarks.approx_learning", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))
