"""Policy evaluation: run fresh episodes with the recurrent state carried properly.

The state starts at zero and is reset on every ``first`` flag, exactly as in training;
the previous action and reward inputs are fed as in training too. Each sub-environment
contributes the same number of episodes, so short episodes are not over-represented.
"""

from __future__ import annotations

import math
import statistics

import numpy as np
import torch

from rtrl_rl.training.rollout import Collector, allocate_segment


def summarize_episodes(episodes: list) -> dict:
    """Mean, median, std, min and max of the returns of ``rtrl_rl.envs.EpisodeStats`` items, the
    mean length, and the success rate where the task defines success."""
    returns = [float(e.ret) for e in episodes]
    lengths = [int(e.length) for e in episodes]
    successes = [float(e.success) for e in episodes if e.success is not None]
    summary = {
        "episodes": len(returns),
        "mean_return": statistics.fmean(returns) if returns else float("nan"),
        "median_return": statistics.median(returns) if returns else float("nan"),
        "std_return": statistics.pstdev(returns) if returns else float("nan"),
        "min_return": min(returns) if returns else float("nan"),
        "max_return": max(returns) if returns else float("nan"),
        "mean_length": statistics.fmean(lengths) if lengths else float("nan"),
    }
    if successes:
        summary["success_rate"] = statistics.fmean(successes)
    return summary


@torch.no_grad()
def run_episodes(venv, model, episodes: int, greedy: bool = True, max_steps: int = 10_000_000) -> dict:
    """Play ``episodes`` episodes on ``venv`` (spread evenly over its sub-environments).

    Returns :func:`summarize_episodes` of the kept episodes plus the per-episode lists
    ``returns``, ``lengths`` and ``successes`` and the number of ``steps`` taken.
    ``max_steps`` bounds the loop so a policy that never ends an episode cannot hang.
    """
    quota = math.ceil(episodes / venv.num_envs)
    kept: dict[int, list] = {i: [] for i in range(venv.num_envs)}
    collector = Collector(venv, model, length=1, greedy=greedy)
    segment = allocate_segment(venv.single_observation_space, venv.single_action_space, 1, venv.num_envs)
    steps = 0
    while sum(len(v) for v in kept.values()) < quota * venv.num_envs and steps < max_steps:
        collector.collect(segment)
        steps += venv.num_envs
        for ep in collector.episodes.drain():
            if len(kept[ep.env]) < quota:
                kept[ep.env].append(ep)
    chosen = [ep for i in range(venv.num_envs) for ep in kept[i]][:episodes]
    summary = summarize_episodes(chosen)
    summary.update(
        returns=[float(e.ret) for e in chosen],
        lengths=[int(e.length) for e in chosen],
        successes=[float(e.success) for e in chosen if e.success is not None],
        steps=steps,
    )
    return summary


def evaluation_options(spec: str, options: dict) -> dict:
    """Environment options of the suite's evaluation protocol, given the training options.

    Atari: sticky actions 0.25 (Machado et al. 2018; full episodes, the raw score, and
    no life-loss signal: evaluation never learns from ``life_lost``). ProcGen: the full level distribution (``num_levels=0``), i.e.
    the test levels of Cobbe et al. (2020). Other suites evaluate as they train.
    """
    from rtrl_rl import envs

    suite = envs.parse_spec(spec).suite
    options = dict(options)
    if suite == "atari":
        options["sticky"] = 0.25
    elif suite == "procgen":
        options.update(envs.procgen_split(options.get("distribution_mode", "easy"))[1])
    return options


def evaluation_seed(seed: int) -> int:
    """Seed of evaluation environments: far from any training seed, still reproducible."""
    return int(np.random.SeedSequence([seed, 0xE7A1]).generate_state(1)[0])
