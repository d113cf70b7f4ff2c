"""The charts of the result pages: matplotlib, files only, small enough to live in git.

Matplotlib is the ``[plots]`` extra: a page is written only where it is installed, and
the error says so. Small figures at a low resolution keep each PNG well under a few
hundred KB.
"""

from __future__ import annotations

from pathlib import Path

DPI = 80


def pyplot():
    """``matplotlib.pyplot`` on the file-only backend, or an error that names the extra."""
    try:
        import matplotlib
    except ImportError as error:
        raise SystemExit(f'the result pages draw their charts with matplotlib ({error}): '
                         'pip install "rtrl-rl[plots]"') from error
    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: Path, dpi: int = DPI) -> Path:
    """Lay out and write the figure, then free it; returns ``path``."""
    plt = pyplot()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def save_with_legend(fig, path: Path, axes) -> Path:
    """One legend under the panels (every label that appears in any panel), then the PNG."""
    labels: dict = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            labels.setdefault(label, handle)
    # at most five entries a row: one row of ten long rule names runs off the figure's edges
    ncol = min(len(labels), 5)
    if labels:  # a figure of empty panels has no legend to draw
        fig.legend(labels.values(), labels.keys(), loc="lower center", ncol=ncol, fontsize=8, frameon=False)
    rows = -(-len(labels) // max(ncol, 1))
    height_in = fig.get_size_inches()[1]  # a legend row at this font takes about a quarter inch
    fig.tight_layout(rect=(0, min(0.4, (0.1 + 0.25 * rows) / height_in), 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    pyplot().close(fig)
    return path
