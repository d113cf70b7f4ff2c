"""``rtrl-rl bench runtime``: end-to-end training steps/s of the actor-learner runtime.

On one environment (default ``atari:Pong`` with ``configs/atari/pong.yaml``) it runs
short training runs with ``--actors`` actor processes plus the learner, for each learning
mode (rtrl, tbptt, none), and measures the raw vectorised environment with random
actions and the same number of streams. The modes are interleaved round by round in one
invocation, so load from other processes hits them alike. A training run's rate is its
steady state: environment steps between the first and the last update it timed, over
the time between them (actor start-up excluded). Prints a table of medians, the ratio
rtrl/tbptt and each mode's share of the raw throughput; ``--json FILE`` writes them.

``--backend local,ray`` measures both runtimes side by side in the same rounds (one
Ray instance serves all Ray runs, so its start-up is not timed) and adds the ratio
ray/local per mode.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from rtrl_rl.bench import record

MODES = ("rtrl", "tbptt", "none")
BACKENDS = ("local", "ray")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the benchmark's arguments to ``parser``."""
    parser.add_argument("--config", default="atari/pong", help="config file or name under configs/")
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--num-envs", type=int, default=16, help="streams over all actors")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated learning modes")
    parser.add_argument("--seconds", type=float, default=30.0, help="timed part of each training run")
    parser.add_argument("--warmup", type=int, default=1, help="updates before the timing starts")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--device", default="auto", help="learner device (train.device)")
    parser.add_argument("--backend", default=["local"], type=backends,
                        help="runtime backends: local, ray, or local,ray to measure both side by side")
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="more config overrides")


@contextmanager
def _timed_updates(seconds: float, warmup: int, record: list):
    """Time the learners' ``update`` calls (V-trace and PPO); end the run ``seconds`` after the
    warm-up updates.

    Appends (time after the update, env steps of the update) to ``record``. Ending works
    by setting the run's step budget to 0, which the learner loop reads every iteration.
    """
    from rtrl_rl.agents import Learner, PPOLearner

    originals = {cls: cls.update for cls in (Learner, PPOLearner)}

    def timing(update):
        def timed(self, segment, stream_ids):
            metrics = update(self, segment, stream_ids)
            record.append((time.perf_counter(), int(segment["reward"].numel())))
            if len(record) > warmup and record[-1][0] - record[warmup][0] >= seconds:
                self.config.total_steps = 0
            return metrics
        return timed

    for cls, update in originals.items():
        cls.update = timing(update)
    try:
        yield
    finally:
        for cls, update in originals.items():
            cls.update = update


def _config(args, mode: str, run_dir: str, backend: str = "local"):
    from rtrl_rl.config import load_config, resolve_config_path

    return load_config(resolve_config_path(args.config), [
        f"agent.learning={mode}", f"runtime.actors={args.actors}", f"env.num_envs={args.num_envs}",
        f"train.device={args.device}", "train.total_steps=1000000000000", "train.target_success=0",
        "runtime.checkpoint_every_s=1e12", "log.progress=false", "log.tensorboard=false",
        "log.eval_episodes=0", f"run_dir={run_dir}", f"runtime.backend={backend}", *args.overrides,
    ])


def train_rate(args, mode: str, backend: str = "local") -> float:
    """Steady-state env steps/s of one short training run in ``mode`` on ``backend``."""
    from rtrl_rl.runtime import train_with_actors

    record: list = []
    with tempfile.TemporaryDirectory() as run_dir, _timed_updates(args.seconds, args.warmup, record):
        train_with_actors(_config(args, mode, run_dir, backend))
    timed = record[args.warmup:]
    if len(timed) < 2:
        raise RuntimeError(f"{mode}: only {len(record)} updates; raise --seconds")
    return sum(steps for _, steps in timed[1:]) / (timed[-1][0] - timed[0][0])


def raw_rate(args, seconds: float) -> float:
    """Env steps/s of the run's vectorised env alone, random actions, same stream count."""
    from rtrl_rl.training.run_builder import make_env

    config = _config(args, "none", "")
    with make_env(config, seed=0, num_envs=args.num_envs) as venv:
        space = venv.single_action_space
        space.seed(0)
        actions = [np.stack([space.sample() for _ in range(venv.num_envs)]) for _ in range(64)]
        venv.reset()
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            venv.step(actions[steps % len(actions)])
            steps += 1
        return steps * venv.num_envs / (time.perf_counter() - start)


