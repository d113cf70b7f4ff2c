"""TensorBoard event files in the run directory, under one set of standard scalar names.

The trainer and the process runtime log through :func:`make_logger`; with
``log.tensorboard=false`` they get a :class:`NullLogger` with the same methods, so the
training loop never branches on whether logging is on. ``torch.utils.tensorboard`` is
imported only when a real logger is made.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# Standard scalar names (CleanRL's layout, so dashboards and habits carry over).
EPISODIC_RETURN = "charts/episodic_return"
EPISODIC_LENGTH = "charts/episodic_length"
SUCCESS_RATE = "charts/success_rate"
SPS = "charts/sps"
POLICY_LOSS = "losses/policy"
VALUE_LOSS = "losses/value"
ENTROPY = "losses/entropy"
GRAD_NORM = "losses/grad_norm"
SENSITIVITY_NORM = "rtrl/sensitivity_norm"
POLICY_LAG = "runtime/policy_lag"
STANDARD_SCALARS = (EPISODIC_RETURN, EPISODIC_LENGTH, SUCCESS_RATE, SPS, POLICY_LOSS, VALUE_LOSS,
                    ENTROPY, GRAD_NORM, SENSITIVITY_NORM, POLICY_LAG)
#: what agent.algorithm=ppo logs besides (CleanRL's names; ppo/epochs: epochs run per update)
PPO_SCALARS = ("losses/clipfrac", "losses/approx_kl", "losses/old_approx_kl", "losses/explained_variance",
               "ppo/epochs")

#: prefix of the final metrics that :meth:`TensorBoardLogger.log_hparams` links to the run
FINAL_PREFIX = "final/"


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, bool | int | float | str]:
    """Flatten a nested config into ``{"train.lr": 0.0006, ...}`` with TensorBoard-safe values.

    The HParams dashboard takes only numbers, strings and booleans: lists, empty mappings
    and None become their text.
    """
    flat: dict[str, bool | int | float | str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, name + "."))
        elif isinstance(value, (bool, int, float, str)):
            flat[name] = value
        else:
            flat[name] = str(value)
    return flat


def _number(value: Any) -> float | None:
    """``value`` as a float (tensors and numpy scalars too), or None for None and NaN."""
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


class TensorBoardLogger:
    """Writes scalars and hyperparameters into event files in ``run_dir``."""

    def __init__(self, run_dir: str | Path, flush_secs: int = 30) -> None:
        from torch.utils.tensorboard import SummaryWriter  # heavy: only when logging is on

        self.run_dir = Path(run_dir)
        self.writer = SummaryWriter(log_dir=str(self.run_dir), flush_secs=flush_secs)
        self.last_step = 0

    def log_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
        """Log each ``name: value`` at environment step ``step``; None and NaN are skipped
        (a metric that is undefined this time, e.g. no finished episode, is not a zero)."""
        self.last_step = max(self.last_step, int(step))
        for name, value in scalars.items():
            number = _number(value)
            if number is not None:
                self.writer.add_scalar(name, number, global_step=int(step))

    def log_hparams(self, config: Mapping[str, Any], final_metrics: Mapping[str, Any],
                    step: int | None = None) -> None:
        """Record the flattened ``config`` with the run's ``final_metrics`` for the HParams tab.

        Metrics are logged as scalars named ``final/<name>`` in this same run (not in the
        extra timestamped sub-run that ``SummaryWriter.add_hparams`` would create), at
        ``step`` or else the last step logged, and the hyperparameter summary names them.
        """
        from torch.utils.tensorboard.summary import hparams

        metrics = {f"{FINAL_PREFIX}{k}": n for k, v in final_metrics.items() if (n := _number(v)) is not None}
        experiment, start, end = hparams(flatten(config), metrics)
        file_writer = self.writer._get_file_writer()  # the public add_hparams would open a sub-run
        for summary in (experiment, start, end):
            file_writer.add_summary(summary)
        self.log_scalars(self.last_step if step is None else step, metrics)

    def flush(self) -> None:
        """Write buffered events to disk now."""
        self.writer.flush()

    def close(self) -> None:
        """Flush and close the event file; further calls do nothing."""
        self.writer.close()

    def __enter__(self) -> TensorBoardLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class NullLogger:
    """The logger to use when TensorBoard logging is off: every method does nothing."""

    def log_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
        """Do nothing."""

    def log_hparams(self, config: Mapping[str, Any], final_metrics: Mapping[str, Any],
                    step: int | None = None) -> None:
        """Do nothing."""

    def flush(self) -> None:
        """Do nothing."""

    def close(self) -> None:
        """Do nothing."""

    def __enter__(self) -> NullLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def make_logger(run_dir: str | Path, enabled: bool = True) -> TensorBoardLogger | NullLogger:
    """A TensorBoard logger writing into ``run_dir``, or a :class:`NullLogger` if disabled."""
    return TensorBoardLogger(run_dir) if enabled else NullLogger()
