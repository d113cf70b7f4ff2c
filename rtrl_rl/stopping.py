"""How a training run stops: signals become a flag, and a hung environment an error.

Both trainers (the synchronous one and the process runtime's learner) stop the same way.

- :class:`StopSignals` turns SIGINT and SIGTERM into a recorded name that the loop polls
  between updates, so a signal never lands between ``optimizer.step()`` and the counter,
  scheduler and carry updates, nor inside the final checkpoint write: a second Ctrl-C
  while the run saves is recorded and changes nothing. Only inside
  :meth:`StopSignals.interruptible` (greedy evaluation, environment steps: code that
  touches no training state) does a signal raise :class:`TrainingInterrupted`, so a
  Ctrl-C does not wait for a long evaluation or a stuck environment to finish.
- :class:`WatchedEnv` wraps a vectorised env and raises :class:`EnvHang` when one of its
  ``step`` or ``reset`` calls takes longer than ``runtime.step_timeout_s`` (a SIGALRM timer
  armed around each call). An env stuck where no signal handler can run (C code holding
  the GIL) is not interrupted in-process; the process runtime's learner then kills the
  silent actor (see :mod:`rtrl_rl.runtime.run`).
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Any, Iterator

#: the signals that stop a run
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingInterrupted(Exception):
    """A stop signal arrived inside an interruptible region; ``args[0]`` is its name."""


class EnvHang(RuntimeError):
    """An environment call took longer than ``runtime.step_timeout_s``."""

    #: the run's ``stopped`` reason in summary.json
    reason = "env hang"


def in_main_thread() -> bool:
    """Signal handlers can only be installed (and run) in the main thread."""
    return threading.current_thread() is threading.main_thread()


class StopSignals:
    """While active, SIGINT and SIGTERM record their name in :attr:`received`.

    The loop polls :attr:`received` between updates. Inside :meth:`interruptible` a
    signal raises :class:`TrainingInterrupted` instead. Outside the main thread (a
    library user training from a worker thread) no handler is installed and signals
    keep their previous behaviour.
    """

    def __init__(self) -> None:
        self.received: str | None = None
        self._raising = False
        self._previous: dict = {}

    def _handler(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        self.received = self.received or name
        if self._raising:
            # Leave the raising mode before raising: whatever bytecode the exception
            # interrupts, a later signal can only be recorded.
            self._raising = False
            raise TrainingInterrupted(name)

    def __enter__(self) -> "StopSignals":
        if in_main_thread():
            self._previous = {s: signal.signal(s, self._handler) for s in STOP_SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._previous.items():
            signal.signal(sig, old)
        self._previous = {}

    @contextmanager
    def interruptible(self) -> Iterator[None]:
        """A region that a stop signal ends at once with :class:`TrainingInterrupted`.

        Also raises on entry when a signal is already pending. Use it only around code
        whose interruption leaves the training state (parameters, optimizer, counters)
        as it was.
        """
        self._raising = True
        if self.received:
            self._raising = False
            raise TrainingInterrupted(self.received)
        try:
            yield
        finally:
            self._raising = False


class WatchedEnv:
    """A vectorised env whose ``step`` and ``reset`` raise :class:`EnvHang` after ``timeout_s``.

    Every other attribute is the wrapped env's. ``guard()`` (a context manager factory,
    e.g. :meth:`StopSignals.interruptible`) wraps each call too. A timeout of 0, or a
    process where SIGALRM cannot be used (outside the main thread), leaves calls unwatched.
    """

    def __init__(self, venv: Any, timeout_s: float, guard: Any = None) -> None:
        self.venv, self.timeout_s, self.guard = venv, float(timeout_s), guard
        self._watch = self.timeout_s > 0 and hasattr(signal, "setitimer") and in_main_thread()
        self._what = ""

    def __getattr__(self, name: str) -> Any:
        return getattr(self.venv, name)

    def __enter__(self) -> "WatchedEnv":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the wrapped env."""
        self.venv.close()

    def _on_alarm(self, signum: int, frame: Any) -> None:
        raise EnvHang(
            f"the environment's {self._what} did not return within {self.timeout_s:g} s "
            "(runtime.step_timeout_s): it looks hung. Raise runtime.step_timeout_s if its "
            "steps are really that slow, or 0 to never time out."
        )

    def _call(self, what: str, fn: Any, *args: Any) -> Any:
        # The timer is armed outside the guard and disarmed before the old SIGALRM handler
        # comes back, so neither an interruption nor a late alarm can leave it armed.
        if not self._watch:
            return self._guarded(fn, *args)
        self._what = what
        previous = signal.getsignal(signal.SIGALRM)
        try:
            signal.signal(signal.SIGALRM, self._on_alarm)
            signal.setitimer(signal.ITIMER_REAL, self.timeout_s)
            return self._guarded(fn, *args)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

    def _guarded(self, fn: Any, *args: Any) -> Any:
        if self.guard is None:
            return fn(*args)
        with self.guard():
            return fn(*args)

    def reset(self, *args: Any, **kwargs: Any) -> Any:
        """The wrapped env's ``reset``, timed."""
        return self._call("reset", lambda: self.venv.reset(*args, **kwargs))

    def step(self, actions: Any) -> Any:
        """The wrapped env's ``step``, timed."""
        return self._call("step", self.venv.step, actions)
