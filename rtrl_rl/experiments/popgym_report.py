"""The page of the POPGym benchmark (``docs/results_popgym.md``) and its plots, from popgym.json only."""

from __future__ import annotations

import re
import statistics
from pathlib import Path

from rtrl_rl.experiments.cli import machines_line
from rtrl_rl.experiments.popgym import PEER, PEER_LABEL, WINDOW_STEPS, aggregate, window_means
from rtrl_rl.experiments.popgym_cost import cost_section
from rtrl_rl.experiments.popgym_targets import targets_section


def _fmt(cell: dict | None, key: str) -> str:
    if not cell or cell[key]["mean"] is None:
        return "–"
    m, s = cell[key]["mean"], cell[key]["std"]
    return f"{m:.2f} ± {s:.2f}" if s is not None else f"{m:.2f}"


def without_places(command: str) -> str:
    """``command`` without ``--out``, ``--md`` and ``--work-dir``: they only say where files went on
    the machine that ran it, which means nothing to a reader."""
    return re.sub(r" --(?:out|md|work-dir)(?:=| )[^\s;]+", "", command)


def missing_from_full_grid(data: dict) -> dict[str, int]:
    """rule -> how many of the full grid's runs (every task, seeds 0-2, the peer included) the
    saved result lacks. A run that ended in an error (a divergence) counts as run: the page
    reports it under "Failed runs"."""
    from rtrl_rl.experiments.popgym import TASKS, full_grid

    grid = full_grid()
    have = {(r["task"], r["rule"], r["seed"]) for r in data["runs"]}
    out = {rule: sum((t, rule, s) not in have for t in TASKS for s in grid.seeds) for rule in [*grid.rules, PEER]}
    return {rule: n for rule, n in out.items() if n}


def _notes(data: dict) -> list[str]:
    """What this result does not hold: the saved not-measured notes of its invocations, less
    those about the full grid and the peer, which are decided here from the runs themselves
    (appended invocations may have completed what an earlier one left out)."""
    saved = [n for n in data["meta"].get("not_measured", [])
             if "did not run on the POPGym" not in n and "The full grid" not in n]
    peer_runs = [r for r in data["runs"] if r["rule"] == PEER and r["task"] != "memory:recall"]
    peer_machines = machines_line(peer_runs)
    if peer_machines:
        steps = {cpu: statistics.fmean(r["steps"] for r in peer_runs if r.get("cpu") == cpu)
                 for cpu in dict.fromkeys(r.get("cpu") for r in peer_runs)}
        saved.append("The peer's runs ran on more than one CPU model (" + peer_machines + "). With the same "
                     "wall-time budget a run on the faster machine trained more steps (mean steps per run: "
                     + ", ".join(f"{cpu} {n:,.0f}" for cpu, n in steps.items()) + "); its wall-time table "
                     "averages over seeds, machines included.")
    missing = missing_from_full_grid(data)
    if not missing:
        return saved
    labels = _labels(data)
    parts = ", ".join(f"{labels.get(rule, rule)} {n}" for rule, n in missing.items())
    return [f"Runs of the full grid (13 tasks x every rule x seeds 0-2 x 3M steps, and the peer: "
            f"`python -m benchmarks.popgym --peer --recall`) missing from this page: {parts}.", *saved]


def _span(runs: list[dict]) -> str:
    """Wall time from the first run's start to the last run's end (invocations may have been
    stopped and resumed, so their own totals do not add up to it)."""
    timed = [r for r in runs if "started_unix" in r and r.get("wall_s") is not None]
    if not timed:
        return "no timed run"
    span = max(r["started_unix"] + r["wall_s"] for r in timed) - min(r["started_unix"] for r in timed)
    return f"{span / 60:.0f} min from the first run's start to the last run's end"


def _rule_order(data: dict) -> list[str]:
    """The page's rules in the benchmark's order (RTRL first), whatever order invocations added them."""
    from rtrl_rl.experiments.popgym import BEST_RTRL, RTRL_CORES, rules

    cores = {r[5:] for r in data["grid"]["rules"] if r.startswith("rtrl-") and "+" not in r and r != BEST_RTRL}
    ordered = [c for c in RTRL_CORES if c in cores] + sorted(cores - set(RTRL_CORES))
    known = [r for r in rules(ordered) if r in data["grid"]["rules"]]
    return known + [r for r in data["grid"]["rules"] if r not in known]


