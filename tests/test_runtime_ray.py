"""The Ray backend (``runtime.backend=ray``) on a local Ray instance with 2 Ray actors.

The in-process tests share one Ray instance (module fixture): each run starts and kills
its own actors, so they do not depend on each other, and Ray's start-up (several
seconds here) is paid once. The signal test runs the command line in a subprocess that
starts and shuts down its own instance, and checks that no process of it is left.
The helpers of the process runtime's tests are reused, so both backends meet the same
checks: per-stream order across a restart, the final checkpoint, no process behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from rtrl_rl.config import build_config
from rtrl_rl.run.checkpoint import load_checkpoint
from rtrl_rl.run.resume import resume_config
from rtrl_rl.runtime import ActorFailure, train_with_actors
from test_runtime_faults import ROOT, alive, descendants, run_train, train_args
from test_runtime_order import T, check_within, counter_config, learner_events, per_stream_segments  # noqa: F401
from test_runtime_train import SCALARS, evaluate, memory_config, policy_lags, scalar_tags

try:  # a broken install counts as missing, as it does for the backend
    import ray  # noqa: F401

    HAVE_RAY = True
except ImportError:
    HAVE_RAY = False
needs_ray = pytest.mark.skipif(not HAVE_RAY, reason='Ray is not installed (pip install -e ".[ray]")')


@pytest.fixture(scope="module")
def ray_instance():
    """One local Ray instance for the in-process tests of this module (runs find it running)."""
    import ray

    from rtrl_rl.runtime.ray_backend import init_options

    config = build_config({"runtime": {"actors": 2, "backend": "ray"}})
    ray.init(**{**init_options(config), "num_cpus": 4})
    yield ray
    ray.shutdown()


def on_ray(config):
    """``config`` with the Ray backend."""
    config.runtime.backend = "ray"
    return config


def test_missing_ray_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(ImportError, match=r"pip install \"rtrl-rl\[ray\]\""):
        train_with_actors(on_ray(memory_config(tmp_path / "run", 1000)))


def test_bad_ray_settings_exit_2_before_anything_starts(tmp_path, capsys):
    from rtrl_rl.cli import main as cli

    assert cli(["train", "runtime.backend=ray", f"run_dir={tmp_path / 'a'}"]) == 2
    assert "runtime.actors >= 1" in capsys.readouterr().err
    assert cli(["train", "runtime.backend=ray", "runtime.actors=2", "runtime.ray_actor_resources={num_cpus: x}",
                f"run_dir={tmp_path / 'b'}"]) == 2
    assert "'runtime.ray_actor_resources' entry num_cpus must be a number >= 0" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@needs_ray
def test_a_local_instance_refuses_resources_it_lacks(ray_instance):
    from rtrl_rl.runtime.ray_backend import check_fits

    config = build_config({"runtime": {"actors": 2, "backend": "ray", "ray_actor_resources": {"cpu_node": 1}}})
    with pytest.raises(ValueError, match="asks for {'cpu_node': 2"):
        check_fits(ray_instance, config)
    if not torch.cuda.is_available():  # train.device=cuda without local CUDA asks Ray for a GPU
        config = build_config({"runtime": {"actors": 2, "backend": "ray"}, "train": {"device": "cuda"}})
        with pytest.raises(ValueError, match="asks for {'GPU': 1"):
            check_fits(ray_instance, config)
    check_fits(ray_instance, build_config({"runtime": {"actors": 2, "backend": "ray"}}))  # CPUs only: fits


@needs_ray
def test_train_evaluate_resume_with_the_learner_in_a_ray_actor(ray_instance, tmp_path, capsys):
    # First session: learner in this process. Resumed session: learner in a Ray actor.
    run_dir = tmp_path / "run"
    first = train_with_actors(on_ray(memory_config(run_dir, 3000)))
    assert first["stopped"] == "budget" and first["steps"] >= 3000
    assert load_checkpoint(run_dir)["step"] == first["steps"]
    assert SCALARS <= scalar_tags(run_dir)
    lags = policy_lags(run_dir)
    assert lags and all(0 <= lag <= 3 for lag in lags)  # at most the calls in flight per actor
    result = evaluate(run_dir, capsys)
    assert result["episodes"] == 8 and 0.0 <= result["success_rate"] <= 1.0

    config = resume_config(run_dir, ["train.total_steps=6000", "runtime.ray_learner_resources={num_cpus: 1}"])
    assert config.runtime.backend == "ray"  # the stored config keeps the backend
    resumed = train_with_actors(config, resume_from=str(run_dir))
    assert resumed["stopped"] == "budget" and resumed["steps"] >= 6000
    assert resumed["updates"] > first["updates"]
    assert load_checkpoint(run_dir)["step"] == resumed["steps"]
    again = evaluate(run_dir, capsys)
    assert again["episodes"] == 8 and 0.0 <= again["success_rate"] <= 1.0


def check_order(events: list[tuple], restarted_actors: int) -> set[int]:
    """Every stream's segments join up (or restart with a reset carry); the restarted streams."""
    streams = per_stream_segments(events)
    assert sorted(streams) == [0, 1, 2, 3]
    restarted = set()
    for stream, segments in streams.items():
        assert segments[0][1][0], "a stream's first segment starts an episode"
        for (obs, first, _), (nxt_obs, nxt_first, reset_before) in zip(segments, segments[1:]):
            if reset_before:
                assert nxt_first[0]
                restarted.add(stream)
            else:
                assert torch.equal(obs[T], nxt_obs[0]) and first[T] == nxt_first[0], f"stream {stream} broke"
        for obs, first, _ in segments:
            check_within(obs, first)
    resets = [e for e in events if e[0] == "reset"]
    assert len(resets) == restarted_actors and all(reset[2] for reset in resets)
    return restarted


