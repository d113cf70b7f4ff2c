"""Shared pieces of the online examples: running mean curves, JSON and plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np


def window_means(values: Sequence[float], window: int) -> list[float]:
    """Means of consecutive non-overlapping windows of ``window`` values (a learning curve)."""
    arr = np.asarray(values, dtype=float)
    count = len(arr) // window
    return arr[: count * window].reshape(count, window).mean(1).tolist()


def write_json(path: Path, payload: dict) -> None:
    """Write ``payload`` as indented JSON, creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1) + "\n")


def plot_curves(path: Path, panels: list[tuple[str, dict[str, list[float]]]], window: int, ylabel: str) -> None:
    """One log-scale panel per (title, {label: curve}); x is the step at each window's end.

    Needs matplotlib (``pip install 'rtrl-rl[plots]'``).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover - depends on the install
        raise SystemExit("the plots need matplotlib: pip install 'rtrl-rl[plots]'") from err
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.8), squeeze=False)
    for ax, (title, curves) in zip(axes[0], panels):
        for label, curve in curves.items():
            ax.plot(np.arange(1, len(curve) + 1) * window, curve, label=label)
        ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
