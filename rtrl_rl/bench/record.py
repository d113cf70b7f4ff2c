"""The results JSON of an experiment: what ran, where, with which versions, and how it was run.

Every experiment keeps one JSON per page. Its ``meta`` holds the machine and the versions
of the first invocation and ``history``, one entry per invocation (the command as typed,
without the options that only place files, when it started, how many runs at a time, on
which CPU, how long it took). Every measured row names the CPU it ran on, because a
result that grows over several invocations may have run on several machines.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import time
from pathlib import Path


def machine() -> dict:
    """Cores, CPU model, memory, GPU and load: what wall times depend on."""
    cpu, mem = platform.processor() or "unknown CPU", 0.0
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
        kb = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal"))
        mem = round(kb / 2**20, 1)
    except (OSError, StopIteration):
        pass
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"nproc": os.cpu_count(), "cpu": cpu, "mem_gib": mem, "gpu": gpu, "load_start": load_average()}


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as the page prints them."""
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def versions() -> dict:
    """The versions that produced the figures. The commit only when the checkout has no
    local changes: figures of a modified tree belong to no commit."""
    import gymnasium
    import numpy
    import torch

    out = {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__,
           "gymnasium": gymnasium.__version__}
    try:
        import matplotlib
        out["matplotlib"] = matplotlib.__version__
    except ImportError:
        pass
    out["git_commit"] = _clean_commit()
    return out


def _clean_commit() -> str | None:
    def git(*cmd: str) -> str:
        try:
            return subprocess.run(["git", *cmd], capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    commit = git("rev-parse", "--short", "HEAD")
    return commit if commit and not git("status", "--porcelain", "--untracked-files=no") else None


#: options that only say where files go on the machine that ran a command
PLACES = ("out", "md", "page", "doc", "json", "work-dir", "work")


def without_places(command: str) -> str:
    """``command`` without the options of :data:`PLACES` and their values: a local path
    means nothing to a reader, and the defaults put the files where the pages expect them."""
    names = "|".join(PLACES)
    return re.sub(rf" --(?:{names})(?:=| )[^\s;]+", "", command)


def command_line(prog: str, argv: list[str]) -> str:
    """The command as a user types it, places left out."""
    return without_places(" ".join([prog, *argv]))


def stamp_cpu(rows: list[dict], cpu: str) -> list[dict]:
    """Give every row that does not name its CPU ``cpu``; returns ``rows``."""
    for row in rows:
        row.setdefault("cpu", cpu)
    return rows


def new_meta(**fields) -> dict:
    """The ``meta`` of a fresh result: this machine, these versions, no history yet."""
    return {"machine": machine(), "versions": versions(), "history": [], **fields}


def begin(meta: dict, command: str, jobs: int) -> dict:
    """Append this invocation to the history; returns its entry (``finish`` completes it)."""
    entry = {"command": command, "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "jobs": jobs,
             "cpu": machine()["cpu"], "began_unix": time.time()}
    meta.setdefault("history", []).append(entry)
    return entry


def finish(meta: dict, entry: dict) -> None:
    """Record the invocation's wall time and the load at its end."""
    entry["wall_s"] = round(time.time() - entry.pop("began_unix"), 1)
    if meta.get("machine"):  # a result measured before machines were recorded keeps saying so
        meta["machine"]["load_end"] = load_average()


def load(path: Path) -> dict:
    """A saved result."""
    return json.loads(Path(path).read_text())


def save(path: Path, data: dict, compact: bool = False) -> None:
    """Write ``data`` atomically (a stopped run never leaves half a file). ``compact``: one
    line, for results whose curves are tens of thousands of points."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, separators=(",", ":")) if compact else json.dumps(data, indent=1)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text + ("" if compact else "\n"))
    os.replace(tmp, path)
