"""``rtrl-rl bench compute-ceiling [--config atari/pong]``: the compute ceiling of training.

The runtime target asks training to reach half the raw vectorised env rate. Whether any runtime can
do that on a machine is a matter of arithmetic: every env step costs one forward pass of
the model when acting and one forward and backward pass when learning. This script takes
the run of a config (its real env, model and learner, one thread), collects one real
segment and counts the floating-point operations of acting and of one learner update
(``torch.utils.flop_counter``), times the update to get the rate this CPU reaches on that
work, and prints the highest env steps/s that ``--cores`` cores could sustain if they did
nothing but that arithmetic (no env stepping, no transfer, perfect overlap). The counter
sees matrix products and convolutions only, but the rate divides them by the update's
whole time, so the learner's other work is priced in; acting is assumed to be as efficient
per FLOP as learning (its small batches are less so): an upper bound. ``--json`` writes
the numbers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from rtrl_rl.bench import record


def _flops(fn) -> int:
    """Floating-point operations of the torch ops that ``fn()`` runs."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def measure(config_name: str, overrides: list[str], repeats: int = 3) -> dict:
    """FLOPs per env step (acting, learning) and the learner's achieved GFLOP/s, one thread."""
    from rtrl_rl.config import load_config, resolve_config_path
    from rtrl_rl.training.rollout import Collector, allocate_segment
    from rtrl_rl.training.run_builder import build_agent, make_env, seed_everything

    config = load_config(resolve_config_path(config_name), ["train.device=cpu", *overrides])
    torch.set_num_threads(1)
    seed_everything(0)
    T, B = config.train.segment_length, config.env.num_envs
    with make_env(config, seed=0) as venv:
        model, learner = build_agent(config, venv.single_observation_space, venv.single_action_space)
        collector = Collector(venv, model, T)
        segment = allocate_segment(venv.single_observation_space, venv.single_action_space, T, B)
        ids = torch.arange(B)
        act_flops = _flops(lambda: collector.collect(segment))
        learn_flops = _flops(lambda: learner.update(segment, ids))
        seconds = []
        for _ in range(repeats):
            start = time.process_time()
            learner.update(segment, ids)
            seconds.append(time.process_time() - start)
    update_s = statistics.median(seconds)
    return {"config": config_name, "segment_length": T, "streams": B,
            "act_mflop_per_step": act_flops / (T * B) / 1e6, "learn_mflop_per_step": learn_flops / (T * B) / 1e6,
            "update_s": update_s, "learner_gflops": learn_flops / update_s / 1e9}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the benchmark's arguments to ``parser``."""
    parser.add_argument("--config", default="atari/pong")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="cores of the machine")
    parser.add_argument("--repeats", type=int, default=3, help="timed learner updates (median)")
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("overrides", nargs="*", metavar="key=value")


def run(args: argparse.Namespace) -> int:
    """Measure, print the ceiling, write JSON if asked; returns the exit code."""
    result = measure(args.config, args.overrides, args.repeats)
    per_step = (result["act_mflop_per_step"] + result["learn_mflop_per_step"]) * 1e6
    result["cores"] = args.cores
    result["ceiling_steps_per_s"] = args.cores * result["learner_gflops"] * 1e9 / per_step
    print(f"{args.config}: {result['streams']} streams x {result['segment_length']} steps per update, one thread")
    print(f"  acting   {result['act_mflop_per_step']:9.1f} MFLOP per env step (forward)")
    print(f"  learning {result['learn_mflop_per_step']:9.1f} MFLOP per env step (forward + backward)")
    print(f"  learner update {result['update_s']:.2f} s: {result['learner_gflops']:.1f} GFLOP/s on one core")
    print(f"  ceiling on {args.cores} cores doing only this arithmetic: "
          f"{result['ceiling_steps_per_s']:,.0f} env steps/s")
    if args.json:
        record.save(Path(args.json), {**result, "machine": record.machine(), "versions": record.versions()})
    return 0
