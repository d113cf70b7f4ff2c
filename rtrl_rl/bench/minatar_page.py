"""``docs/results_minatar.md`` and its chart, from ``minatar.json`` (and the published figures of
``minatar_published.json`` beside it) alone."""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path

from rtrl_rl.bench import charts
from rtrl_rl.bench.curves import window_means
from rtrl_rl.bench.page import (duration, estimated, fmt, machine_line, machines_line, of_values, reproduce, table,
                                write)

#: the published figures, a results file of their own beside the measured one
PUBLISHED_NAME = "minatar_published.json"
#: the chart's smoothing: the mean of the curve's points in each window of this many frames
CHART_WINDOW = 100_000
#: the frame budget of the speed target (a 5M-frame segment run in at most SPEED_TARGET_S)
TARGET_FRAMES, SPEED_TARGET_S = 5_000_000, 900
#: which published figure each target compares with: target rule prefix -> source key
TARGET_SOURCES = {"segment": "minatar-dqn", "stream": "stream-ac-lambda"}


def finished(data: dict) -> list[dict]:
    """The runs that reached their grid's budget."""
    budgets = data["grid"]["total_steps"]
    return [r for r in data["runs"] if "error" not in r and (r.get("steps") or 0) >= budgets[_block(r["rule"])]]


def _block(rule: str) -> str:
    return rule.split("-")[0]


def final_return(run: dict, fraction: float, budget: int) -> float | None:
    """The mean of the curve's points logged in the last ``fraction`` of the budget's steps
    (None when no episode ended there)."""
    tail = [ret for step, _, ret in run["curve"] if step >= (1 - fraction) * budget]
    return statistics.fmean(tail) if tail else None


def by_cell(data: dict) -> dict[tuple[str, str], list[dict]]:
    """(game, rule) -> its finished runs, seeds in order."""
    out: dict[tuple[str, str], list[dict]] = {}
    for r in sorted(finished(data), key=lambda r: r["seed"]):
        out.setdefault((r["task"], r["rule"]), []).append(r)
    return out


def finals(data: dict, runs: list[dict]) -> list[float]:
    g = data["grid"]
    values = [final_return(r, g["final_fraction"], g["total_steps"][_block(r["rule"])]) for r in runs]
    return [v for v in values if v is not None]


def plot(data: dict, path: Path) -> Path:
    """Training return against frames, one panel per game, one line per rule (the mean over
    seeds of each window's mean)."""
    plt = charts.pyplot()
    games, cells = data["grid"]["games"], by_cell(data)
    fig, axes = plt.subplots(1, len(games), figsize=(3.2 * len(games), 3.0), squeeze=False)
    for ax, game in zip(axes[0], games):
        for rule, about in data["grid"]["rules"].items():
            runs = cells.get((game, rule), [])
            if not runs:
                continue
            windows: dict[int, list[float]] = {}
            for r in runs:
                for end, value in window_means(r["curve"], CHART_WINDOW):
                    windows.setdefault(end, []).append(value)
            ends = sorted(windows)
            ax.plot([e / 1e6 for e in ends], [statistics.fmean(windows[e]) for e in ends], lw=1,
                    label=f"{about['label']} ({len(runs)} seed{'s' if len(runs) > 1 else ''})")
        if not any(cells.get((game, rule)) for rule in data["grid"]["rules"]):
            ax.text(0.5, 0.5, "no run yet", transform=ax.transAxes, ha="center", va="center", fontsize=8)
        ax.set_title(game, fontsize=9)
        ax.set_xlabel("frames (millions)", fontsize=8)
    axes[0][0].set_ylabel("training return", fontsize=8)
    return charts.save_with_legend(fig, path, axes[0])


def load_published(json_path: Path) -> dict | None:
    """The published figures beside the results JSON, or None where there is no such file."""
    path = Path(json_path).parent / PUBLISHED_NAME
    return json.loads(path.read_text()) if path.is_file() else None


def _sources(published: dict | None) -> dict[str, dict]:
    return {s["key"]: s for s in (published or {}).get("sources", [])}


