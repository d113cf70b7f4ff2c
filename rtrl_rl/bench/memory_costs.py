"""The cost part of the memory experiment: ``rtrl-rl bench cores`` and ``bench runtime`` beside the grid.

The benchmarks run as subprocesses, exactly as a user types them, and their JSON is kept
verbatim in the memory result. A benchmark that is missing, fails or times out is recorded
as such, so the page says which row is missing and why instead of leaving it out silently.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from rtrl_rl.bench.page import fmt, table


def benchmarks(quick: bool) -> list[tuple[str, str, list[str]]]:
    """(key, ``rtrl-rl bench`` target, its arguments) of each cost measurement.

    The runtime benchmark runs twice: on Pong (its default) and on the default memory
    task with its 128 streams. Quick mode times one shorter round of each mode.
    """
    short = ["--rounds", "1", "--seconds", "10"] if quick else []
    return [("cores", "cores", []), ("runtime_pong", "runtime", short),
            ("runtime_memory", "runtime", ["--config", "default", "--num-envs", "128", *short])]


def run_bench(target: str, args: list[str], json_path: Path, timeout_s: float) -> dict:
    """Run ``rtrl-rl bench <target> <args> --json <json_path>``; return what happened: the
    command, its wall time, its exit code and the benchmark's JSON (``data``), or ``error``."""
    shown = ["rtrl-rl", "bench", target, *args, "--json", json_path.name]
    argv = [sys.executable, "-m", "rtrl_rl", "bench", target, *args, "--json", str(json_path)]
    record: dict = {"target": target, "command": " ".join(shown)}
    json_path.unlink(missing_ok=True)
    start = time.perf_counter()
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        record.update(wall_s=round(time.perf_counter() - start, 1), error=f"timed out after {timeout_s:.0f} s")
        return record
    record.update(wall_s=round(time.perf_counter() - start, 1), returncode=proc.returncode)
    if proc.returncode == 0 and json_path.is_file():
        record["data"] = json.loads(json_path.read_text())
    else:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
        record["error"] = f"exit code {proc.returncode}: " + " / ".join(tail)
    return record


def measure(quick: bool, out: str | Path, timeout_s: float) -> dict:
    """Every cost benchmark, its JSON beside the result (``bench_<key>.json``)."""
    results = {}
    for key, target, args in benchmarks(quick):
        print(f"bench {key} ...", flush=True)
        results[key] = run_bench(target, args, Path(out) / f"bench_{key}.json", timeout_s)
    return results


def section(data: dict, throughput: dict) -> list[str]:
    """The page's cost section: the cores table, then end-to-end throughput (``throughput``:
    task -> rule -> mean env steps/s of the grid's runs)."""
    costs = data.get("costs", {})
    lines = ["## The cost of each rule", "", "### Recurrent cores, ms per segment", ""]
    cores = costs.get("cores") or {}
    if "data" in cores:
        meta, rows = cores["data"]["meta"], cores["data"]["rows"]
        lines += [f"`{cores['command']}` ({fmt(cores['wall_s'], 0)} s): device {meta['device']}, "
                  f"{meta['threads']} thread(s), {meta['clock']} clock, median of {meta['repeats']}, torch "
                  f"{meta['torch']}. Columns as in `docs/performance.md`: `rtrl`/`tbptt` are one segment's "
                  "forward + backward, `step` is per-step RTRL over the same steps, `lstm` is torch's "
                  "nn.LSTM forward + backward of the same size.", ""]
        variants, ratios = list(rows[0]["ms"]), list(rows[0]["ratios"])
        lines += table(["core", "n", "d", "B", "T", *variants, *ratios],
                       [[r["core"], *(str(r[k]) for k in "ndBT"), *(fmt(r["ms"][v]) for v in variants),
                         *(fmt(x) for x in r["ratios"].values())] for r in rows])
    else:
        lines += [f"**Missing**: `{cores.get('command', 'rtrl-rl bench cores')}` did not give a result "
                  f"({cores.get('error', 'not run')}).", ""]
    if "cuda" not in str(cores.get("data", {}).get("meta", {})):
        lines += ["**GPU rows missing**: this page was made without a GPU run; "
                  "`rtrl-rl bench cores --device cuda` measures them on a GPU machine.", ""]
    return lines + _throughput(data, costs, throughput)


def _throughput(data: dict, costs: dict, thr: dict) -> list[str]:
    lines = ["### End-to-end training throughput", ""]
    if thr:
        jobs = data["meta"]["history"][0]["jobs"]
        lines += ["Memory tasks, from the runs above (synchronous trainer, one thread per run, "
                  f"{jobs} runs sharing the machine), env steps/s, mean over the runs of each task:", ""]
        tasks = list(thr)
        rules = list(dict.fromkeys(r for t in tasks for r in thr[t]))
        lines += table(["rule", *tasks], [[data["grid"]["rules"][r]["label"], *(
            f"{thr[t][r]:,.0f}" if r in thr[t] else "" for t in tasks)] for r in rules])
    runtimes = {k: v for k, v in costs.items() if k.startswith("runtime")} or {"runtime": {}}
    for key, rec in runtimes.items():
        lines += _runtime(key, rec)
    return lines


def _runtime(key: str, rec: dict) -> list[str]:
    """One ``rtrl-rl bench runtime`` result: steps/s per learning mode against the raw env."""
    command = rec.get("command", "rtrl-rl bench runtime")
    if "data" not in rec:
        return [f"**Missing: `{key}`.** `{command}` gave no result ({rec.get('error', 'not run')}).", ""]
    d = rec["data"]
    s, share = d["setting"], d["share_of_raw"]
    lines = [f"`{command}` ({fmt(rec['wall_s'], 0)} s): config `{s['config']}`, {s['actors']} actor processes "
             f"+ learner (device `{s['device']}`), {s['num_envs']} streams, steady-state env steps/s, median of "
             f"{s['rounds']} round(s) of {fmt(s['seconds'], 0)} s; `raw env` is the environment alone with random "
             "actions.", ""]
    lines += table(["mode", "env steps/s", "share of raw env"],
                   [[m, f"{v:,.0f}", fmt(share.get(m)) if m in share else ""] for m, v in d["steps_per_s"].items()])
    if "rtrl_over_tbptt" in d:
        lines += [f"rtrl / tbptt throughput: {fmt(d['rtrl_over_tbptt'])}.", ""]
    return lines
