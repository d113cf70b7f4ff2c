"""``rtrl-rl train``: train an agent from a config file and dotted overrides.

With no arguments it trains the embedded default (``configs/default.yaml``: recall with
distractors, RTRL eLSTM) and stops once greedy success reaches the target.
"""

from __future__ import annotations

import argparse
import sys

from rtrl_rl.config import ConfigError, load_config


def register(subparsers) -> None:
    """Add the ``train`` parser."""
    parser = subparsers.add_parser(
        "train",
        help="train an agent (default: the embedded memory task)",
        description="Train an agent. Overrides are dotted key=value pairs, e.g. "
        "agent.learning=tbptt env.num_envs=64 train.total_steps=1000000",
    )
    parser.add_argument("--config", help="YAML config file, or a name under configs/ such as atari/pong")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its latest checkpoint")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    parser.set_defaults(func=run)


def _resolve(name: str | None):
    if name is None:
        return None
    from rtrl_rl.configs import resolve_config_path

    return resolve_config_path(name)


def run(args: argparse.Namespace) -> int:
    """Parse the config, train (or resume), print the summary; exit 2 on bad input."""
    try:
        if args.resume:
            from rtrl_rl.resume import resume_config

            config = resume_config(args.resume, args.overrides)
        else:
            config = load_config(_resolve(args.config), args.overrides)
    except (ConfigError, FileNotFoundError) as err:
        print(f"rtrl-rl train: {err}", file=sys.stderr)
        return 2
    from rtrl_rl.runtime import ActorFailure

    try:
        summary = _dispatch(config, args.resume)
    except (ConfigError, ValueError, ImportError) as err:
        print(f"rtrl-rl train: {err}", file=sys.stderr)
        return 2
    except ActorFailure as err:  # the actor's traceback is already in the log
        print(f"rtrl-rl train: stopped: {str(err).splitlines()[0]} (final checkpoint written)", file=sys.stderr)
        return 1
    print_summary(summary)
    return 130 if summary.get("stopped", "").startswith("interrupted") else 0


def _dispatch(config, resume_dir):
    if config.runtime.actors > 0 or config.runtime.backend == "ray":  # ray checks its actor count
        from rtrl_rl.runtime import train_with_actors

        return train_with_actors(config, resume_from=resume_dir)
    from rtrl_rl.trainer import train

    return train(config, resume_from=resume_dir) if resume_dir else train(config)


def print_summary(summary: dict) -> None:
    """Print the run's headline figures, then where its files are."""
    keys = ("steps", "wall_s", "sps", "mean_return", "success_rate", "time_to_target_s", "stopped")
    width = max(len(k) for k in keys)
    print("summary")
    for key in keys:
        if key in summary:
            value = summary[key]
            text = f"{value:.4g}" if isinstance(value, float) else str(value)
            print(f"  {key:<{width}}  {text}")
    print(f"  run_dir{' ' * (width - 7)}  {summary['run_dir']} (summary.json, config.yaml, model.pt)")
    sys.stdout.flush()