def targets(data: dict, published: dict | None) -> list[list[str]]:
    """The three targets: what each compares, and whether the results judge it."""
    cells, games, sources = by_cell(data), data["grid"]["games"], _sources(published)
    rows = []
    for block, what in (("segment", "the segment agent (RTRL eLSTM) at least matches the published DQN at the "
                                    "same frames on at least 3 of 5 games"),
                        ("stream", "the streaming learner (RTRL eLSTM) comes within 10% of the published stream "
                                   "AC(λ), or beats it, on at least 3 of 5 games")):
        rule, source = f"{block}-rtrl", sources.get(TARGET_SOURCES[block], {})
        values = source.get("values", {})
        measured = [g for g in games if cells.get((g, rule))]
        compared = [g for g in measured if values.get(g) is not None]
        if not compared:
            no_figure = "no published figure" if not any(v is not None for v in values.values()) else \
                "no published figure for the measured games"
            verdict = (f"**cannot be judged**: {no_figure} ({source.get('source', 'source not recorded')}: "
                       f"{source.get('note', 'no value')}); measured on {len(measured)} of {len(games)} games")
        else:
            ratio = 1.0 if block == "segment" else 0.9
            met = [g for g in compared if statistics.fmean(finals(data, cells[(g, rule)]) or [float("nan")])
                   >= ratio * values[g]]
            verdict = (f"met on {len(met)} of {len(compared)} compared games ({', '.join(met) or 'none'}); "
                       f"{'**met**' if len(met) >= 3 else '**not met**' if len(compared) == len(games) else 'open'}")
        rows.append([what, verdict])
    walls = [r["process_wall_s"] for r in finished(data) if r["rule"] == "segment-rtrl"]
    if data["grid"]["total_steps"]["segment"] != TARGET_FRAMES:
        speed = f"**cannot be judged**: this grid's runs are {data['grid']['total_steps']['segment']:,} frames"
    elif not walls:
        speed = "**cannot be judged**: no 5M-frame run measured yet"
    else:
        speed = (f"{'**met**' if max(walls) <= SPEED_TARGET_S else '**not met**'}: {len(walls)} run{'s' if len(walls) > 1 else ''}, "
        f"{', '.join(duration(w) for w in walls)} of wall time, one run at a time with one thread on the shared "
        "2-core machine (its load is in the machine line below)")
    rows.append(["a 5M-frame run of the segment agent takes at most 15 minutes on 2 cores", speed])
    return rows


def results_rows(data: dict) -> list[list[str]]:
    """Per game and rule: final return over seeds, seeds, wall time and steps per second."""
    cells, rows = by_cell(data), []
    for rule, about in data["grid"]["rules"].items():
        for game in data["grid"]["games"]:
            runs = cells.get((game, rule), [])
            if not runs:
                continue
            walls = [r["process_wall_s"] for r in runs]
            rows.append([game, about["label"], of_values(finals(data, runs)), ", ".join(str(r["seed"]) for r in runs),
                         duration(statistics.fmean(walls)), f"{statistics.fmean(r['sps'] for r in runs):,.0f}"])
    return rows


def missing_lines(data: dict) -> list[str]:
    """Which cells of the grid have no finished run, one line per rule."""
    g, cells, lines = data["grid"], by_cell(data), []
    for rule, about in g["rules"].items():
        absent = [f"{game} seed{'s' if len(left) > 1 else ''} {', '.join(map(str, left))}" for game in g["games"]
                  if (left := [s for s in g["seeds"] if s not in {r['seed'] for r in cells.get((game, rule), [])}])]
        if absent:
            lines.append(f"- {about['label']}: " + ("every cell" if len(absent) == len(g["games"]) and all(
                not cells.get((game, rule)) for game in g["games"]) else "; ".join(absent)))
    return lines or ["- none: every cell of the grid has a finished run"]


def cost_lines(data: dict) -> list[str]:
    """What a full run of each timed rule would take, from the ``cost`` runs."""
    lines = []
    for row in data.get("cost", []):
        if "error" in row or not row.get("sps"):
            continue
        budget = data["grid"]["total_steps"][_block(row["rule"])]
        label = data["grid"]["rules"][row["rule"]]["label"]
        lines.append(f"- {label}: {row['sps']:,.0f} steps/s in a {row['steps']:,}-step run on {row['task']} "
                     f"(`{row['command']}`), so a {budget / 1e6:g}M-frame run would take about "
                     f"{duration(budget / row['sps'])}, and its {len(data['grid']['games']) * len(data['grid']['seeds'])}"
                     f" runs {duration(budget / row['sps'] * len(data['grid']['games']) * len(data['grid']['seeds']))}"
                     " one at a time.")
    return lines


