"""A run's bookkeeping around the training loop: run directory, logs, checkpoints, summary.

Both the synchronous trainer and the process runtime own one :class:`RunSession` and run
their loop through :meth:`RunSession.run`. It writes ``config.yaml`` at the start,
checkpoints every ``runtime.checkpoint_every_s`` and after each evaluation, and at the
end, however the loop ended (budget, target, a signal, an exception), a final checkpoint
and ``summary.json`` saying why, with TensorBoard and the progress display closed.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from typing import Callable

from rtrl_rl.config import Config, dump_config, save_config, to_dict
from rtrl_rl.run import checkpoint as ckpt
from rtrl_rl.run.layout import RunPaths, run_dir_of
from rtrl_rl.run.monitor import RunMonitor
from rtrl_rl.run.stopping import StopSignals, TrainingInterrupted
from rtrl_rl.run.tensorboard_log import make_logger


def check_run_dir(run_dir: Path, resume_from: str | Path | None = None) -> None:
    """Refuse to start a new run in a directory that already holds one.

    Two runs in one directory would mix their TensorBoard curves, and the older run's
    checkpoints could be kept as the "best" of the new one. Resuming a run in its own
    directory (``resume_from`` is that directory or one of its checkpoint files) is what
    ``--resume`` is for and passes. Raises ValueError with what to do.
    """
    home = run_dir_of(resume_from) if resume_from is not None else None
    if home is not None and home.resolve() == run_dir.resolve():
        return
    found = [path.name for path in RunPaths(run_dir).written()]
    if found:
        shown = ", ".join(found[:4]) + (", ..." if len(found) > 4 else "")
        raise ValueError(
            f"run_dir {run_dir} already holds a run ({shown}): continue it with "
            f"`rtrl-rl train --resume {run_dir}`, start it again with `rtrl-rl train --overwrite "
            f"run_dir={run_dir} ...` (deletes it), or pass another run_dir=..."
        )


def clear_run_dir(run_dir: Path) -> list[str]:
    """Delete what an earlier run wrote into ``run_dir`` (only the run's own files).

    Returns the names deleted. For ``rtrl-rl train --overwrite`` and for restarting a run
    that stopped before its first checkpoint; other files in the directory stay.
    """
    found = RunPaths(run_dir).written()
    for path in found:
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    return [path.name for path in found]


def has_config_only(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a run's ``config.yaml`` but no checkpoint to resume from
    (the run stopped, e.g. was killed, before its first checkpoint)."""
    return RunPaths(run_dir).config.is_file() and ckpt.latest_checkpoint(run_dir) is None


def interrupted_step(run_dir: Path, config: Config) -> int | None:
    """The step to continue from when ``run_dir`` holds an interrupted run of exactly
    ``config``: a checkpoint, a ``config.yaml`` equal to ``config``'s, and no summary of a run
    that ended any other way (budget, target, an error). None otherwise.

    For the experiment runners, which continue a cell stopped with its grid (a signal, or a
    kill before its summary) instead of training it again from step 0. A run that ended on
    its own, diverged included, is a result and is never continued.
    """
    paths = RunPaths(run_dir)
    entries = ckpt.list_checkpoints(run_dir)  # oldest first
    if not entries or not paths.config.is_file() or paths.config.read_text() != dump_config(config):
        return None
    if paths.summary.is_file():
        try:
            summary = json.loads(paths.summary.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(summary, dict) or not interrupted(summary):
            return None
    return int(entries[-1]["step"])


def interrupted(summary: dict) -> bool:
    """Whether a run's summary says it was stopped before its budget (a signal, an actor's
    failure): ``stopped`` reads ``interrupted (...)``."""
    return str(summary.get("stopped", "")).startswith("interrupted")


def fresh_run_dir(run_dir: Path) -> bool:
    """Make ``run_dir`` an empty directory, deleting an earlier run in it; True if one was.

    For the experiment runners, which own their work directories and rerun a grid point
    or a suite pair into the same place; never called on a user's ``run_dir``.
    """
    existed = run_dir.exists()
    if existed:
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    return existed


def describe_spaces(model) -> dict:
    """Printable observation and action spaces, stored in checkpoints for compatibility checks."""
    return {"observation_space": repr(model.observation_space), "action_space": repr(model.action_space)}


class RunSession:
    """Owns the run directory of one training run and everything written into it.

    :attr:`signals` records stop signals while :meth:`run` runs the loop; the loop polls
    ``signals.received`` between updates.
    """

    def __init__(self, config: Config, model, learner, start_step: int = 0, start_updates: int = 0,
                 start_time_s: float = 0.0) -> None:
        self.config, self.model, self.learner = config, model, learner
        self.signals = StopSignals()
        self._learner_start = learner.updates
        self.paths = RunPaths(config.run_dir)
        self.run_dir = self.paths.root
        self.run_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, self.paths.config)
        self.logger = make_logger(self.paths.tensorboard, enabled=config.log.tensorboard)
        self.monitor = RunMonitor(
            config.train.total_steps,
            logger=self.logger,
            progress=config.log.progress,
            interval_s=config.log.interval_s,
            start_step=start_step,
        )
        self.monitor.updates = self.monitor_start_updates = start_updates
        learner.diagnostics_due = self.monitor.report_due  # costly metrics only when logged
        self.prior_wall_s = start_time_s
        self.evaluations: list[dict] = []
        self.last_checkpoint = time.monotonic()
        self.next_eval = start_step + config.log.eval_interval_steps
        self.time_to_target_s: float | None = None

    def payload(self) -> dict:
        """Everything a checkpoint holds (see ``docs/checkpoints.md``)."""
        return ckpt.make_payload(
            model=self.model,
            learner=self.learner,
            step=self.monitor.step,
            updates=self.monitor.updates,
            config=to_dict(self.config),
            extra={"wall_s": self.wall_s(), **describe_spaces(self.model)},
        )

    def wall_s(self) -> float:
        """Training wall time, including earlier sessions of a resumed run."""
        return self.prior_wall_s + self.monitor.wall_s()

    def checkpoint(self, score: float | None = None) -> Path:
        """Write a checkpoint now (atomically) and point ``model.pt`` at it."""
        self.last_checkpoint = time.monotonic()
        return ckpt.save_checkpoint(
            self.run_dir, self.payload(), self.monitor.step, keep=self.config.runtime.keep_checkpoints, score=score
        )

    def maybe_checkpoint(self) -> None:
        """Checkpoint when ``runtime.checkpoint_every_s`` has passed since the last one."""
        if time.monotonic() - self.last_checkpoint >= self.config.runtime.checkpoint_every_s:
            self.checkpoint()

    def after_update(self, evaluate) -> bool:
        """Between updates: the periodic checkpoint, and an evaluation every
        ``log.eval_interval_steps``; True when it reached the target."""
        self.maybe_checkpoint()
        if self.monitor.step < self.next_eval:
            return False
        self.next_eval += self.config.log.eval_interval_steps
        return self.evaluate_and_check(evaluate)

    def evaluate_and_check(self, evaluate) -> bool:
        """Evaluate greedily, log, checkpoint with the score; True when the target is reached.

        ``evaluate(config, model, episodes) -> dict`` runs the episodes (the caller picks
        the device and process it runs in). A stop signal during the episodes raises
        :class:`TrainingInterrupted` (evaluation changes no training state).
        """
        episodes = self.config.log.eval_episodes
        if episodes <= 0:
            return False
        with self.signals.interruptible():
            result = evaluate(self.config, self.model, episodes)
        result = {k: v for k, v in result.items() if not isinstance(v, list)}
        result.update(step=self.monitor.step, wall_s=round(self.wall_s(), 2))
        self.evaluations.append(result)
        scalars = {"eval/mean_return": result["mean_return"]}
        line = f"eval @ {self.monitor.step:,} steps ({result['wall_s']:.0f} s): return {result['mean_return']:.3g}"
        if "success_rate" in result:
            scalars["eval/success_rate"] = result["success_rate"]
            line += f", greedy success {result['success_rate']:.3f}"
        self.logger.log_scalars(self.monitor.step, scalars)
        self.monitor.message(line)
        self.checkpoint(score=result["mean_return"])
        target = self.config.train.target_success
        reached = target > 0 and result.get("success_rate", 0.0) >= target
        if reached and self.time_to_target_s is None:
            self.time_to_target_s = result["wall_s"]
        return reached

    def stop_requested(self) -> str | None:
        """``interrupted (SIGNAL)`` once a stop signal arrived, else None (poll between updates)."""
        return f"interrupted ({self.signals.received})" if self.signals.received else None

    def run(self, loop: Callable[[], str], evaluate) -> dict:
        """Run ``loop() -> reason`` and end the session whatever happens; returns the summary.

        Stop signals are recorded for the loop to poll from the start until the summary
        is written, so none can land inside the final checkpoint. The loop ends with
        ``budget`` or ``target``; a :class:`TrainingInterrupted` ends it as interrupted.
        Any exception gets a best-effort final checkpoint and a summary saying what
        happened (see :meth:`abort`), then propagates.
        """
        with self.signals:
            try:
                try:
                    reason = loop()
                except TrainingInterrupted as stop:
                    reason = f"interrupted ({stop})"
                return self.finish(reason, evaluate)
            except Exception as err:  # from the loop, or from the final evaluation
                self.abort(err)
                raise

    def consistent(self) -> bool:
        """Whether parameters, optimizer and counters are from the same update.

        The loops record every update right after the learner makes it; an exception
        between the two (inside the update) leaves the learner one update ahead.
        """
        return self.learner.updates - self._learner_start == self.monitor.updates - self.monitor_start_updates

    def abort(self, err: BaseException) -> dict:
        """End the session after ``err``: final checkpoint if the state is consistent, summary.

        The summary's ``stopped`` is ``err.reason`` when the exception has one (e.g. an
        env hang, an actor failure), else ``error (Type: message)``; ``error`` holds the
        message, ``failure`` the exception's ``failure`` record when it has one (an
        actor's exception, type, message and env spec), and ``final_checkpoint`` the step
        saved (None when none could be).
        """
        first_line = (str(err).strip().splitlines() or [""])[0]
        reason = getattr(err, "reason", None) or f"error ({type(err).__name__}: {first_line})"
        saved = None
        try:
            if self.consistent():
                self.checkpoint()
                saved = self.monitor.step
            else:
                self.monitor.message("the error came inside an update: no final checkpoint "
                                     "(the latest periodic one is kept)")
        except Exception as save_err:  # best effort: the summary and the original error still matter
            self.monitor.message(f"the final checkpoint failed: {save_err}")
        self.monitor.close()
        summary = {**self.summary(reason), "error": f"{type(err).__name__}: {first_line}", "final_checkpoint": saved}
        if getattr(err, "failure", None):  # what failed, as the exception records it (an actor's: ActorFailure)
            summary["failure"] = err.failure
        self.paths.summary.write_text(json.dumps(summary, indent=2))
        self.logger.close()
        err.run_summary = summary  # tells the command line that training had started
        return summary

    def finish(self, reason: str, evaluate) -> dict:
        """Final evaluation (unless one just ran), checkpoint, summary.json; returns the summary.

        A stop signal during the final evaluation skips it (the reason becomes
        ``interrupted``); the checkpoint and the summary are still written.
        """
        interrupted = reason.startswith("interrupted")
        fresh = self.evaluations and self.evaluations[-1]["step"] == self.monitor.step
        if not interrupted and not fresh:
            try:
                self.evaluate_and_check(evaluate)
            except TrainingInterrupted as stop:
                reason = f"interrupted ({stop})"
        if not (self.evaluations and self.evaluations[-1]["step"] == self.monitor.step):
            self.checkpoint()  # interrupted, or evaluation is off: the final state still gets saved
        self.monitor.close()
        summary = self.summary(reason)
        self.paths.summary.write_text(json.dumps(summary, indent=2))
        self.logger.log_hparams(to_dict(self.config), {k: v for k, v in summary.items() if isinstance(v, float)})
        self.logger.close()
        return summary

    def summary(self, reason: str) -> dict:
        """The figures of the run: steps, wall time, throughput, returns, success."""
        wall = self.wall_s()
        recent = self.monitor.recent()
        last_eval = self.evaluations[-1] if self.evaluations else {}
        summary = {
            "steps": self.monitor.step,
            "updates": self.monitor.updates,
            "wall_s": round(wall, 2),
            "sps": round((self.monitor.step - self.monitor.start_step) / max(self.monitor.wall_s(), 1e-9), 1),
            "stopped": reason,
            "mean_return": last_eval.get("mean_return", recent["mean_return"]),
            "train_mean_return": recent["mean_return"],
            "run_dir": str(self.run_dir),
            "evaluations": self.evaluations,
        }
        if "success_rate" in last_eval or recent["success_rate"] is not None:
            summary["success_rate"] = last_eval.get("success_rate", recent["success_rate"])
            summary["train_success_rate"] = recent["success_rate"]
            summary["time_to_target_s"] = self.time_to_target_s
        return summary
