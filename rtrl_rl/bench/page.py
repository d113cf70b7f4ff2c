"""What every result page is made of: numbers, mean ± std, tables, the machine, how to reproduce.

A page is a list of markdown lines computed from its results JSON alone (nothing here
measures anything), so ``rtrl-rl bench NAME --report-only`` rebuilds the same page from
the same file. Every page has the same order: its chart and its targets first, then
the details, then a "Reproduce" section of at most three commands with their times.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Callable, Iterable

#: a row that names no CPU (written before rows named theirs)
UNRECORDED_CPU = "an unrecorded CPU"


def fmt(x: float | None, digits: int = 2) -> str:
    """A figure as printed; – for a missing one."""
    return "–" if x is None else f"{x:.{digits}f}"


def spread(values: list[float]) -> dict:
    """Mean and sample standard deviation over seeds (std None for one seed: no spread)."""
    return {"mean": statistics.fmean(values) if values else None,
            "std": statistics.stdev(values) if len(values) > 1 else None, "values": values}


def mean_std(mean: float | None, std: float | None = None, digits: int = 2) -> str:
    """``mean ± std``, the mean alone without a spread, – without a mean."""
    if mean is None:
        return "–"
    return fmt(mean, digits) + ("" if std is None else f" ± {fmt(std, digits)}")


def of_values(values: list[float], digits: int = 2) -> str:
    """``mean ± std`` of ``values`` (see :func:`spread`)."""
    s = spread(values)
    return mean_std(s["mean"], s["std"], digits)


def table(head: list[str], rows: Iterable[list[str]]) -> list[str]:
    """A markdown table and the blank line after it."""
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
            *("| " + " | ".join(r) + " |" for r in rows), ""]


def duration(seconds: float) -> str:
    """A wall time as a reader takes it in: s below two minutes, min below two hours, else h."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def estimate(plan: dict, runs: list[dict], jobs: int) -> float | None:
    """Seconds the grid of ``plan`` would take at the wall time per step each of its rules
    took in ``runs`` (evaluations included, process start-up not), ``jobs`` runs at a time;
    None when a rule has no measured run."""
    per_step: dict[str, list[float]] = {}
    for r in runs:
        if "error" not in r and r.get("steps"):
            per_step.setdefault(r["rule"], []).append((r.get("process_wall_s") or r["wall_s"]) / r["steps"])
    if not all(rule in per_step for rule in plan["steps"]):
        return None
    steps = sum(steps * statistics.fmean(per_step[rule]) for rule, steps in plan["steps"].items())
    return (steps + plan.get("seconds", 0.0)) / jobs


def estimated(plan: dict, runs: list[dict], jobs: int) -> str:
    """:func:`estimate` as a page says it."""
    seconds = estimate(plan, runs, jobs)
    if seconds is None:
        return "not measured (a rule of it has no run here)"
    return (f"about {duration(seconds)} with {jobs} run{'s' if jobs > 1 else ''} at a time, from the wall time per "
            "step measured here (process start-up aside)")


def machines_line(rows: list[dict], label: Callable[[dict], str] | None = None) -> str | None:
    """None when every row ran on one CPU; else which rows ran where: the smaller groups by
    ``label(row)`` with their seeds, the largest as "the other N runs"."""
    by_cpu: dict[str, list[dict]] = {}
    for row in rows:
        by_cpu.setdefault(row.get("cpu", UNRECORDED_CPU), []).append(row)
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
        named = "; ".join(name + _seeds(ss) for name, ss in seeds.items() if name)
        parts.append(f"{cpu}: {len(group)} run{'s' if len(group) > 1 else ''}" + (f" ({named})" if named else ""))
    return "; ".join([*parts, f"{largest}: the other {len(by_cpu[largest])} runs"])


def _seeds(seeds: set) -> str:
    if seeds == {None}:
        return ""
    return f" seed{'s' if len(seeds) > 1 else ''} {', '.join(str(x) for x in sorted(seeds, key=str))}"


def machine_line(meta: dict) -> str:
    """The machine and versions of a result, in one sentence."""
    m, v = meta.get("machine"), meta.get("versions") or {}
    if not m:
        return "not recorded with these runs."
    line = f"{m['nproc']} CPU cores ({m['cpu']}), {m['mem_gib']} GiB memory, GPU: {m.get('gpu') or 'none'}"
    if m.get("load_start"):
        line += f"; load average {m['load_start']} at the start" + (
            f", {m['load_end']} at the end" if m.get("load_end") else "")
    shown = ", ".join(f"{k} {val}" for k, val in v.items() if k != "git_commit" and val)
    commit = f", commit {v['git_commit']}" if v.get("git_commit") else ""
    return line + f". Versions: {shown}{commit}."


def reproduce(json_paths: list[str], commands: list[tuple[str, str]], notes: list[str] = ()) -> list[str]:
    """The "Reproduce" section: at most three (command, what it does and how long it takes)
    pairs, then where the run history is kept."""
    if len(commands) > 3:
        raise ValueError("a page lists at most three commands to reproduce it")
    lines = ["## Reproduce", ""]
    lines += [f"- `{command}`: {what}" for command, what in commands]
    named = ", ".join(f"`{p}`" for p in json_paths)
    lines += ["", f"Each invocation that measured this page, with its command, machine and time, is in the "
              f"`history` of {named}; every run records its own command there. This page is written from "
              "that alone: do not edit it by hand.", ""]
    return lines + [line for note in notes for line in (note, "")]


def write(path: Path, lines: list[str]) -> Path:
    """Write the page (one trailing newline); returns its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines).rstrip("\n") + "\n")
    return path
