"""``python -m benchmarks.memory``: run the memory grid and the cost benchmarks, write the report.

Top to bottom: record the machine and versions; run ``rtrl-rl bench cores`` and
``rtrl-rl bench runtime`` (before the grid, so they do not compete with it); run the grid
on a process pool, saving the JSON after every run; write ``results.md`` and the plots.
``--report-only`` skips the measuring and rebuilds the page from the saved JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rtrl_rl.experiments import costs
from rtrl_rl.experiments.memory import FULL, GRIDS, grid_description, hyperparameters, plan, run_grid
from rtrl_rl.experiments.report import write_report

JSON_NAME = "memory.json"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line; --quick is shorthand for --grid quick."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the quick grid (same as --grid quick)")
    parser.add_argument("--grid", choices=sorted(GRIDS), default="full", help="which grid to run (default full)")
    parser.add_argument("--out", default="docs/results", help="folder of the JSON and the plots")
    parser.add_argument("--md", default=None, help="the page to write (default: results.md beside --out)")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="runs at a time")
    parser.add_argument("--skip-bench", action="store_true", help="do not run the cost benchmarks")
    parser.add_argument("--bench-timeout", type=float, default=600.0, help="seconds allowed per benchmark")
    parser.add_argument("--work-dir", default=None, help="keep the runs' directories here (default: a temp dir)")
    parser.add_argument("--report-only", action="store_true", help="rebuild the page from the saved JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.grid = "quick"
    return args


def machine() -> dict:
    """Cores, CPU model, memory, GPU and load: what the wall times depend on."""
    cpu, mem = platform.processor() or "unknown CPU", 0
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
        kb = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal"))
        mem = round(kb / 2**20, 1)
    except (OSError, StopIteration):
        pass
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"nproc": os.cpu_count(), "cpu": cpu, "mem_gib": mem, "gpu": gpu, "load_start": _load()}


def _load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def stamp_cpu(rows: list[dict], cpu: str) -> list[dict]:
    """Give every row (a run, a measurement) that does not say which CPU it ran on ``cpu``:
    a result that grows over several invocations may have run on several machines, and a
    wall time means something only beside the machine that measured it. Returns ``rows``."""
    for row in rows:
        row.setdefault("cpu", cpu)
    return rows


def machines_line(rows: list[dict], label=None) -> str | None:
    """None when every row ran on one CPU; else which rows ran where: the smaller groups by
    ``label(row)`` with their seeds (e.g. "Intel Xeon: 26 runs (SB3-contrib RecurrentPPO
    seeds 1, 2)"), the largest as "the other N runs"."""
    by_cpu: dict[str, list[dict]] = {}
    for row in rows:
        by_cpu.setdefault(row.get("cpu", "an unrecorded CPU"), []).append(row)
    if len(by_cpu) < 2:
        return None
    largest = max(by_cpu, key=lambda cpu: len(by_cpu[cpu]))
    parts = []
    for cpu, group in by_cpu.items():
        if cpu == largest:
            continue
        seeds: dict[str, set] = {}
        for row in group:
            seeds.setdefault(label(row) if label else "", set()).add(row.get("seed"))
        named = "; ".join(name + ("" if ss == {None} else
                                  f" seed{'s' if len(ss) > 1 else ''} {', '.join(str(x) for x in sorted(ss, key=str))}")
                          for name, ss in seeds.items() if name)
        parts.append(f"{cpu}: {len(group)} run{'s' if len(group) > 1 else ''}" + (f" ({named})" if named else ""))
    return "; ".join([*parts, f"{largest}: the other {len(by_cpu[largest])} runs"])


def versions() -> dict:
    """The versions that produced the figures, and the commit (``+dirty`` with local changes)."""
    import gymnasium
    import matplotlib
    import numpy
    import torch

    def git(*cmd: str) -> str:
        return subprocess.run(["git", *cmd], capture_output=True, text=True).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    if git("status", "--porcelain", "--untracked-files=no"):
        commit += "+dirty"
    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__,
            "gymnasium": gymnasium.__version__, "matplotlib": matplotlib.__version__, "git_commit": commit}


def command_line(args: argparse.Namespace) -> str:
    """The command as a user types it (what the page tells readers to run)."""
    parts = ["python -m benchmarks.memory", "--quick" if args.grid == "quick" else
             ("" if args.grid == "full" else f"--grid {args.grid}"), f"--out {args.out}"]
    if args.skip_bench:
        parts.append("--skip-bench")
    return " ".join(p for p in parts if p)


def new_results(args: argparse.Namespace, grid, json_path: Path) -> dict:
    """The results JSON before anything is measured: how, where and with what it is made."""
    return {
        "meta": {"command": command_line(args), "report_command": f"python -m benchmarks.memory --report-only "
                 f"--out {args.out}", "full_command": f"python -m benchmarks.memory --out {args.out}",
                 "json": str(json_path), "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "jobs": args.jobs,
                 "machine": machine(), "versions": versions()},
        "grid": grid_description(grid), "hyperparameters": hyperparameters(grid),
        "reference": costs.reference(), "costs": {}, "runs": [],
    }


def main(argv: list[str] | None = None) -> int:
    """Measure (unless ``--report-only``), then write the JSON, the page and the plots."""
    args = parse_args(argv)
    out = Path(args.out)
    md = Path(args.md) if args.md else out.parent / "results.md"
    json_path = out / JSON_NAME
    if args.report_only:
        data = json.loads(json_path.read_text())
        files = write_report(data, out, md)
        json_path.write_text(json.dumps(data, indent=1))
        print("wrote", *map(str, files))
        return 0
    out.mkdir(parents=True, exist_ok=True)
    grid = GRIDS[args.grid]
    start = time.perf_counter()
    data = new_results(args, grid, json_path)
    bench_start = time.perf_counter()
    if not args.skip_bench:  # before the grid, so the two never compete for the cores
        for key, target, bench_args in costs.benchmarks(quick=args.grid != "full"):
            print(f"bench {key} ...", flush=True)
            data["costs"][key] = costs.run_bench(target, bench_args, out / f"bench_{key}.json", args.bench_timeout)
    data["meta"]["bench_wall_s"] = time.perf_counter() - bench_start

    def save(result: dict) -> None:
        data["runs"].append(result)
        status = result.get("error", "").strip().splitlines()[-1:] or [f"success {result['success_rate']:.3f}"]
        print(f"[{len(data['runs'])}/{len(grid.specs())}] {result['task']} L={result['length']} {result['rule']} "
              f"seed {result['seed']}: {status[0]} ({result['process_wall_s']:.0f} s)", flush=True)
        json_path.write_text(json.dumps(data, indent=1))

    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="memory-grid-"))
    grid_start = time.perf_counter()
    try:
        run_grid(grid, work, jobs=args.jobs, on_result=save)
    finally:
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)
    data["runs"].sort(key=lambda r: (list(grid.cells).index(r["task"]), r["length"], r["rule"], r["seed"]))
    data["meta"].update(grid_wall_s=time.perf_counter() - grid_start, wall_s=time.perf_counter() - start)
    data["meta"]["machine"]["load_end"] = _load()
    data["meta"]["full_grid"] = plan(FULL, data["runs"], args.jobs)
    files = write_report(data, out, md)
    json_path.write_text(json.dumps(data, indent=1))
    print(f"done in {data['meta']['wall_s']:.0f} s; wrote", *map(str, files))
    return 1 if any("error" in r for r in data["runs"]) else 0


if __name__ == "__main__":
    sys.exit(main())
