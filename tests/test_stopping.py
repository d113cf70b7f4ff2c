"""The stop machinery on its own: recorded signals, interruptible regions, env timeouts."""

from __future__ import annotations

import os
import signal
import time

import pytest

from rtrl_rl.run.stopping import EnvHang, StopSignals, TrainingInterrupted, WatchedEnv


def deliver(sig: signal.Signals = signal.SIGINT) -> None:
    """Send ``sig`` to this process and give its Python handler the chance to run."""
    os.kill(os.getpid(), sig)
    time.sleep(0.01)


def test_signals_are_recorded_outside_and_raise_inside_interruptible_regions():
    before = signal.getsignal(signal.SIGINT)
    with StopSignals() as signals:
        deliver()
        deliver(signal.SIGTERM)
        assert signals.received == "SIGINT"  # the first one names the stop
        with pytest.raises(TrainingInterrupted, match="SIGINT"):
            with signals.interruptible():  # a pending stop ends the region on entry
                pass
    assert signal.getsignal(signal.SIGINT) is before
    with StopSignals() as signals:
        with pytest.raises(TrainingInterrupted, match="SIGTERM"):
            with signals.interruptible():
                deliver(signal.SIGTERM)
                time.sleep(5)  # never reached in full
        deliver()  # after the region: recorded only, even right after a raise
        assert signals.received == "SIGTERM"


class SlowEnv:
    """A stand-in vector env whose step takes ``step_s`` seconds."""

    num_envs = 1

    def __init__(self, step_s: float) -> None:
        self.step_s, self.closed = step_s, False

    def reset(self):
        return "reset"

    def step(self, actions):
        time.sleep(self.step_s)
        return actions

    def close(self):
        self.closed = True


def test_a_call_over_the_timeout_raises_env_hang_and_leaves_no_timer_behind():
    with WatchedEnv(SlowEnv(step_s=0.05), timeout_s=1.0) as env:
        assert env.step(3) == 3 and env.reset() == "reset" and env.num_envs == 1
        env.venv.step_s = 5.0
        started = time.monotonic()
        with pytest.raises(EnvHang, match=r"step did not return within 0.2 s \(runtime.step_timeout_s\)"):
            env.timeout_s = 0.2
            env.step(0)
        assert time.monotonic() - started < 2
    assert env.venv.closed
    deliver(signal.SIGUSR2)  # a late watchdog signal, after the call returned, is ignored


def test_a_signal_handled_by_the_program_is_left_alone(monkeypatch):
    import rtrl_rl.run.stopping as stopping

    monkeypatch.setattr(stopping, "_watchdog", None)
    previous = signal.signal(signal.SIGUSR2, lambda *a: None)
    try:
        assert WatchedEnv(SlowEnv(step_s=0), timeout_s=1.0)._watchdog is None
    finally:
        signal.signal(signal.SIGUSR2, previous)


def test_a_zero_timeout_never_times_out():
    env = WatchedEnv(SlowEnv(step_s=0.3), timeout_s=0)
    assert env._watchdog is None and env.step(1) == 1
