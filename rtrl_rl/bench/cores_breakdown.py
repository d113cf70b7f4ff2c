"""``rtrl-rl bench cores-breakdown``: where the time of one RTRL segment goes.

Runs eLSTM segments (default n = d = 256, B = 16, T = 50: the CPU target row) in
"rtrl" mode, one CPU thread, and times the pieces of the RTRL machinery in
``rtrl_rl.agents.cores.scan`` by wrapping them with timers: the new carry (``segment_update``,
with its per-stream ``update``), the suffix products, and the backward's carry
term (``carry_gradients``), beside the whole forward and backward. It complements
``rtrl-rl bench cores``, which compares whole segments: this says what RTRL adds.
Process CPU time, medians over segments after a warm-up. Prints a table; ``--json``
writes the numbers.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections import defaultdict
from pathlib import Path

import torch

from rtrl_rl.agents.cores import make_core, scan
from rtrl_rl.bench import record

PIECES = ("segment_update", "update", "suffix_products", "adjoint", "direct_gradients", "carry_gradients")


def _timed(store: dict[str, list[float]], name: str, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        start = time.process_time()
        result = fn(*args, **kwargs)
        store[name].append(time.process_time() - start)
        return result
    return wrapper


def measure(n: int, d: int, batch: int, length: int, segments: int, warmup: int = 5) -> dict[str, float]:
    """Median ms per segment of each piece and of the whole forward and backward."""
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(length, batch, d, generator=gen).requires_grad_()
    reset = torch.rand(length, batch, generator=gen) < 0.02
    weights = torch.randn(length, batch, n, generator=gen)
    core = make_core("elstm", d, n, learning="rtrl")
    carry = core.initial_carry(batch)
    store: dict[str, list[float]] = defaultdict(list)
    originals = {name: getattr(scan, name) for name in PIECES}
    try:
        for name, fn in originals.items():
            setattr(scan, name, _timed(store, name, fn))
        for _ in range(warmup + segments):
            core.zero_grad(set_to_none=True)
            start = time.process_time()
            y, carry = core(x, carry, reset)
            store["forward (whole)"].append(time.process_time() - start)
            start = time.process_time()
            (y * weights).sum().backward()
            store["backward (whole)"].append(time.process_time() - start)
    finally:
        for name, fn in originals.items():
            setattr(scan, name, fn)
    return {name: 1e3 * statistics.median(times[warmup:]) for name, times in store.items()}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the benchmark's arguments to ``parser``."""
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--d", type=int, default=256)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=50)
    parser.add_argument("--segments", type=int, default=30)
    parser.add_argument("--json", metavar="FILE")


def run(args: argparse.Namespace) -> int:
    """Measure, print the table, write JSON if asked; returns the exit code."""
    result = measure(args.n, args.d, args.batch, args.length, args.segments)
    print(f"eLSTM n={args.n} d={args.d} B={args.batch} T={args.length}, rtrl, 1 thread: ms per segment")
    for name, ms in result.items():
        print(f"  {name:<18} {ms:7.2f}")
    if args.json:
        config = {k: getattr(args, k) for k in ("n", "d", "batch", "length", "segments")}
        record.save(Path(args.json), {"config": config, "ms": result, "machine": record.machine(),
                                      "versions": record.versions()})
    return 0