@needs_ray
def test_every_stream_arrives_in_order_across_an_env_crash(ray_instance, tmp_path, learner_events, monkeypatch):
    puts = []  # parameters go through the object store once per version: one put each
    put = ray_instance.put
    monkeypatch.setattr(ray_instance, "put", lambda value, **kw: puts.append(type(value)) or put(value, **kw))
    config = on_ray(counter_config(tmp_path, crash_at=3 * T + 2, marker=str(tmp_path / "crashed")))
    config.runtime.restart_actors = True
    summary = train_with_actors(config)
    assert summary["stopped"] == "budget"
    assert (tmp_path / "crashed").exists(), "the env never crashed; the test proves nothing"
    assert check_order(learner_events, restarted_actors=1) in ({0, 1}, {2, 3})
    assert puts == [dict] * (summary["updates"] + 1)  # the first version, then one per update


@needs_ray
def test_an_env_crash_stops_the_run_without_restarts(ray_instance, tmp_path):
    config = on_ray(counter_config(tmp_path, crash_at=3 * T + 2))
    config.train.total_steps *= 100
    with pytest.raises(ActorFailure, match="CounterEnv crashed on purpose"):
        train_with_actors(config)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["stopped"] == "interrupted (actor failure)"
    assert load_checkpoint(tmp_path / "run")["step"] == summary["steps"] > 0


@pytest.fixture
def kill_an_actor(monkeypatch):
    """SIGKILL actor 1's process once 3 batches went through; returns the pids killed."""
    from rtrl_rl.runtime.ray_fleet import RayFleet

    killed: list[int] = []
    next_batch, count = RayFleet.next_batch, [0]

    def killing(self, timeout, stall_s):
        batch = next_batch(self, timeout, stall_s)
        if batch is not None:
            count[0] += 1
            if count[0] == 3:
                pid = dict((actor, record["pid"]) for actor, record, _ in batch)[1]
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        return batch

    monkeypatch.setattr(RayFleet, "next_batch", killing)
    return killed


@needs_ray
def test_a_killed_actor_is_restarted_by_ray_and_both_are_logged(ray_instance, tmp_path, learner_events,
                                                                kill_an_actor, capsys):
    config = on_ray(counter_config(tmp_path))
    config.runtime.restart_actors = True
    assert train_with_actors(config)["stopped"] == "budget"
    assert kill_an_actor, "no actor was killed; the test proves nothing"
    assert check_order(learner_events, restarted_actors=1) == {2, 3}
    lines = capsys.readouterr().err.splitlines()  # the run's console writes to stderr
    died = [line for line in lines if line.startswith("actor 1 (generation 0) died in env")]
    restarted = [line for line in lines if line.startswith("restarted actor 1 (generation")]
    assert len(died) == 1 and "Ray restarts its process" in died[0], lines
    assert len(restarted) == 1 and "its streams start new episodes" in restarted[0], lines
    assert lines.index(died[0]) < lines.index(restarted[0])


