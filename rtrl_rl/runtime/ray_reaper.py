"""A watchdog that ends the processes of a run's local Ray instance when the run ends.

Why it is needed: when ``rtrl-rl train`` is killed (SIGKILL, the OOM killer), Ray's GCS,
raylet and workers end soon after it, but the node's agents (``ray::DashboardAgent``,
``ray::RuntimeEnvAgent``) notice the raylet's death and then spend up to a minute trying
to report it to the GCS, which is gone, before they exit. A run must not leave them.

How: :func:`start_reaper` (called by ``ray_backend.ray_instance`` right after ``ray.init``
started a local instance) runs this module as a small process of its own session, given
the pids that ``ray.init`` started, with a pipe from the run on its standard input. While
the run lives it notes, every :data:`POLL_S`, those processes and all their descendants
(the agents, the actors, their environment workers). When the pipe closes, because the
run ended (:meth:`Reaper.stop`, after ``ray.shutdown``) or died, it kills every noted
process still alive (each checked by its start time, so a reused pid is left alone) and
exits.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys

#: seconds between two looks at the instance's process tree
POLL_S = 0.5
#: seconds the reaper waits for the processes it killed to be gone
KILL_WAIT_S = 3.0


def _require_psutil():
    try:
        import psutil
    except ImportError as err:
        raise ImportError('runtime.backend=ray needs psutil: pip install "rtrl-rl[ray]"') from err
    return psutil


class Reaper:
    """The run's side of the watchdog: :meth:`stop` closes the pipe and waits for it."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc

    def stop(self, timeout: float = 10.0) -> None:
        """The run is over: let the watchdog end what is left of the instance, then exit."""
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=timeout)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


def child_pids() -> set[int]:
    """Pids of this process's children (before and after ``ray.init`` tell Ray's apart)."""
    psutil = _require_psutil()
    return {child.pid for child in psutil.Process().children()}


def start_reaper(roots: set[int]) -> Reaper:
    """Start the watchdog over ``roots`` (the processes ``ray.init`` started) and their descendants."""
    proc = subprocess.Popen([sys.executable, "-m", "rtrl_rl.runtime.ray_reaper", *map(str, sorted(roots))],
                            stdin=subprocess.PIPE, start_new_session=True)  # no Ctrl-C of the run's group
    return Reaper(proc)


def _closed(fd: int, timeout: float) -> bool:
    """Whether the pipe ``fd`` reached end of file within ``timeout`` seconds."""
    ready, _, _ = select.select([fd], [], [], timeout)
    return bool(ready) and os.read(fd, 4096) == b""


def _note(psutil, known: dict[int, float]) -> None:
    """Add every living descendant of the ``known`` processes (pid -> start time) to them."""
    parents: dict[int, list] = {}
    for proc in psutil.process_iter(["ppid", "create_time"]):
        parents.setdefault(proc.info["ppid"], []).append(proc)
    todo = list(known)
    while todo:
        for child in parents.get(todo.pop(), []):
            if child.pid not in known and child.pid != os.getpid():
                known[child.pid] = child.info["create_time"]
                todo.append(child.pid)


def _kill(psutil, known: dict[int, float]) -> None:
    """SIGKILL each of ``known`` that still runs as the same process; wait until they are gone."""
    killed = []
    for pid, started in known.items():
        try:
            proc = psutil.Process(pid)
            if proc.create_time() == started:
                proc.kill()
                killed.append(proc)
        except psutil.Error:
            continue
    psutil.wait_procs(killed, timeout=KILL_WAIT_S)


def main(argv: list[str]) -> int:
    """Watch the roots ``argv`` until standard input closes, then kill what is left."""
    psutil = _require_psutil()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    known: dict[int, float] = {}
    for pid in map(int, argv):
        try:
            known[pid] = psutil.Process(pid).create_time()
        except psutil.Error:
            continue
    fd = sys.stdin.fileno()
    while True:
        _note(psutil, known)
        if _closed(fd, POLL_S):
            break
    _kill(psutil, known)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
