"""The one way every grid experiment runs: ``rtrl-rl bench NAME [--quick | --grid G] [--resume]``.

An experiment gives its grid (as specs and as plain data), the function that runs one
cell and the function that writes its page; :func:`drive` does the rest, the same way
for all: start a result (or, with ``--resume``, take the saved one and run only the
cells it lacks), record the invocation in its history, run the cells on the process
pool saving the JSON after every one, then write the page from the JSON alone.
``--report-only`` only rewrites the page.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from rtrl_rl.bench import grid as grids
from rtrl_rl.bench import record
from rtrl_rl.bench.pool import run_grid

#: grid fields that a resumed result joins (the union of both); every other field must agree,
#: because the runs of one page share one budget and one set of settings
JOINED = ("tasks", "seeds", "rules", "episodes", "cells", "configs", "plans", "full_steps", "published")


@dataclass(frozen=True)
class Experiment:
    """Where an experiment's files go and which grids ``--grid`` names."""

    name: str  # rtrl-rl bench NAME
    json_name: str  # the results JSON, under --out
    page_name: str  # the page, beside --out
    grids: tuple[str, ...]
    default_grid: str = "full"
    jobs: int = 2
    compact: bool = False  # one-line JSON: a result of tens of thousands of curve points

    def paths(self, args: argparse.Namespace) -> tuple[Path, Path]:
        """(results JSON, page) the arguments name."""
        out = Path(args.out)
        return out / self.json_name, Path(args.page) if args.page else out.parent / self.page_name


def add_arguments(parser: argparse.ArgumentParser, exp: Experiment) -> None:
    """The arguments every grid experiment takes."""
    if len(exp.grids) > 1:
        parser.add_argument("--grid", choices=exp.grids, default=exp.default_grid,
                            help=f"which grid to run (default {exp.default_grid})")
        parser.add_argument("--quick", action="store_true", help="the quick grid (same as --grid quick)")
    parser.add_argument("--jobs", type=int, default=min(exp.jobs, os.cpu_count() or 1),
                        help=f"runs at a time, one thread each (default {exp.jobs})")
    parser.add_argument("--out", default="docs/results", help="folder of the JSON and the charts (default docs/results)")
    parser.add_argument("--page", default=None, help=f"the page to write (default {exp.page_name} beside --out)")
    parser.add_argument("--work-dir", default=None, help="keep the runs' directories here (default: a temporary one)")
    parser.add_argument("--resume", action="store_true", help="keep the runs of the saved JSON and run only the "
                        "cells it lacks (an interrupted grid continues; another grid's cells join the same page; "
                        "with the same --work-dir, a cell stopped mid-run continues from its last checkpoint)")
    parser.add_argument("--report-only", action="store_true", help="rewrite the page from the saved JSON; run nothing")


def check(args: argparse.Namespace, exp: Experiment) -> str | None:
    """Why the arguments cannot run (None: they can); checked before anything is written."""
    if getattr(args, "quick", False):
        args.grid = "quick"
    if args.jobs < 1:
        return "--jobs must be >= 1"
    json_path, _ = exp.paths(args)
    if (args.resume or args.report_only) and not json_path.is_file():
        flag = "--resume" if args.resume else "--report-only"
        return f"{flag}: there is no {json_path} (a saved result of this experiment; --out names its folder)"
    return None


def join_grids(saved: dict, new: dict) -> dict:
    """The grid of a resumed result: the union of the :data:`JOINED` fields (lists and
    dicts), every other field as saved. Raises ValueError for a field on which the two
    disagree (a budget, shared settings)."""
    joined = {**new, **saved}
    for k in set(saved) & set(new):
        a, b = saved[k], new[k]
        if k in JOINED and isinstance(a, dict) and isinstance(b, dict):
            joined[k] = a | b
        elif k in JOINED and isinstance(a, list) and isinstance(b, list):
            joined[k] = sorted({*a, *b}) if k == "seeds" else list(dict.fromkeys([*a, *b]))
        elif a != b:
            raise ValueError(f"--resume: the saved grid has {k} = {a!r}, this invocation {b!r}; "
                             "the runs of one page share it (start a new result without --resume)")
    return joined


