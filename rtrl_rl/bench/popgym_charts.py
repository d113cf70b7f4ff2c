"""The charts of the POPGym page: MMER per task (the finding), and the training curves."""

from __future__ import annotations

from pathlib import Path

from rtrl_rl.bench import charts
from rtrl_rl.bench.curves import window_means


def plot_tasks(agg: dict, rules: list[str], labels: dict[str, str], path: Path) -> Path:
    """One group of bars per task: the MMER of each of ``rules`` (mean over seeds, the seeds'
    spread as a line), a gap where a rule did not run; a rule with no bar at all keeps its
    colour and place but has no legend entry."""
    plt = charts.pyplot()
    tasks = list(agg)
    fig, ax = plt.subplots(figsize=(11, 3.8))
    width = 0.8 / max(len(rules), 1)  # levers alone: empty panels, still a page
    for k, rule in enumerate(rules):
        xs = [i + (k - (len(rules) - 1) / 2) * width for i in range(len(tasks))]
        cells = [agg[t].get(rule) for t in tasks]
        if not any(cells):
            continue
        ax.bar([x for x, c in zip(xs, cells) if c], [c["mmer"]["mean"] for c in cells if c], width,
               yerr=[c["mmer"]["std"] or 0.0 for c in cells if c], capsize=2, color=f"C{k}", label=labels[rule])
    ax.axhline(0.0, color="black", lw=0.6)
    ax.set_xticks(range(len(tasks)))
    ax.set_xticklabels([t.removesuffix("Easy").replace("Medium", " (Medium)") for t in tasks], rotation=30,
                       ha="right", fontsize=8)
    ax.set_ylim(-1.05, 1.05)
    ax.set_ylabel("MMER (mean over seeds)", fontsize=8)
    return charts.save_with_legend(fig, path, [ax])


def plot_curves(data: dict, plotted: list[str], labels: dict[str, str], path: Path, against: str) -> Path:
    """One panel per task: window means of the training return against steps or wall time,
    one colour per rule of ``plotted`` (every seed of a rule in its colour)."""
    plt = charts.pyplot()
    window = data["grid"]["window_steps"]
    tasks = data["grid"]["tasks"]
    cols = min(4, len(tasks))
    rows = -(-len(tasks) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.8 * rows), squeeze=False)
    colours = {rule: f"C{k % 10}" for k, rule in enumerate(plotted)}  # ten rules at most: one colour each
    for ax, task in zip(axes.flat, tasks):
        for run in (r for r in data["runs"] if r["task"] == task and "error" not in r and r.get("curve")
                    and r["rule"] in colours):
            means = window_means(run["curve"], window)
            if against == "steps":
                xs = [s / 1e6 for s, _ in means]
            else:  # the wall time at which each window ended
                ends = {}
                for step, wall, _ in run["curve"]:
                    ends[(step - 1) // window] = wall
                xs = [ends[(s - 1) // window] for s, _ in means]
            # a run shorter than one window (the peer, on a wall-time budget) is a single point, which a
            # line alone would not draw
            ax.plot(xs, [v for _, v in means], label=labels.get(run["rule"], run["rule"]), lw=1,
                    color=colours[run["rule"]], marker="o" if len(xs) == 1 else None, markersize=4)
        ax.set_title(task, fontsize=9)
        ax.set_xlabel("env steps (millions)" if against == "steps" else "wall time (s)", fontsize=8)
        ax.set_ylim(-1.05, 1.05)
    for ax in list(axes.flat)[len(tasks):]:
        ax.axis("off")
    axes[0][0].set_ylabel(f"mean return per {window:,} steps", fontsize=8)
    return charts.save_with_legend(fig, path, list(axes.flat))