def _labels(data: dict) -> dict[str, str]:
    return {**{r: v["label"] for r, v in data["grid"]["rules"].items()}, PEER: PEER_LABEL}


def plot_curves(data: dict, path: Path, against: str) -> Path:
    """One panel per task: window means of the training return against steps or wall time,
    one colour per rule (every seed of a rule in its colour)."""
    from rtrl_rl.experiments.plots import plt, save_with_legend

    tasks = data["grid"]["tasks"]
    cols = min(4, len(tasks))
    rows = -(-len(tasks) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.8 * rows), squeeze=False)
    labels = _labels(data)
    # the levers are left out of the plots, so only the grid's rules and the peer take colours:
    # ten of them at most, one each of matplotlib's ten-colour cycle
    plotted = [r for r in [*_rule_order(data), PEER] if "+" not in r]
    colours = {rule: f"C{k % 10}" for k, rule in enumerate(plotted)}
    for ax, task in zip(axes.flat, tasks):
        for run in (r for r in data["runs"] if r["task"] == task and "error" not in r and r.get("curve")
                    and "+" not in r["rule"]):  # the levers have their own table
            means = window_means(run["curve"])
            if against == "steps":
                xs = [s / 1e6 for s, _ in means]
            else:  # the wall time at which each window ended
                ends = {}
                for step, wall, _ in run["curve"]:
                    ends[(step - 1) // WINDOW_STEPS] = wall
                xs = [ends[(s - 1) // WINDOW_STEPS] for s, _ in means]
            # a run shorter than one window (the peer, at equal wall time) is a single point, which a
            # line alone would not draw
            ax.plot(xs, [v for _, v in means], label=labels.get(run["rule"], run["rule"]), lw=1,
                    color=colours.get(run["rule"], "0.5"), marker="o" if len(xs) == 1 else None, markersize=4)
        ax.set_title(task, fontsize=9)
        ax.set_xlabel("env steps (millions)" if against == "steps" else "wall time (s)", fontsize=8)
        ax.set_ylim(-1.05, 1.05)
    for ax in list(axes.flat)[len(tasks):]:
        ax.axis("off")
    axes[0][0].set_ylabel(f"mean return per {WINDOW_STEPS:,} steps", fontsize=8)
    return save_with_legend(fig, path, list(axes.flat))


def _results_table(data: dict, agg: dict) -> list[str]:
    labels = _labels(data)
    rules = [r for r in [*_rule_order(data), PEER] if "+" not in r and any(r in cells for cells in agg.values())]
    coverage = []
    for r in rules:
        cells = [c[r] for c in agg.values() if r in c]
        seeds = sorted({s for c in cells for s in c["seeds"]})
        coverage.append(f"{labels[r]} {sum(len(c['seeds']) for c in cells)} runs on {len(cells)} tasks "
                        f"(seeds {', '.join(map(str, seeds))})")
    lines = ["What ran: " + "; ".join(coverage) + ". A '–' cell did not run.", "",
             "| task | " + " | ".join(labels[r] for r in rules) + " |", "|---|" + "---|" * len(rules)]
    for task, cells in agg.items():
        lines.append(f"| {task} | " + " | ".join(
            f"{_fmt(cells.get(r), 'mmer')} ({_fmt(cells.get(r), 'final_return')})" for r in rules) + " |")
    lines += ["", "Wall time per run (s, mean over seeds) and environment steps per second:", "",
              "| task | " + " | ".join(labels[r] for r in rules) + " |", "|---|" + "---|" * len(rules)]
    for task, cells in agg.items():
        lines.append(f"| {task} | " + " | ".join(
            f"{cells[r]['wall_s']:.0f} s, {cells[r]['sps']:,.0f}/s" if r in cells else "–" for r in rules) + " |")
    return lines


def _levers(data: dict, agg: dict) -> list[str]:
    """The variants of a rule (``<rule>+<lever>``) each beside its rule, on the tasks they ran."""
    levers = [r for r in data["grid"]["rules"] if "+" in r and any(r in cells for cells in agg.values())]
    if not levers:
        return []
    tasks = [t for t, cells in agg.items() if any(r in cells for r in levers)]
    labels = _labels(data)
    bases = list(dict.fromkeys(r.split("+")[0] for r in levers))
    lines = ["## Levers", "",
             "Each variant changes one setting of a rule (the row above it, as the grid runs it); MMER (final greedy "
             "return), the same budget.", "",
             "| variant | " + " | ".join(tasks) + " |", "|---|" + "---|" * len(tasks)]
    for rule in [r for base in bases for r in (base, *[v for v in levers if v.split("+")[0] == base])]:
        name = labels.get(rule, rule) if "+" not in rule else "&nbsp;&nbsp;" + labels.get(rule, rule)
        lines.append(f"| {name} | " + " | ".join(
            f"{_fmt(agg[t].get(rule), 'mmer')} ({_fmt(agg[t].get(rule), 'final_return')})" for t in tasks) + " |")
    return lines + [""]


def _recall(data: dict) -> list[str]:
    runs = [r for r in data["runs"] if r["task"] == "memory:recall"]
    if not runs:
        return []
    lines = ["## The default task: wall time to 95 % greedy success", "",
             "`memory:recall` with distractors (K = 4, D = 40; chance 25 %). `rtrl-rl train` with its defaults "
             "(stops at 95 %), and the peer with greedy evaluations of 256 episodes every "
             f"{data['meta']['recall']['eval_interval_steps']:,} steps (their time counts), until 95 % or its "
             "step budget.", "", "| rule | seed | steps | wall (s) | time to 95 % greedy (s) | last greedy success |",
             "|---|---|---|---|---|---|"]
    labels = _labels(data) | {"rtrl-rl-default": "rtrl-rl train (defaults: RTRL eLSTM)"}
    for r in runs:
        if "error" in r:
            lines.append(f"| {labels[r['rule']]} | {r['seed']} | failed: {r['error'].splitlines()[-1]} | | | |")
            continue
        last = (r.get("evaluations") or [{}])[-1].get("success_rate")
        ttt = r.get("time_to_target_s")
        lines.append(f"| {labels[r['rule']]} | {r['seed']} | {r['steps']:,} | {r['wall_s']:.0f} | "
                     f"{'not reached' if ttt is None else f'{ttt:.0f}'} | {'–' if last is None else f'{last:.3f}'} |")
    return lines + [""]


def full_grid_estimate(agg: dict, jobs: int, runs_per_rule: int, steps: int) -> dict[str, float]:
    """Hours the full grid would take per rule at the mean throughput measured here (None: not measured).

    ``runs_per_rule`` runs of ``steps`` each, ``jobs`` at a time; throughput varies across
    tasks (episode lengths, env cost), so this is an order of magnitude, not a forecast.
    """
    out = {}
    for rule in dict.fromkeys(r for cells in agg.values() for r in cells if "+" not in r):
        rates = [cells[rule]["sps"] for cells in agg.values() if rule in cells]
        out[rule] = runs_per_rule * steps / statistics.fmean(rates) / jobs / 3600
    return out


def _estimate_line(data: dict, agg: dict) -> list[str]:
    from rtrl_rl.experiments.popgym import TASKS

    hours = full_grid_estimate(agg, data["meta"]["jobs"], 3 * len(TASKS), 3_000_000)
    if not hours or not missing_from_full_grid(data):
        return []
    labels = _labels(data)
    parts = ", ".join(f"{labels.get(r, r)} {h:.1f} h" for r, h in hours.items())
    return [f"At the throughputs measured here, the full grid (13 tasks x 3 seeds x 3M steps) would take about "
            f"{sum(hours.values()):.0f} h with {data['meta']['jobs']} runs at a time on this machine under this "
            f"load: {parts}.", ""]


def write_page(data: dict, out: Path, md: Path) -> list[Path]:
    """Write both plots and the page; return their paths."""
    g, m = data["grid"], data["meta"]
    agg = aggregate(data["runs"], g["tasks"], [*g["rules"], PEER])
    data["aggregate"] = agg
    steps_png = plot_curves(data, out / "popgym_steps.png", "steps")
    wall_png = plot_curves(data, out / "popgym_wall.png", "wall")
    mach, v = m["machine"], m["versions"]
    labels = _labels(data)
    machines = machines_line(data["runs"], lambda r: labels.get(r["rule"], r["rule"]))
    took = _span(data["runs"])
    lines = [
        "# POPGym benchmark", "",
        f"Generated by `{without_places(m['command'])}` (started {m['started']}, {took}); rebuilt from "
        f"`{m['json']}` by `{m['report_command']}`. **Do not edit by hand.**", "",
        (f"Machine: {mach['nproc']} cores ({mach['cpu']}), {mach['mem_gib']} GiB" if not machines else
         f"Machines: {mach['nproc']} cores each, {mach['mem_gib']} GiB; the runs of this page ran on more than "
         f"one CPU model, so compare wall times within one machine only. {machines}") +
        f". Load average {mach['load_start']} at the start"
        + (f" and {mach['load_end']} at the end" if mach.get("load_end") else " (the last invocation was stopped "
           "before its end)") + " (the machine was shared: wall times are "
        f"upper bounds). {m['jobs']} runs at a time, one torch thread each. Versions: " +
        ", ".join(f"{k} {val}" for k, val in v.items()) + ".", "",
        f"Grid `{g['name']}`: tasks {', '.join(g['tasks'])}; seeds {g['seeds']}; **{g['total_steps']:,} environment "
        f"steps per run** for every rule (the POPGym paper used 15M). Segment T = {g['segment_length']} for every "
        "rule except the episode-long BPTT baseline, whose segment is the task's longest episode. Every run: "
        "`configs/default.yaml` settings (128 streams, Adam 3e-3, n = 64, V-trace)"
        + (f", then `{' '.join(g['shared'])}` for every rule (POPGym's small per-step rewards; chosen on "
           "RepeatFirstEasy and CountRecallEasy, see the Levers table)" if g.get("shared") else "")
        + ", then the rule's overrides listed below.",
        "",
        "**Metric.** MMER, POPGym's max-mean episodic return: the training curve is, per update, the mean return "
        f"of the episodes that ended in it; it is averaged over fixed windows of {WINDOW_STEPS:,} environment steps "
        "and MMER is the largest window mean. In brackets: the final greedy evaluation return (256 fresh "
        "episodes). Mean ± std over seeds (std only with more than one seed). POPGym returns lie in [-1, 1].", "",
        "## MMER (final greedy return)", "", *_results_table(data, agg), "",
        *targets_section(agg, _labels(data), len(g["tasks"]), m["peer"], cost=data.get("cost")),
        *cost_section(data.get("cost"), _labels(data)),
        *_levers(data, agg),
        f"![training return against steps]({out.name}/{steps_png.name})", "",
        f"![training return against wall time]({out.name}/{wall_png.name})", "",
        *_recall(data),
        "## Rules", "",
        *[f"- **{r['label']}**: `{' '.join(r['overrides']).format(episode='<episode length>')}`" for r in g["rules"].values()],
        "- Episode lengths (the segment of the episode-long rule): " + ", ".join(f"{t} {n}" for t, n in g["episodes"].items()) + ".",
        f"- **{PEER_LABEL}**: {m['peer']}", "",
        "## Commands", "",
        *sorted({f"- `{r['command']}`" for r in data["runs"] if "command" in r}), "",
        *(["## Not measured here", "", *[f"- {n}" for n in _notes(data)], ""] if _notes(data) else []),
        *_estimate_line(data, agg),
    ]
    failed = [r for r in data["runs"] if "error" in r]
    if failed:
        lines += ["## Failed runs", "", *[f"- {r['task']} {r['rule']} seed {r['seed']}: "
                                           f"`{r['error'].strip().splitlines()[-1]}`" for r in failed], ""]
    md.write_text("\n".join(lines) + "\n")
    return [md, steps_png, wall_png]
