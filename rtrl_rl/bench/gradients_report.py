"""The command side of ``rtrl-rl bench gradients``: arguments, the grid, the printed tables,
the JSON, and the generated page (``docs/approximations.md`` with its plots)."""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from rtrl_rl.bench.gradients import cost, exponents, quality
from rtrl_rl.bench.table import print_table

CORES = ("rnn", "gru", "lstm")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the benchmark's arguments to ``parser``."""
    parser.add_argument("--quick", action="store_true", help="small grid: n = 8, 16; L = 100; 8 draws")
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="hidden sizes n (default 16 32 64)")
    parser.add_argument("--lengths", type=int, nargs="+", default=None,
                        help="sequence lengths L for gradient quality (default 100 1000)")
    parser.add_argument("--segment", type=int, default=10, help="segment length T (default 10)")
    parser.add_argument("--draws", type=int, default=None, help="noise draws for uoro/kfrtrl (default 32)")
    parser.add_argument("--batch", type=int, default=8, help="streams B for the cost (default 8)")
    parser.add_argument("--input-size", type=int, default=16, help="input size d for the cost (default 16)")
    parser.add_argument("--repeats", type=int, default=7, help="timing repetitions, median taken (default 7)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON")
    parser.add_argument("--doc", metavar="FILE", help="write the markdown page with tables and plots (PNGs "
                                                       "beside it, in results/)")


def _validate(args: argparse.Namespace) -> str | None:
    for name in ("segment", "batch", "input_size", "repeats"):
        if getattr(args, name) < 1:
            return f"--{name.replace('_', '-')} must be >= 1"
    if args.draws is not None and args.draws < 2:
        return "--draws must be >= 2 (the variance needs two draws)"
    if any(v < 1 for v in (args.sizes or []) + (args.lengths or [])):
        return "--sizes and --lengths must be >= 1"
    return None


def run(args: argparse.Namespace) -> int:
    """Run the grid, print the tables, write JSON and the page if asked; returns the exit code."""
    error = _validate(args)
    if error:
        print(f"error: {error}")
        return 2
    torch.set_num_threads(1)
    sizes = args.sizes or ([8, 16] if args.quick else [16, 32, 64])
    lengths = args.lengths or ([100] if args.quick else [100, 1000])
    draws = args.draws or (8 if args.quick else 32)
    began = time.time()
    quality_rows = [row for core in CORES for n in sizes for inputs in ("random", "memory") for L in lengths
                    for row in quality(core, n, inputs, L, args.segment, draws, args.seed)]
    cost_rows = [row for core in CORES for n in sizes
                 for row in cost(core, n, args.input_size, args.batch, args.segment, args.repeats)]
    fits = exponents(cost_rows)
    meta = {"torch": torch.__version__, "cpu": platform.processor() or platform.machine(), "threads": 1,
            "clock": "process time", "seconds": round(time.time() - began, 1), "segment": args.segment,
            "draws": draws, "batch": args.batch, "input_size": args.input_size, "repeats": args.repeats,
            "seed": args.seed}
    _print(quality_rows, cost_rows, fits, meta)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "quality": quality_rows, "cost": cost_rows, "rtrl_exponent": fits}, f, indent=2)
    if args.doc:
        from rtrl_rl.bench.gradients_page import write_page

        write_page(Path(args.doc), quality_rows, cost_rows, fits, meta, _command(args))
    return 0


def _command(args: argparse.Namespace) -> str:
    parts = ["rtrl-rl bench gradients"]
    if args.quick:
        parts.append("--quick")
    for flag, value in (("--sizes", args.sizes), ("--lengths", args.lengths)):
        if value:
            parts.append(f"{flag} {' '.join(map(str, value))}")
    for flag, value, default in (("--segment", args.segment, 10), ("--draws", args.draws, None),
                                 ("--batch", args.batch, 8), ("--seed", args.seed, 0)):
        if value != default:
            parts.append(f"{flag} {value}")
    for flag, value in (("--json", args.json), ("--doc", args.doc)):
        if value:
            parts.append(f"{flag} {value}")
    return " ".join(parts)


def quality_table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Header and body of the gradient-quality table."""
    head = ["core", "n", "inputs", "L", "rule", "cos", "cos(mean)", "var/|g|²", "bias²/|g|²"]
    body = [[r["core"], str(r["n"]), r["inputs"], str(r["L"]), r["rule"], f"{r['cos']:.3f}",
             f"{r['cos_of_mean']:.3f}", f"{r['var']:.3g}", f"{r['bias2']:.3g}"] for r in rows]
    return head, body


def cost_table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Header and body of the cost table: ms per step, ratio to tbptt, carry KiB per stream."""
    tbptt = {(r["core"], r["n"]): r["ms_per_step"] for r in rows if r["rule"] == "tbptt"}
    head = ["core", "n", "rule", "ms/step", "× tbptt", "carry KiB/stream"]
    body = [[r["core"], str(r["n"]), r["rule"], f"{r['ms_per_step']:.3f}",
             f"{r['ms_per_step'] / tbptt[r['core'], r['n']]:.2f}", f"{r['carry_bytes'] / 1024:.1f}"] for r in rows]
    return head, body


def _print(quality_rows, cost_rows, fits, meta) -> None:
    print_table("gradient quality (float64)", *quality_table(quality_rows), width=160)
    print_table(f"cost (float32, B={meta['batch']}, d={meta['input_size']}, {meta['clock']}, "
                f"median of {meta['repeats']})", *cost_table(cost_rows), width=160)
    for core, fit in fits.items():
        print(f"exact RTRL cost exponent in n, {core}: " + ", ".join(f"{k} {v:.2f}" for k, v in fit.items()))


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.gradients`` entry point."""
    parser = argparse.ArgumentParser(prog="benchmarks.gradients", description="gradient quality and cost "
                                     "of the dense learning rules")
    add_arguments(parser)
    return run(parser.parse_args(argv))
