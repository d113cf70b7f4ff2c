"""Worker processes: crashes surface with tracebacks, deaths are detected, no orphans."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import psutil
import pytest

from rtrl_rl import envs
from rtrl_rl.envs.workers import WorkerError

ASSET = os.path.join(os.path.dirname(__file__), "assets", "custom_env.py")


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_crash_in_step_reaches_caller_with_traceback():
    venv = envs.make_vector(f"{ASSET}:CrashingEnv", 4, seed=0, workers=2, crash_at=3)
    venv.reset()
    venv.step(np.zeros(4, np.int64))
    venv.step(np.zeros(4, np.int64))
    with pytest.raises(WorkerError) as info:
        venv.step(np.zeros(4, np.int64))
    text = str(info.value)
    assert "boom in CrashingEnv.step" in text and "Traceback" in text
    assert "custom_env.py" in text
    venv.close()


def test_worker_killed_from_outside_is_detected_within_seconds():
    venv = envs.make_vector("memory:recall", 4, seed=0, workers=2, poll_s=0.2)
    venv.reset()
    os.kill(venv.worker_pids[1], signal.SIGKILL)
    start = time.monotonic()
    with pytest.raises(WorkerError, match="died"):
        for _ in range(100):
            venv.step(np.zeros(4, np.int64))
    assert time.monotonic() - start < 30.0  # a generous bound: it detects the death, it does not hang
    venv.close()


def test_step_after_a_worker_is_gone_raises_worker_error_not_broken_pipe():
    # Once the killed worker has exited, its end of the command pipe is closed and the
    # send itself fails (EPIPE); that must read as the worker's death, like a failed reply.
    venv = envs.make_vector("memory:recall", 4, seed=0, workers=2, poll_s=0.2)
    venv.reset()
    pid = venv.worker_pids[1]
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30  # generous: only waits for the kill to land
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with pytest.raises(WorkerError, match="worker 1 .* died"):
        venv.step(np.zeros(4, np.int64))
    venv.close()


def test_stuck_worker_times_out_and_close_does_not_hang():
    venv = envs.make_vector(f"{ASSET}:HangingEnv", 2, seed=0, workers=1, crash_at=2,
                            step_timeout=1.0, poll_s=0.2)
    venv.reset()
    venv.step(np.zeros(2, np.int64))
    with pytest.raises(WorkerError, match="did not answer"):
        venv.step(np.zeros(2, np.int64))
    pid = venv.worker_pids[0]
    start = time.monotonic()
    venv.close()
    assert time.monotonic() - start < 30.0 and not _alive(pid)  # generous: close does not hang


def test_close_leaves_no_processes_and_is_idempotent():
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    venv = envs.make_vector("memory:recall", 4, seed=0, workers=2)
    pids = venv.worker_pids
    venv.reset()
    start = time.monotonic()
    venv.close()
    venv.close()
    assert time.monotonic() - start < 30.0  # generous: close does not hang
    assert not any(_alive(p) for p in pids)
    new = [p for p in me.children(recursive=True) if p.pid not in before]
    assert all("forkserver" in " ".join(p.cmdline()) for p in new), "only the fork server"


PARENT = """
import faulthandler, signal, sys, numpy as np
faulthandler.register(signal.SIGUSR1, all_threads=True)  # the test's view into a hang
# Python keeps SIGINT ignored when it starts so (a job started with & by a non-interactive
# shell, as a backgrounded CI run is): restore the Ctrl-C a user's terminal delivers.
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.path.insert(0, {cwd!r})
from rtrl_rl import envs
if __name__ == "__main__":
    venv = envs.make_vector("memory:recall", 4, seed=0, workers=2)
    venv.reset()
    print(" ".join(map(str, venv.worker_pids)), flush=True)
    while True:
        venv.step(np.zeros(4, np.int64))
"""


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL])
def test_parent_interrupted_or_killed_leaves_no_orphans(tmp_path, how):
    script = tmp_path / "parent.py"
    script.write_text(PARENT.format(cwd=os.getcwd()))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pids = [int(p) for p in proc.stdout.readline().split()]
    assert len(pids) == 2
    proc.send_signal(how)
    try:
        proc.wait(timeout=60)  # generous: it must exit, not exit fast
    except subprocess.TimeoutExpired:  # show where it hangs, and leave nothing running
        proc.send_signal(signal.SIGUSR1)
        time.sleep(1)
        proc.kill()
        pytest.fail(f"the parent did not exit after {how.name}; its stacks:\n{proc.communicate()[1][-4000:]}")
    deadline = time.monotonic() + 30
    alive = pids
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [p for p in pids if _alive(p)]
    assert not alive