def drive(exp: Experiment, args: argparse.Namespace, *, describe: dict, specs: list[dict],
          runner: Callable[[dict, str], dict], write_page: Callable[[dict, Path, Path], list[Path]],
          done: Callable[[dict], bool] = lambda r: "error" not in r, cell: Callable[[dict], tuple] = grids.key,
          before: Callable[[dict], None] | None = None, after: Callable[[dict], None] | None = None) -> int:
    """Run an experiment's cells into its JSON and write its page; returns the exit code
    (2 for arguments that do not fit the saved result, found before anything runs; 1 when a
    cell of this invocation failed)."""
    json_path, page_path = exp.paths(args)
    saved = record.load(json_path) if json_path.is_file() else None
    if args.report_only:
        print("wrote", *map(str, write_page(saved, json_path, page_path)))
        return 0
    # a resumed result that this invocation leaves as it was (no cell due, no hook adding
    # anything) keeps its history as it was too: the history lists what produced the result
    baseline = (_measured(saved), copy.deepcopy(saved["meta"])) if args.resume else None
    if args.resume:
        data = saved
        try:
            data["grid"] = join_grids(saved["grid"], describe)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    elif saved is not None and saved["grid"].get("name") != describe["name"]:
        print(f"error: {json_path} holds the {saved['grid'].get('name')!r} grid; write the {describe['name']!r} "
              "grid elsewhere (--out DIR) rather than over it", file=sys.stderr)
        return 2
    else:
        data = {"meta": record.new_meta(), "grid": describe, "runs": []}
    entry = record.begin(data["meta"], command(args, exp), args.jobs)
    data["meta"]["versions"] = data["meta"]["versions"] | record.versions()
    cpu = entry["cpu"]
    if before is not None:
        before(data)
    lists = ["runs", *dict.fromkeys(s["into"] for s in specs if "into" in s)]
    todo = grids.missing(specs, [_in(r, name) for name in lists for r in data.get(name, [])], done, cell)
    failed = []

    def save(result: dict) -> None:
        for row in result.pop("rows", [result]):  # a cell gives one row, or several (a pair of runs)
            keep(record.stamp_cpu([row], cpu)[0])
        record.save(json_path, data, exp.compact)

    def keep(result: dict) -> None:
        name = result.pop("into", "runs")  # a measurement other than a training run has its own list
        same = grids.key(_in(result, name))
        data[name] = [r for r in data.get(name, []) if grids.key(_in(r, name)) != same] + [result]
        status = result.get("error", "").strip().splitlines()[-1:] or ["done"]
        if "error" in result:
            failed.append(result)
        print(f"[{len(data['runs'])}] {result.get('task')} {result.get('rule')} seed {result.get('seed')}: "
              f"{status[0]} ({result.get('process_wall_s') or result.get('wall_s') or 0:.0f} s)", flush=True)

    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix=f"{exp.name}-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        run_grid(todo, work, jobs=args.jobs, on_result=save, runner=runner)
        if after is not None:
            after(data)
    finally:  # a stopped invocation keeps its rows, and its history says how long it ran
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)
        record.finish(data["meta"], entry)
        if baseline is not None and not todo and baseline[0] == _measured(data):
            data["meta"] = baseline[1]
            print(f"nothing to run: {json_path.name} already holds every cell asked for", flush=True)
        record.save(json_path, data, exp.compact)
    files = write_page(data, json_path, page_path)
    print(f"done in {entry['wall_s']:.0f} s; wrote {json_path}", *map(str, files))
    return 1 if failed else 0


def command(args: argparse.Namespace, exp: Experiment) -> str:
    """The invocation as typed (``rtrl-rl`` puts its arguments in ``args.argv``), places left out."""
    return record.command_line("rtrl-rl", getattr(args, "argv", None) or ["bench", exp.name])


def _measured(data: dict) -> str:
    """Everything of a result but its ``meta``, comparable (what an invocation may change)."""
    return json.dumps({k: v for k, v in data.items() if k != "meta"}, sort_keys=True, default=str)


def _in(row: dict, name: str) -> dict:
    """A saved row as its spec names it: a row of a list other than ``runs`` is ``into`` that list."""
    return row if name == "runs" else {**row, "into": name}