def published_rows(published: dict | None, games: list[str]) -> list[list[str]]:
    return [[s["method"], *(fmt(s["values"].get(g), 0) if s["values"].get(g) is not None else "–" for g in games),
             f"{s['frames']:,}" if s.get("frames") else "–",
             f"{s['source']}; {s['where']}" + (" (read off a plot)" if s.get("read_off_plot") else "")
             + f". Protocol: {s['protocol']}. {s.get('note', '')}"] for s in (published or {}).get("sources", [])]


def write_page(data: dict, json_path: Path, md_path: Path) -> list[Path]:
    """Write the chart and the page; return their paths."""
    json_path, md_path = Path(json_path), Path(md_path)
    png = plot(data, json_path.parent / "minatar_curves.png")
    g, published = data["grid"], load_published(json_path)
    pct = f"{100 * g['final_fraction']:g}%"
    lines = [
        "# MinAtar: the segment agent and the streaming learner", "",
        f"![training return against frames]({os.path.relpath(png, md_path.parent)})", "",
        "The five MinAtar games (Young & Tian 2019) with MinAtar's own settings: sticky actions 0.1, difficulty "
        "ramping, the full action set of 6. MinAtar has no frame skip, so **a frame is an agent step**: the "
        f"budget of {g['total_steps']['segment'] / 1e6:g}M frames is {g['total_steps']['segment']:,} environment "
        "steps (summed over the segment agent's streams). The chart shows the training return (each point the mean "
        f"of the returns logged in {CHART_WINDOW:,} frames, averaged over the seeds).", "",
        "## Targets", "",
        *table(["target", "result"], targets(data, published)),
        "## Final return", "",
        f"**Final return** of a run: the mean of its training curve's points logged in the last {pct} of its "
        f"steps (the last {g['final_fraction'] * g['total_steps']['segment']:,.0f} frames); each point is the mean "
        "return of the training episodes that ended during one update (a segment of all streams, or one step of "
        "the streaming learner). The table gives its mean ± std over seeds (the mean alone for one seed), the "
        "mean wall time per run (the training run in its process: building it and training) and the training rate.", "",
        *table(["game", "rule", "final return", "seeds", "wall time per run", "steps/s"], results_rows(data)),
        "## Missing cells", "",
        f"The grid: {len(g['games'])} games × {len(g['rules'])} rules × seeds {', '.join(map(str, g['seeds']))}. "
        "These cells have no finished run yet, and the tables and chart above leave them out:", "",
        *missing_lines(data), "",
        f"Time of the whole grid, one run at a time: {estimated(g['plans']['full'], finished(data), 1)}.", "",
        *(["The streaming learner's full runs are not measured: each frame is one update (two forward and two "
           "backward passes of the model), and its measured rate makes a run hours long here. The rate is that of "
           "one short run at the start of training, under the machine's load then; a whole run's may differ:", "",
           *cost_lines(data), ""] if cost_lines(data) else []),
        "## Published figures", "",
        "As recorded in `minatar_published.json`, with their exact source; – where no number was found (a figure "
        "only in a plot not read off). None of them is a measurement of this package.", "",
        *table(["method", *g["games"], "frames", "source, where, protocol"], published_rows(published, g["games"])),
        "## The rules", "",
        *table(["rule", "config", "overrides"], [[a["label"], f"`configs/{a['config']}.yaml`",
                                                 " ".join(f"`{o}`" for o in a["overrides"]) or "–"]
                                                for a in g["rules"].values()]),
        "Each run's exact command is in the JSON.", "",
        *_reproduce(data, json_path, md_path)]
    return [write(md_path, lines), png]


def _reproduce(data: dict, json_path: Path, md_path: Path) -> list[str]:
    runs = finished(data)
    wall = sum(r["process_wall_s"] for r in runs)
    commands = [("rtrl-rl bench minatar --resume --jobs 1",
                 f"the grid's missing cells, one at a time (the {len(runs)} finished run{'s' if len(runs) != 1 else ''}"
                 f" took {duration(wall)} here)"),
                ("rtrl-rl bench minatar --quick --out quick/results", "the quick grid, to check the pipeline, in a "
                 "minute"),
                ("rtrl-rl bench minatar --report-only", "this page and its chart from the JSON, in seconds")]
    machines = machines_line(runs, lambda r: f"{r['task']} {r['rule']}")
    names = [os.path.relpath(p, md_path.parent) for p in (json_path, json_path.parent / PUBLISHED_NAME)]
    return [*reproduce(names, commands),
            f"Machine: {machine_line(data['meta'])}" + (f" The runs' CPUs: {machines}." if machines else ""), ""]