def backends(text: str) -> list[str]:
    """``--backend``: a comma-separated list of runtime backends (argparse type; bad input exits 2)."""
    names = [b.strip() for b in text.split(",") if b.strip()]
    unknown = [b for b in names if b not in BACKENDS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"takes {', '.join(BACKENDS)} (comma-separated), got {text!r}")
    if "ray" in names and importlib.util.find_spec("ray") is None:
        raise argparse.ArgumentTypeError('the ray backend needs Ray: pip install "rtrl-rl[ray]"')
    return names


def _label(mode: str, backend: str, names: list[str]) -> str:
    """Row name: the mode alone for one backend, ``mode (backend)`` side by side."""
    return mode if len(names) == 1 else f"{mode} ({backend})"


@contextmanager
def _ray_for(names: list[str], args):
    """One Ray instance for every Ray run of the benchmark (started and stopped here)."""
    if "ray" not in names:
        yield
        return
    from rtrl_rl.runtime.ray_backend import ray_instance

    config = _config(args, "none", "", "ray")
    with ray_instance(config):
        yield


def run(args: argparse.Namespace) -> int:
    """Interleave the rounds, print the table, write JSON; returns 0."""
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    names = args.backend
    runs = [(mode, backend) for mode in modes for backend in names]
    rates: dict[str, list[float]] = {k: [] for k in ["raw env", *(_label(m, b, names) for m, b in runs)]}
    with _ray_for(names, args):
        for r in range(args.rounds):
            rates["raw env"].append(raw_rate(args, min(args.seconds, 10.0)))
            for mode, backend in runs:
                rates[_label(mode, backend, names)].append(train_rate(args, mode, backend))
            print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{k} {v[-1]:,.0f}" for k, v in rates.items()),
                  flush=True)
    result = summarize(args, rates)
    print_table(result)
    if args.json:
        record.save(Path(args.json), {**result, "machine": record.machine(), "versions": record.versions()})
    return 0


def summarize(args, rates: dict[str, list[float]]) -> dict:
    """Medians, shares of the raw env rate and rtrl/tbptt, with the setting measured."""
    median = {k: statistics.median(v) for k, v in rates.items()}
    raw = median["raw env"]
    result = {
        "setting": {"config": args.config, "actors": args.actors, "num_envs": args.num_envs,
                    "seconds": args.seconds, "rounds": args.rounds, "device": args.device,
                    "backend": getattr(args, "backend", ["local"]), "overrides": args.overrides},
        "steps_per_s": median, "all_rounds": rates,
        "share_of_raw": {k: v / raw for k, v in median.items() if k != "raw env"},
    }
    if "rtrl" in median and "tbptt" in median:
        result["rtrl_over_tbptt"] = median["rtrl"] / median["tbptt"]
    ratios = {name.split(" (")[0]: median[name] / median[name.replace("(ray)", "(local)")]
              for name in median if name.endswith("(ray)") and name.replace("(ray)", "(local)") in median}
    if ratios:
        result["ray_over_local"] = ratios
    return result


def print_table(result: dict) -> None:
    """The medians as a plain-text table."""
    s = result["setting"]
    print(f"\n{s['config']}: {s['actors']} actors + learner, {s['num_envs']} streams, median of {s['rounds']} rounds")
    width = max(10, *(len(name) for name in result["steps_per_s"]))
    print(f"{'':{width}} {'env steps/s':>12} {'of raw env':>11}")
    for name, rate in result["steps_per_s"].items():
        share = result["share_of_raw"].get(name)
        print(f"{name:{width}} {rate:12,.0f} {'' if share is None else f'{share:10.0%}':>11}")
    if "rtrl_over_tbptt" in result:
        print(f"rtrl / tbptt: {result['rtrl_over_tbptt']:.2f}")
    for mode, ratio in result.get("ray_over_local", {}).items():
        print(f"{mode}: ray / local {ratio:.2f}")
