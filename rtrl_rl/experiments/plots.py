"""The PNG plots of the memory experiment, drawn from the aggregated JSON only.

Small figures at a low resolution keep each PNG well under 200 KB, so they can live in git.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402

DPI = 80
STYLE = {"rtrl-elstm": ("tab:blue", "o"), "rtrl-mingru": ("tab:cyan", "s"), "tbptt-elstm": ("tab:red", "v"),
         "tbptt-lstm": ("tab:orange", "^"), "feedforward": ("tab:gray", "x")}


def _chance_and_segment(ax, chance: float, segment: int | None) -> None:
    ax.axhline(chance, color="black", lw=0.8, ls="--", label="chance")
    if segment is not None:
        ax.axvline(segment, color="black", lw=0.8, ls=":", label="L = T")


def success_vs_length(data: dict, path: Path) -> Path:
    """One panel per task: final greedy success (mean, std bars) against L, a line per rule."""
    grid, table = data["grid"], data["aggregate"]["final"]
    tasks = list(table)
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for rule, cells in table[task].items():
            lengths = sorted(cells, key=int)
            color, marker = STYLE.get(rule, ("black", "."))
            ax.errorbar([int(L) for L in lengths], [cells[L]["mean"] for L in lengths],
                        yerr=[cells[L]["std"] or 0.0 for L in lengths], color=color, marker=marker,
                        capsize=3, label=grid["rules"][rule]["label"])
        _chance_and_segment(ax, grid["tasks"][task]["chance"], grid["segment_length"])
        ax.set_xscale("log", base=2)
        ax.set_xticks([int(L) for L in data["grid"]["cells"][task]["lengths"]])
        ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_title(task, fontsize=10)
        ax.set_xlabel("delay / corridor length L (steps)")
        ax.set_ylim(-0.02, 1.02)
    axes[0][0].set_ylabel("final greedy success")
    return save_with_legend(fig, path, axes[0])


def learning_curves(data: dict, task: str, path: Path) -> Path:
    """One panel per L: greedy success against frames, mean over seeds, shaded min-max."""
    grid, curves = data["grid"], data["aggregate"]["curves"][task]
    lengths = sorted({L for cells in curves.values() for L in cells}, key=int)
    fig, axes = plt.subplots(1, len(lengths), figsize=(3.4 * len(lengths), 3.0), squeeze=False, sharey=True)
    for ax, L in zip(axes[0], lengths):
        for rule, cells in curves.items():
            if L not in cells:
                continue
            c = cells[L]
            frames = [s / 1e6 for s in c["step"]]
            color, _ = STYLE.get(rule, ("black", "."))
            ax.plot(frames, c["mean"], color=color, label=grid["rules"][rule]["label"])
            ax.fill_between(frames, c["min"], c["max"], color=color, alpha=0.15, lw=0)
        _chance_and_segment(ax, grid["tasks"][task]["chance"], None)
        ax.set_title(f"{task}, L = {L}", fontsize=10)
        ax.set_xlabel("frames (millions)")
        ax.set_ylim(-0.02, 1.02)
    axes[0][0].set_ylabel("greedy success")
    return save_with_legend(fig, path, axes[0])


def save_with_legend(fig, path: Path, axes) -> Path:
    """One legend for the figure (every rule that appears in any panel), then the PNG."""
    labels: dict = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            labels.setdefault(label, handle)
    # at most five entries a row: one row of ten long rule names runs off the figure's edges
    ncol = min(len(labels), 5)
    if labels:  # a figure of empty panels (e.g. only the levers ran) has no legend to draw
        fig.legend(labels.values(), labels.keys(), loc="lower center", ncol=ncol, fontsize=8, frameon=False)
    rows = -(-len(labels) // max(ncol, 1))
    height_in = fig.get_size_inches()[1]  # a legend row at this font takes about a quarter inch
    fig.tight_layout(rect=(0, min(0.4, (0.1 + 0.25 * rows) / height_in), 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path
