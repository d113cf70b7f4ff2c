"""``docs/results_stream.md`` and its chart, from ``stream.json`` alone.

Memory tasks are scored by greedy success (with their chance level), POPGym tasks by the
greedy mean return and POPGym's MMER of the training curve. The finding first (the
curves, and which rules beat the feed-forward stream, decided from the numbers), then the
budget, the tables, the drift and memory measurements, and how to reproduce it.
"""

from __future__ import annotations

import os
import statistics
from collections import defaultdict
from pathlib import Path

from rtrl_rl.bench import charts
from rtrl_rl.bench.page import duration, estimated, machine_line, machines_line, of_values, reproduce, table, write

#: a rule "beats" the feed-forward stream on a task when its mean over seeds is higher by this
#: much and by more than twice the standard error of the difference (memory tasks: success,
#: POPGym: the final greedy return)
MARGIN = 0.1
FEEDFORWARD = "stream-feedforward"


def _groups(data: dict) -> dict:
    groups: dict = defaultdict(list)
    for r in data["runs"]:
        groups[(r["task"], r["rule"])].append(r)
    return groups


def _values(runs: list[dict], key: str) -> list[float]:
    return [r[key] for r in runs if r.get(key) is not None]


def plot_curves(data: dict, path: Path) -> None:
    """Mean over seeds against environment steps, one panel per task: greedy success on the
    memory tasks, the training return's window means on POPGym."""
    plt = charts.pyplot()
    g = data["grid"]
    tasks, groups = list(g["tasks"]), _groups(data)
    cols = min(3, len(tasks))
    rows = -(-len(tasks) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 4 * rows), squeeze=False)
    for ax, task in zip(axes.flat, tasks):
        t = g["tasks"][task]
        for rule, meta in g["rules"].items():
            runs = groups.get((task, rule))
            if not runs:
                continue
            if t["evaluations"] > 1:  # greedy evaluations during the run
                points = [[(e["step"], e[t["metric"]]) for e in r["evaluations"]] for r in runs]
            else:  # the training curve's window means
                points = [[tuple(p) for p in r["train_curve"]] for r in runs]
            n = min(len(p) for p in points)
            if n == 0:
                continue
            steps = [points[0][i][0] for i in range(n)]
            mean = [statistics.fmean(p[i][1] for p in points) for i in range(n)]
            ax.plot(steps, mean, marker="o", label=meta["label"])
        if t["chance"] is not None:
            ax.axhline(t["chance"], color="grey", ls=":", label="chance")
            ax.set_ylim(0, 1.05)
        ax.set_title(task)
        ax.set_xlabel("environment steps")
        ax.set_ylabel("greedy success" if t["metric"] == "success_rate" else "training return (window mean)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(tasks):]:
        ax.axis("off")
    charts.save(fig, path, dpi=110)


def beats_feedforward(data: dict) -> dict[str, list[str] | None]:
    """task -> labels of the rules whose final greedy score beats the feed-forward stream's
    (see ``MARGIN``); None where the feed-forward stream has fewer than 2 seeds (no judgement)."""
    groups, out, g = _groups(data), {}, data["grid"]
    for task, t in g["tasks"].items():
        base = _values(groups.get((task, FEEDFORWARD), []), t["metric"])
        out[task] = [] if len(base) >= 2 else None
        if out[task] is None:
            continue
        for rule, meta in g["rules"].items():
            vals = _values(groups.get((task, rule), []), t["metric"])
            if rule == FEEDFORWARD or len(vals) < 2 or len(base) < 2:
                continue
            diff = statistics.fmean(vals) - statistics.fmean(base)
            se = (statistics.variance(vals) / len(vals) + statistics.variance(base) / len(base)) ** 0.5
            if diff >= MARGIN and diff > 2 * se:
                out[task].append(meta["label"])
    return out


def _budget(data: dict) -> list[str]:
    g, meta = data["grid"], data["meta"]
    done, planned = len(data["runs"]), len(g["tasks"]) * len(g["rules"]) * len(g["seeds"])
    lines = []
    machines = machines_line(_measured_rows(data), _row_label(data))
    if machines:
        lines += [(f"**More than one machine.** A resumed invocation measured part of this page on another CPU "
                   f"model than the rest (the JSON gives each row's `cpu`): {machines}. Compare wall times and "
                   "throughputs within one machine only."), ""]
    if done < planned:
        lines += [(f"**Incomplete:** {done} of the {planned} planned runs finished before the grid was stopped; "
                   "cells show the seeds that finished (the seeds column of the last table)."), ""]
    lines += [(f"**Budget: {g['steps']:,} environment steps per run**, seeds {', '.join(map(str, g['seeds']))}, "
               f"model {' '.join(g['model'])}. This is small: {_one_stream_speed(data)}, "
               f"and the segment agent's POPGym page trains {g['popgym_steps']:,} steps per run, "
               f"{g['popgym_steps'] // g['steps']} times more. Memory tasks: 100 greedy episodes every "
               f"{g['steps'] // 4} steps (the curves); POPGym: 20 greedy episodes at the end, and the curves are "
               "the training returns. Stream rules use one stream (`env.num_envs=1`) and "
               "the `stream.*` defaults; the segment agent uses 128 streams and segments of 10 steps with the "
               "`train.*` defaults, so at the same number of environment steps it makes only a few updates "
               "(1,280 steps each)."), ""]
    return lines


def _measured_rows(data: dict) -> list[dict]:
    """Every run and every drift, memory and throughput row."""
    return [*data["runs"], *data.get("drift", []), *data.get("memory", []), *data.get("throughput", [])]


def _row_label(data: dict):
    """What a row is, for the list of which rows ran where."""
    def label(row: dict) -> str:
        if "task" in row:
            return f"{row['task']} {data['grid']['catalog']['rules'][row['rule']]}"
        if "rule" in row:
            return f"the throughput of {data['grid']['catalog']['rules'][row['rule']]}"
        return "a drift measurement" if "lr" in row else "a memory measurement"
    return label


def _one_stream_speed(data: dict) -> str:
    """How fast one stream trains, from the throughput rows (stream rules only)."""
    labels = data["grid"]["catalog"]["rules"]
    cpu = [t["cpu_sps"] for t in data.get("throughput", []) if labels[t["rule"]].startswith("stream")]
    if not cpu:
        return "one stream trains one update per step"
    return f"one stream trains at {min(cpu):.0f}–{max(cpu):.0f} steps per CPU-second here (table below)"


def render(data: dict, plot_name: str) -> list[str]:
    """The markdown lines of the page, but for "Reproduce"."""
    g = data["grid"]
    groups, rules = _groups(data), g["rules"]
    head = ["task", *(m["label"] for m in rules.values())]
    memory = [t for t, v in g["tasks"].items() if v["metric"] == "success_rate"]
    popgym = [t for t, v in g["tasks"].items() if v["metric"] == "mean_return"]
    lines = ["# Streaming actor-critic: measured", "",
             "One stream, one update per step (`agent.algorithm=stream`): which cores learn small memory tasks this "
             "way, against the feed-forward stream and the segment agent at the same number of environment steps. "
             "Mean over seeds of the greedy success (memory tasks) or the training return (POPGym):", "",
             f"![learning curves]({plot_name})", "",
             "## What beats the feed-forward stream", "",
             (f"A rule counts when its mean final greedy score (success or return) is at least {MARGIN} above the "
              "feed-forward stream's and the difference is more than twice its standard error over seeds:"), "",
             *table(["task", "rules that beat the feed-forward stream"],
                    [[task, "not judged (fewer than 2 seeds finished)" if winners is None
                      else "; ".join(winners) if winners else "none"] for task, winners in beats_feedforward(data).items()]),
             *_budget(data)]
    if memory:
        lines += ["## Memory tasks: final greedy success", "",
                  *table(head, [[f"{task} (chance {g['tasks'][task]['chance']})",
                                 *(of_values(_values(groups.get((task, r), []), "success_rate")) for r in rules)]
                                for task in memory])]
    if popgym:
        window = next((r["mmer_window"] for r in data["runs"] if r["task"] in popgym), None)
        lines += ["## POPGym: final greedy return (training MMER)", "",
                  ("Greedy mean return of the final evaluation; in brackets POPGym's MMER, the largest mean "
                   f"training return over windows of {window:,} environment steps (the POPGym page uses windows "
                   "of 100,000: with this budget a window that long would be the whole run). A – in brackets: no "
                   "training episode ended; each of the segment agent's 128 streams takes "
                   f"{-(-g['steps'] // 1280) * 10} steps in this budget, less than one 51-step episode "
                   "of RepeatFirst or CountRecall."), "",
                  *table(head, [[task, *(f"{of_values(_values(groups.get((task, r), []), 'mean_return'))} "
                                         f"({of_values(_values(groups.get((task, r), []), 'mmer'))})" for r in rules)]
                                for task in popgym])]
    lines += ["## Wall time, steps per second, peak memory", "",
              *table(["task", "rule", "seeds", "wall s", "steps/s", "updates", "peak RSS MiB"],
                     [_speed_row(task, rules[rule]["label"], runs) for (task, rule), runs in sorted(groups.items())])]
    jobs = " then ".join(dict.fromkeys(str(h["jobs"]) for h in data["meta"]["history"]))
    lines += [(f"Wall time and steps per second are over the whole run, evaluations included, {jobs} "
               f"run{'s' if jobs != '1' else ''} at a time, one torch thread each. The machine is shared, so these are "
               "upper bounds."), ""]
    return lines + _throughput(data) + _drift_and_memory(data) + _not_run(data)


def _speed_row(task: str, label: str, runs: list[dict]) -> list[str]:
    seeds = ",".join(str(r["seed"]) for r in sorted(runs, key=lambda r: r["seed"]))
    updates = statistics.fmean(r["updates"] for r in runs) if all(r.get("updates") for r in runs) else None
    return [task, label, seeds, f"{statistics.fmean(r['wall_s'] for r in runs):.1f}",
            f"{statistics.fmean(r['sps'] for r in runs):.0f}", "–" if updates is None else f"{updates:.0f}",
            f"{max(r['max_rss_mib'] for r in runs):.0f}"]


def _throughput(data: dict) -> list[str]:
    if not data.get("throughput"):
        return []
    labels, rows = data["grid"]["catalog"]["rules"], data["throughput"]
    mixed = len({t.get("cpu") for t in rows}) > 1  # then each row names its CPU
    return ["### Training throughput", "",
            (f"recall-blank, {rows[0]['steps']:,} steps, no evaluation, one torch thread; steps per second of wall "
             "clock (the run's own figure, setup excluded) and per CPU-second of the process over the whole run, "
             "setup included (the machine was shared: the CPU figure is the steadier):"), "",
            *table(["rule", "steps/s (wall)", "steps per CPU-second", *(["CPU"] if mixed else [])],
                   [[labels[t["rule"]], f"{t['sps']:.0f}", f"{t['cpu_sps']:.0f}",
                     *([t.get("cpu", "?")] if mixed else [])] for t in rows])]


def _not_run(data: dict) -> list[str]:
    """The rules and tasks of the experiment that this grid left out, and what no grid here measures."""
    g = data["grid"]
    rules = [label for name, label in g["catalog"]["rules"].items() if name not in g["rules"]]
    tasks = [name for name in g["catalog"]["tasks"] if name not in g["tasks"]]
    lines = ["## Not measured here", ""]
    if rules or tasks:
        lines.append(f"- Left out of this grid to fit its compute budget: {', '.join(rules + tasks)} "
                     "(`--rules` / `--tasks` run them).")
    return lines + [("- Budgets near the segment agent's (hundreds of thousands of steps and more), long memory "
                     "spans, and any tuning of the `stream.*` settings: every run uses the defaults."), ""]


def _drift_and_memory(data: dict) -> list[str]:
    lines = ["## Drift of the online gradient", "",
             ("The parameters change every step while the sensitivities carry derivatives taken under older "
             "parameters. Each step of a one-stream run (recall-blank, RTRL eLSTM), the online gradient of "
             "V(s_t) for the core's parameters is compared with the exact gradient under the current "
             "parameters (plain autograd through the episode so far); relative error |g − g*| / |g*|, over the "
             "steps that are not an episode's first. Where ObGD's bound is active the step "
             "α / (α κ max(|δ|,1) ‖z‖₁) does not depend on α = `stream.lr`, so rows with the same mean step are "
             "the same run:"), "",
             *table(["stream.lr", "mean ObGD step", "median", "90th percentile", "max", "steps"],
                    [[str(d["lr"]), f"{d['mean_effective_step']:.4f}", f"{d['median_rel_error']:.2e}",
                      f"{d['p90_rel_error']:.2e}", f"{d['max_rel_error']:.2e}", str(d["steps"])] for d in data["drift"]])]
    steps = data["memory"][0]["steps"] if data["memory"] else 0
    return lines + ["## Memory against episode length", "",
                    f"One stream, RTRL eLSTM, recall with blank delays, {steps} steps, no evaluation:", "",
                    *table(["episode length", "peak RSS MiB"],
                           [[str(m["episode_length"]), f"{m['max_rss_mib']:.0f}"] for m in data["memory"]])]


def write_page(data: dict, json_path: Path, md_path: Path) -> list[Path]:
    """Write the chart beside the JSON and the page; returns both."""
    plot = json_path.parent / "stream_curves.png"
    plot_curves(data, plot)
    lines = [*render(data, os.path.relpath(plot, md_path.parent)), *_reproduce(data, json_path, md_path)]
    return [write(md_path, lines), plot]


def _reproduce(data: dict, json_path: Path, md_path: Path) -> list[str]:
    meta, plans = data["meta"], data["grid"]["plans"]
    history = meta["history"]
    jobs = history[0]["jobs"]

    def took(name: str) -> str:
        if data["grid"]["name"] == name and all("wall_s" in h for h in history):
            runs = f"{jobs} run{'s' if jobs > 1 else ''}"
            return f"{duration(sum(h['wall_s'] for h in history))} with {runs} at a time, as measured here"
        return estimated(plans[name], data["runs"], jobs)
    commands = [("rtrl-rl bench stream", f"the grid ({plans['full']['runs']} runs) and the measurements: "
                 + took("full")),
                ("rtrl-rl bench stream --quick --out quick/results",
                 f"the quick grid ({plans['quick']['runs']} runs, one seed) into a folder of its own; its runs: "
                 + took("quick") + ", and the drift, memory and throughput measurements take minutes on top"),
                ("rtrl-rl bench stream --report-only", "this page and its chart from the JSON, in seconds")]
    return [*reproduce([os.path.relpath(json_path, md_path.parent)], commands),
            f"Machine: {machine_line(meta)}", ""]
