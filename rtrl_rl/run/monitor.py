"""What a run shows while it trains: the terminal progress line and the TensorBoard scalars.

The synchronous trainer and the process runtime report through the same
:class:`RunMonitor`, so both show the same figures under the same names.
"""

from __future__ import annotations

import collections
import statistics
import time

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class RunMonitor:
    """Tracks steps, recent episodes and losses; refreshes the terminal and TensorBoard.

    ``logger`` is an :class:`rtrl_rl.run.tensorboard_log.TensorBoardLogger` (or any object with
    ``log_scalars(step, dict)``), or None. Recent statistics cover the last ``window``
    finished episodes, so they describe the current policy rather than the whole run.
    """

    def __init__(self, total_steps: int, logger=None, progress: bool = True, interval_s: float = 2.0,
                 window: int = 256, start_step: int = 0) -> None:
        self.total_steps, self.logger, self.interval_s = total_steps, logger, interval_s
        self.returns: collections.deque = collections.deque(maxlen=window)
        self.lengths: collections.deque = collections.deque(maxlen=window)
        self.successes: collections.deque = collections.deque(maxlen=window)
        self.start_time = time.monotonic()
        self.start_step = self.step = start_step
        self.updates = 0
        self.last_losses: dict = {}
        self._last_report = (self.start_time, start_step)
        self._due: bool | None = None  # report_due's answer, kept until the update is recorded
        self.console = Console(stderr=True)
        self._progress = self._make_progress() if progress else None

    def _make_progress(self) -> Progress:
        progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:,.0f}/{task.total:,.0f} steps"),
            TextColumn("{task.fields[stats]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        progress.start()
        self._task = progress.add_task("train", total=self.total_steps, completed=self.step, stats="")
        return progress

    def record_episodes(self, episodes) -> None:
        """Add finished ``rtrl_rl.envs.EpisodeStats`` and log each one to TensorBoard."""
        for ep in episodes:
            self.returns.append(float(ep.ret))
            self.lengths.append(int(ep.length))
            if ep.success is not None:
                self.successes.append(float(ep.success))
        if episodes and self.logger is not None:
            scalars = {
                "charts/episodic_return": statistics.fmean(float(e.ret) for e in episodes),
                "charts/episodic_length": statistics.fmean(int(e.length) for e in episodes),
            }
            flags = [float(e.success) for e in episodes if e.success is not None]
            if flags:
                scalars["charts/success_rate"] = statistics.fmean(flags)
            self.logger.log_scalars(self.step, scalars)

    def report_due(self) -> bool:
        """Whether the next :meth:`record_update` reports (logs and refreshes the display).

        Asked before an update (``Learner.diagnostics_due``), so that metrics that cost a
        pass over the carry are computed only for updates that are logged; the answer
        stands until that update is recorded, so the update asked about is the one reported.
        """
        if self._due is None:
            self._due = time.monotonic() - self._last_report[0] >= self.interval_s
        return self._due

    def record_update(self, steps: int, losses: dict) -> None:
        """Count ``steps`` new environment steps and one learner update with its ``losses``."""
        self.step += steps
        self.updates += 1
        self.last_losses = losses
        now = time.monotonic()
        due = self._due if self._due is not None else now - self._last_report[0] >= self.interval_s
        self._due = None
        if due:
            self._report(now)

    def _report(self, now: float) -> None:
        last_time, last_step = self._last_report
        sps = (self.step - last_step) / max(now - last_time, 1e-9)
        self._last_report = (now, self.step)
        if self.logger is not None:
            self.logger.log_scalars(self.step, {"charts/sps": sps, **self.last_losses})
        if self._progress is not None:
            self._progress.update(self._task, completed=min(self.step, self.total_steps), stats=self.status(sps))

    def status(self, sps: float) -> str:
        """One line: throughput, updates, recent mean return and success rate."""
        parts = [f"{sps:,.0f} sps", f"{self.updates:,} upd"]
        if self.returns:
            parts.append(f"return {statistics.fmean(self.returns):.3g}")
        if self.successes:
            parts.append(f"success {statistics.fmean(self.successes):.2f}")
        return " | ".join(parts)

    def recent(self) -> dict:
        """Recent mean return, length and success rate (None where undefined)."""
        return {
            "mean_return": statistics.fmean(self.returns) if self.returns else None,
            "mean_length": statistics.fmean(self.lengths) if self.lengths else None,
            "success_rate": statistics.fmean(self.successes) if self.successes else None,
        }

    def message(self, text: str) -> None:
        """Print a line above the progress bar."""
        self.console.print(text)

    def verbatim(self, text: str) -> None:
        """Print ``text`` above the progress bar as it is: tracebacks hold "[...]", which rich
        would read as markup, and a long line stays one line (the terminal wraps it)."""
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def wall_s(self) -> float:
        """Seconds since the monitor started."""
        return time.monotonic() - self.start_time

    def close(self) -> None:
        """Stop the live display (the logger is closed by its owner)."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
