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
  ``step`` or ``reset`` calls takes longer than ``runtime.step_timeout_s``: a watchdog
  thread signals the main thread (SIGUSR2; a program that handles SIGUSR2 itself keeps
  it, and its env calls go unwatched). An env stuck where no signal handler can run (C
  code holding the GIL) is not interrupted in-process; the process runtime's learner
  then kills the silent actor (see :mod:`rtrl_rl.runtime.local_backend`).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

from rtrl_rl.envs.vector_env import VectorEnvWrapper

#: the signals that stop a run
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

#: set once any run in this process has received a stop signal (see :func:`exit_quietly`)
_stop_requested = threading.Event()


def _late_signal(signum: int, frame: Any) -> None:
    if _stop_requested.is_set():
        _ignore_stop_signals()
        return  # the run already stops: a further Ctrl-C must not cut its exit short
    raise KeyboardInterrupt


def _ignore_stop_signals() -> None:
    # SIG_IGN, not a Python handler: the interpreter's shutdown resets Python handlers to
    # the default action, and a signal landing then would kill the process (exit -2).
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def quiet_after_stop() -> None:
    """For a command-line process about to exit: if a run was asked to stop, ignore
    SIGINT and SIGTERM from now on (see :func:`exit_quietly`)."""
    if _stop_requested.is_set() and in_main_thread():
        _ignore_stop_signals()


def exit_quietly() -> None:
    """For a command-line process: once a run has been asked to stop, later SIGINT and
    SIGTERM are ignored until the process exits; before that they raise KeyboardInterrupt.

    A run restores the previous handlers when it ends, and a second Ctrl-C a few ms after
    the first would otherwise land in the summary print or the interpreter's shutdown
    with a traceback. Library callers (a notebook) keep their own handlers: only the CLI
    calls this, before it starts a run.
    """
    if in_main_thread():
        for sig in STOP_SIGNALS:
            signal.signal(sig, _late_signal)


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
        _stop_requested.set()
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

    def interruptible(self) -> "_Interruptible":
        """A region (``with signals.interruptible():``) that a stop signal ends at once
        with :class:`TrainingInterrupted`.

        Also raises on entry when a signal is already pending. Use it only around code
        whose interruption leaves the training state (parameters, optimizer, counters)
        as it was.
        """
        return _Interruptible(self)


class _Interruptible:
    """The context manager of :meth:`StopSignals.interruptible` (a class: it wraps every env step)."""

    __slots__ = ("signals",)

    def __init__(self, signals: StopSignals) -> None:
        self.signals = signals

    def __enter__(self) -> None:
        signals = self.signals
        signals._raising = True
        if signals.received:
            signals._raising = False
            raise TrainingInterrupted(signals.received)

    def __exit__(self, *exc: object) -> None:
        self.signals._raising = False


#: the signal a timed-out env call gets (not SIGALRM: test runners and user code time with it)
HANG_SIGNAL = signal.SIGUSR2


class _Call:
    """One timed env call: what it is, its limit, and when it must have returned."""

    __slots__ = ("what", "seconds", "deadline")

    def __init__(self, what: str, seconds: float) -> None:
        self.what, self.seconds, self.deadline = what, seconds, time.monotonic() + seconds


class _Watchdog:
    """A daemon thread that signals the main thread when the current env call overruns.

    The main thread only stores and clears :attr:`call` around each env call (no system
    call per step); the thread looks at it every :data:`TICK_S` seconds and, once the
    deadline has passed, marks that call expired and sends HANG_SIGNAL to the main
    thread, whose handler raises :class:`EnvHang` if the expired call is still running.
    """

    #: how often the thread checks, so a hang is reported at most this much late
    TICK_S = 0.05

    def __init__(self) -> None:
        self.call: _Call | None = None
        self.expired: _Call | None = None
        self.main, self.pid = threading.main_thread().ident, os.getpid()
        threading.Thread(target=self._watch, name="rtrl-env-watchdog", daemon=True).start()

    def _watch(self) -> None:
        while True:
            time.sleep(self.TICK_S)
            call = self.call
            if call is not None and self.expired is not call and time.monotonic() > call.deadline:
                self.expired = call
                signal.pthread_kill(self.main, HANG_SIGNAL)

    def on_signal(self, signum: int, frame: Any) -> None:
        call = self.call
        if call is None or self.expired is not call:
            return  # that call returned meanwhile
        raise EnvHang(
            f"the environment's {call.what} did not return within {call.seconds:g} s "
            "(runtime.step_timeout_s): it looks hung. Raise runtime.step_timeout_s if its "
            "steps are really that slow, or 0 to never time out."
        )


_watchdog: _Watchdog | None = None


def _get_watchdog() -> _Watchdog | None:
    """The process's watchdog, started on first use; None where its signal cannot be ours
    (not the main thread, or the program handles HANG_SIGNAL itself)."""
    global _watchdog
    if _watchdog is not None and _watchdog.pid == os.getpid():
        return _watchdog  # (a forked child has the object but not its thread)
    ours = _watchdog is not None and signal.getsignal(HANG_SIGNAL) == _watchdog.on_signal
    if not in_main_thread() or not (ours or signal.getsignal(HANG_SIGNAL) in (signal.SIG_DFL, None)):
        return None
    _watchdog = _Watchdog()
    signal.signal(HANG_SIGNAL, _watchdog.on_signal)
    return _watchdog


class WatchedEnv(VectorEnvWrapper):
    """A vectorised env whose ``step`` and ``reset`` raise :class:`EnvHang` after ``timeout_s``.

    Every other attribute is the wrapped env's. ``guard()`` (a context manager factory,
    e.g. :meth:`StopSignals.interruptible`) wraps each call too. A timeout of 0, a wrapper
    made outside the main thread, or a program that handles SIGUSR2 itself leaves calls
    unwatched.
    """

    def __init__(self, venv: Any, timeout_s: float, guard: Any = None) -> None:
        self.venv, self.timeout_s, self.guard = venv, float(timeout_s), guard
        self._watchdog = _get_watchdog() if self.timeout_s > 0 else None

    def _call(self, what: str, fn: Any, *args: Any) -> Any:
        watchdog = self._watchdog
        if watchdog is None:
            return self._guarded(fn, *args)
        watchdog.call = _Call(what, self.timeout_s)
        try:
            return self._guarded(fn, *args)
        finally:
            watchdog.call = None

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
