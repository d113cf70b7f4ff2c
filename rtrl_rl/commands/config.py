"""``rtrl-rl config``: print the resolved config that ``train`` would run, or list every key.

``rtrl-rl config [--config FILE] [key=value ...]`` merges the defaults, the file and the
overrides exactly as ``rtrl-rl train`` does, makes the same checks before anything would
be written (key rules, cross-key rules, the device, the environment spec's suite, the Ray
settings; ``commands.train.preflight``) and prints the result as YAML, the same text a
run writes as its ``config.yaml``; ``--config`` reads it back. Bad input exits 2 with
train's message. It imports no environment code and writes nothing.

``rtrl-rl config --keys`` lists every key with its type, default, rule (bounds or
choices) and help text, read from the config dataclasses (``rtrl_rl.config.key_docs``).
"""

from __future__ import annotations

import argparse
import os
import sys

from rtrl_rl.commands.train import fresh_config, preflight


def register(subparsers) -> None:
    """Add the ``config`` parser."""
    parser = subparsers.add_parser(
        "config", help="print the resolved config that train would run (--keys: every key)",
        description="Print the config that `rtrl-rl train` would run with the same --config and "
        "overrides, as YAML (what the run writes as config.yaml), after the same checks; or, with "
        "--keys, every key with its type, default, bounds or choices and help.",
    )
    parser.add_argument("--config", help="YAML config file, or a name under configs/ such as atari/pong")
    parser.add_argument("--keys", action="store_true",
                        help="list every config key with its type, default, bounds or choices and help")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the keys, or the resolved config; exit 2 on bad input."""
    from rtrl_rl.config import dump_config

    if args.keys:
        if args.config or args.overrides:
            return _fail("--keys lists the keys of every config: pass it alone")
        from rtrl_rl.config.key_docs import config_keys, format_keys

        return _print(format_keys(config_keys()) + "\n")
    try:
        config = fresh_config(args.config, args.overrides)
        preflight(config)  # in the order train checks
    except (ValueError, FileNotFoundError) as err:  # ConfigError, an unknown env suite, Ray settings
        return _fail(str(err))
    return _print(dump_config(config))


def _print(text: str) -> int:
    """Write ``text`` to stdout; a reader that stops early (``| head``) is no error."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
    return 0


def _fail(text: str) -> int:
    print(f"rtrl-rl config: {text}", file=sys.stderr)
    return 2
