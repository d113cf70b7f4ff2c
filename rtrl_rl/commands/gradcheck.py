"""``rtrl-rl gradcheck``: verify exact RTRL against full-stream BPTT (docs/rtrl.md, "Verification protocol")."""

from __future__ import annotations

import argparse

TOLERANCE = 1e-8


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``gradcheck`` parser."""
    parser = subparsers.add_parser(
        "gradcheck", help="check RTRL gradients against full-stream BPTT in float64",
        description="Runs the verification protocol of docs/rtrl.md in float64 and prints the max relative error per "
                    f"parameter; exits 1 if any error exceeds {TOLERANCE:g} or resets do not matter.")
    parser.add_argument("--core", default=None, help="core to check: an element-wise core, or a dense one "
                        "(rnn, gru, lstm: exact dense RTRL) (default: all)")
    parser.add_argument("--segments", type=int, default=3, help="number of segments K (>= 3 recommended)")
    parser.add_argument("--length", type=int, default=5, help="segment length T (>= 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the protocol and print one block per (core, path); return the exit code."""
    from rtrl_rl.agents.cores import DENSE_CORES, available_cores, elementwise_cores
    from rtrl_rl.agents.cores.verification import check_all, format_report

    checkable = elementwise_cores() + sorted(DENSE_CORES)
    cores = checkable if args.core is None else [args.core]
    for core in cores:
        if core not in checkable:
            print(f"error: {core!r} has no RTRL to check; cores with exact RTRL: {', '.join(checkable)} "
                  f"(all cores: {', '.join(available_cores())})")
            return 2
    if args.segments < 1 or args.length < 1:
        print("error: --segments and --length must be >= 1")
        return 2
    reports = check_all(cores, args.segments, args.length, seed=args.seed)
    failed = False
    for report in reports:
        ok = report.passed(TOLERANCE)
        failed |= not ok
        print("\n".join(format_report(report)))
        print(f"  {'PASS' if ok else 'FAIL'} (tolerance {TOLERANCE:g})")
    return 1 if failed else 0