@needs_ray
def test_a_killed_actor_stops_the_run_without_restarts(ray_instance, tmp_path, kill_an_actor):
    config = on_ray(counter_config(tmp_path))
    config.train.total_steps *= 100  # it must end through the failure, not the budget
    with pytest.raises(ActorFailure, match="actor 1 .* died"):
        train_with_actors(config)
    assert kill_an_actor
    run_dir = tmp_path / "run"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stopped"] == "interrupted (actor failure)"
    assert load_checkpoint(run_dir)["step"] == summary["steps"] > 0


@needs_ray
@pytest.mark.parametrize("sig, group", [
    (signal.SIGINT, True), pytest.param(signal.SIGTERM, False, marks=pytest.mark.slow),  # same path; ~30 s each
])
def test_a_signal_checkpoints_and_leaves_no_ray_process(tmp_path, sig, group):
    # The run starts its own Ray instance; SIGINT goes to the whole process group, as a
    # Ctrl-C in a terminal does (Ray's processes share that group).
    run_dir = tmp_path / "run"
    args = train_args(run_dir, "runtime.backend=ray")
    code, stderr, seen = run_train(args, run_dir, send=sig, group=group, timeout=120)
    assert code == 130, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stopped"] == f"interrupted ({sig.name})"
    assert load_checkpoint(run_dir)["step"] == summary["steps"] > 0
    assert len(seen) >= 4, f"expected Ray's processes and 2 actors, saw {len(seen)}"
    deadline = time.monotonic() + 10
    while alive(seen) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert alive(seen) == [], "Ray processes left behind"



@needs_ray
def test_a_sigkilled_run_leaves_no_ray_process_behind(tmp_path):
    # Only the `rtrl-rl train` process is killed (no group signal): Ray's node agents used
    # to outlive it by up to a minute; the run's watchdog ends them within seconds.
    import psutil

    run_dir = tmp_path / "run"
    proc = subprocess.Popen(train_args(run_dir, "runtime.backend=ray"), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    names: dict[int, str] = {}
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline and not (
                (run_dir / "model.pt").exists() and sum("StreamGroup" in n for n in names.values()) >= 2):
            for pid in descendants(proc.pid):  # again each time: Ray's processes rename themselves
                try:
                    names[pid] = " ".join(psutil.Process(pid).cmdline())
                except psutil.Error:
                    pass
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        proc.kill()
        proc.wait()
        killed = time.monotonic()
        agents = [n for n in names.values() if "ray::RuntimeEnvAgent" in n or "ray::DashboardAgent" in n]
        assert agents, f"Ray's agents were never seen; the test proves nothing: {sorted(names.values())}"
        while alive(set(names)) and time.monotonic() - killed < 5:
            time.sleep(0.1)
        left = {pid: names[pid] for pid in alive(set(names))}
        assert left == {}, f"left behind 5 s after the kill: {left}"
    finally:
        for pid in alive(set(names)):
            os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()


def test_bench_runtime_puts_the_backends_side_by_side(capsys):
    import argparse

    from rtrl_rl.bench.runtime import add_arguments, print_table, summarize

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    with pytest.raises(SystemExit) as bad:
        parser.parse_args(["--backend", "local,mpi"])
    assert bad.value.code == 2 and "takes local, ray" in capsys.readouterr().err
    args = parser.parse_args(["--backend", "local"])
    assert args.backend == ["local"]
    rates = {"raw env": [1000.0], "rtrl (local)": [100.0, 120.0, 110.0], "rtrl (ray)": [90.0, 80.0, 100.0]}
    result = summarize(args, rates)
    assert result["ray_over_local"] == {"rtrl": pytest.approx(90.0 / 110.0)}
    print_table(result)
    assert "rtrl: ray / local 0.82" in capsys.readouterr().out
