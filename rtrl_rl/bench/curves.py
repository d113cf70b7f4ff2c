"""Training curves from a run's TensorBoard events, and POPGym's metric on them (MMER)."""

from __future__ import annotations

import statistics
from pathlib import Path

#: MMER windows: this many environment steps each (POPGym averages over train batches)
WINDOW_STEPS = 100_000


def training_curve(run_dir: str | Path, from_start: bool = False) -> list[tuple[int, float, float]]:
    """(step, wall time in s since the first logged point, mean return) from TensorBoard.

    Each point is one update's ``charts/episodic_return``: the mean return of the episodes
    that ended during that update's segment. Empty when no episode ended. ``from_start``:
    wall times since the event file was opened (the run's start: what an equal-wall-time
    comparison reads) instead of since the first point.
    """
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    if "charts/episodic_return" not in acc.Tags()["scalars"]:
        return []
    events = acc.Scalars("charts/episodic_return")
    t0 = acc.FirstEventTimestamp() if from_start else events[0].wall_time
    return [(int(e.step), round(e.wall_time - t0, 3), float(e.value)) for e in events]


def window_means(curve: list, window: int = WINDOW_STEPS) -> list[tuple[int, float]]:
    """(window end step, mean of the curve's values in it) for windows (k*window, (k+1)*window].

    Points are (step, wall, value) or (step, value); empty windows are skipped.
    """
    buckets: dict[int, list[float]] = {}
    for point in curve:
        buckets.setdefault((point[0] - 1) // window, []).append(point[-1])
    return [((k + 1) * window, statistics.fmean(v)) for k, v in sorted(buckets.items())]


def mmer(curve: list, window: int = WINDOW_STEPS) -> float | None:
    """POPGym's max-mean episodic return: the largest window mean of the training curve.

    None when no episode ended. Window means are means of the per-update means (every
    update of a run has the same T x B steps), not of the individual episodes.
    """
    means = window_means(curve, window)
    return max(v for _, v in means) if means else None


def mmer_within(curve: list, wall_s: float, window: int = WINDOW_STEPS) -> float | None:
    """MMER of the part of a (step, wall, value) curve logged within ``wall_s`` seconds: the
    equal-wall-time reading of a run (its last window may be partial). None when no point is."""
    return mmer([p for p in curve if p[1] <= wall_s], window)
