"""The ``rtrl-rl`` command line: one sub-command per module in :mod:`rtrl_rl.commands`.

Each command module defines ``register(subparsers)``, which adds its parser and sets
``func`` (a callable ``args -> int`` exit code) as the parser default. Modules are
imported only when the parser is built, so ``rtrl-rl --help`` stays cheap to extend.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: sub-command name -> module that registers it
COMMANDS: dict[str, str] = {
    "train": "rtrl_rl.commands.train",
    "evaluate": "rtrl_rl.commands.evaluate",
    "check-env": "rtrl_rl.commands.check_env",
    "gradcheck": "rtrl_rl.commands.gradcheck",
    "bench": "rtrl_rl.commands.bench",
}


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every registered sub-command."""
    parser = argparse.ArgumentParser(
        prog="rtrl-rl",
        description="Actor-critic agents with element-wise recurrent cores trained by exact RTRL.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMANDS.values():
        importlib.import_module(module_name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv  # the command as typed, for the commands that record it (rtrl-rl bench)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
