"""``docs/results_suites.md`` and its chart, from ``suites.json`` alone."""

from __future__ import annotations

import os
from pathlib import Path

from rtrl_rl.bench import charts
from rtrl_rl.bench.page import duration, machine_line, machines_line, reproduce, table, write


def plot(data: dict, path: Path) -> Path:
    """Raw training score against frames, one panel per config, one line per rule."""
    plt = charts.pyplot()
    configs = list(dict.fromkeys(r["config"] for r in data["runs"]))
    fig, axes = plt.subplots(1, len(configs), figsize=(4.5 * len(configs), 3.2), squeeze=False)
    for ax, config in zip(axes[0], configs):
        for run in (r for r in data["runs"] if r["config"] == config):
            per_step = data["grid"]["frames_per_step"].get(config.split("/")[0], 1)
            ax.plot([s * per_step / 1e6 for s, _ in run["curve"]], [v for _, v in run["curve"]], label=run["rule"], lw=1)
        ax.set_title(config)
        ax.set_xlabel("frames (millions)")
        ax.set_ylabel("raw episodic return (training)")
        ax.legend(fontsize=8)
    return charts.save(fig, path)


def _evaluation(run: dict, key: str = "evaluation") -> str:
    ev = run.get(key)
    if ev is None:
        return "–"
    if "error" in ev:
        return f"failed: {ev['error'].splitlines()[-1]}"
    return f"{ev['mean_return']:.2f} ± {ev['std_return']:.2f} ({ev['episodes']} episodes)"


def _needs(run: dict, data: dict) -> str:
    """Hours the config's full budget (its ``train.total_steps``) would take at this run's rate."""
    sps, steps = run.get("sps") or 0, data["grid"]["full_steps"].get(run["config"])
    return f"{steps / sps / 3600:,.0f} h" if sps and steps else "–"


def write_page(data: dict, json_path: Path, md_path: Path) -> list[Path]:
    """Write the chart and the page; return their paths."""
    png = plot(data, json_path.parent / "suites_curves.png")
    minutes = sorted({r["minutes"] for r in data["runs"]})
    rows = [[run["config"], run["rule"], f"{run['minutes']:g}", f"{run['steps'] or 0:,}", f"{run['frames']:,}",
             f"{run['wall_s'] or 0:.0f}", f"{run['sps'] or 0:.0f}", _evaluation(run), _evaluation(run, "evaluation_sampled"),
             _needs(run, data), data["grid"]["published"].get(run["config"], "–")] for run in data["runs"]]
    lines = [
        "# Short runs on Atari and ProcGen", "",
        f"![training score against frames]({os.path.relpath(png, md_path.parent)})", "",
        "Each pair of runs (RTRL eLSTM and feed-forward, side by side, one CPU thread each on the "
        f"2-core machine) trained for {' or '.join(f'{m:g}' for m in minutes)} minutes of wall time (column "
        "`min`) with the config's hyperparameters (the reference implementation's), on the synchronous trainer. "
        "These budgets are orders of magnitude below the published ones: **no claim about final performance "
        "follows from them**; they show the full pipeline on the real suites and what a full run would cost "
        "here (the config's `train.total_steps` at the measured rate).", "",
        *table(["config", "rule", "min", "agent steps", "frames", "wall (s)", "steps/s",
                "evaluation, greedy (suite protocol)", "evaluation, sampled", "full budget at this rate",
                "published, at its budget"], rows),
        "Evaluation: fresh episodes with greedy actions (the `rtrl-rl evaluate` default) and, in the next "
        "column, with actions sampled from the policy (`--sample`; – where a run predates it). Greedy "
        "policies can coincide on a few seeded levels while their sampled behaviour differs, and the chart "
        "shows sampled training returns. Atari full episodes with sticky actions 0.25 and the raw score; "
        "ProcGen the full level distribution (test levels). Each run's commands:", "",
        *(f"- `{run['command']}`; then " + " and ".join(f"`{run[key]['command']}`" for key in
                                                        ("evaluation", "evaluation_sampled") if run.get(key, {}).get("command"))
          for run in data["runs"]), "",
        *_reproduce(data, json_path, md_path)]
    return [write(md_path, lines), png]


def _reproduce(data: dict, json_path: Path, md_path: Path) -> list[str]:
    """One command per wall-time budget (its configs), then the page."""
    by_minutes: dict[float, list[str]] = {}
    for run in data["runs"]:
        configs = by_minutes.setdefault(run["minutes"], [])
        if run["config"] not in configs:
            configs.append(run["config"])
    commands = [(f"rtrl-rl bench suites --configs {' '.join(configs)} --minutes {minutes:g}",
                 f"{len(configs)} pairs of {duration(60 * minutes)} of training each, then their evaluations "
                 "(the runs of these configs replace earlier ones in the JSON)") for minutes, configs in by_minutes.items()]
    commands.append(("rtrl-rl bench suites --report-only", "this page and its chart from the JSON, in seconds"))
    machines = machines_line(data["runs"], lambda r: f"{r['config']} {r['rule']}")
    return [*reproduce([os.path.relpath(json_path, md_path.parent)], commands[-3:]),
            f"Machine: {machine_line(data['meta'])}" + (f" The runs' CPUs: {machines}." if machines else ""), ""]
