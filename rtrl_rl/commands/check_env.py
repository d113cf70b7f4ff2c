"""``rtrl-rl check-env SPEC``: build an environment, show it, and check it.

Prints the spaces and the effective options, runs gymnasium's env checker and our own
checks (observations inside the space, dtypes, finite rewards, reset/first-flag
consistency) over random actions, and reports steps/s. Exit 0 with "OK", 1 with the
list of problems, 2 for an unknown suite or name (with valid suites or closest names) or
for spaces the agents cannot learn (with what they can).
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``check-env`` parser; its ``func`` returns the exit code."""
    parser = subparsers.add_parser(
        "check-env", help="check an environment spec (spaces, checker, random rollout)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("spec", help="e.g. memory:recall, gym:CartPole-v1, my.module:MyEnv")
    parser.add_argument("--steps", type=int, default=1000, help="random steps (default 1000)")
    parser.add_argument("--num-envs", type=int, default=2, help="sub-envs (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="environment option (repeatable), e.g. --option delay=100")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the checks for ``args.spec``; return 0, 1 or 2."""
    from rtrl_rl.agents.spaces import require_learnable
    from rtrl_rl.envs.check import run_check
    from rtrl_rl.envs.spec import parse_options

    try:
        options = parse_options(args.option)
    except ValueError as err:
        print(f"error: {err}")
        return 2
    return run_check(args.spec, args.num_envs, args.steps, args.seed, options, validate=require_learnable)
