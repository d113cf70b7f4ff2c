"""``rtrl-rl bench cores``: ms per segment of the recurrent cores, measured side by side.

For each (core, n, d, B, T) it times, interleaved in one process (round-robin
repetitions, median): the forward pass only; the "rtrl" segment forward+backward; the
"tbptt" segment forward+backward (same machinery without the carry term); the per-step
RTRL path over the same T steps (T calls of one step, each with its backward); the
forward-only per-step loop; and nn.LSTM forward+backward of the same size. The input x
requires a gradient in every variant, as it does under an encoder. On CUDA it adds the
rtrl, tbptt and LSTM segments replayed from a CUDA graph (``*_graph``): the Python loops
over T launch one small kernel per op and step, and a graph replays them without that
launch overhead.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Callable

import torch

from rtrl_rl.agents.cores import make_core
from rtrl_rl.bench import record
from rtrl_rl.bench.table import print_table

#: (core, n, d, B, T); the first row is the CPU target row (docs/performance.md)
CPU_GRID = [("elstm", 256, 256, 16, 50), ("mingru", 256, 256, 16, 50), ("lru", 256, 256, 16, 50),
            ("rtu", 256, 256, 16, 50), ("rtu_nonlinear", 256, 256, 16, 50), ("elstm", 128, 64, 32, 20)]
CUDA_GRID = [("elstm", 512, 257, 256, 50), ("elstm", 256, 257, 32, 50), ("mingru", 512, 257, 256, 50),
             ("lru", 512, 257, 256, 50), ("rtu", 512, 257, 256, 50)]
VARIANTS = ("forward", "rtrl", "tbptt", "step", "forward_step", "lstm")
#: segments also timed as CUDA-graph replays on CUDA, as "<name>_graph"
GRAPHED = ("rtrl", "tbptt", "lstm")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the benchmark's arguments to ``parser``."""
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (torch.set_num_threads)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="round-robin repetitions, median taken (default 7; 3 with --quick)")
    parser.add_argument("--quick", action="store_true", help="first grid row only")
    parser.add_argument("--clock", choices=["auto", "cpu", "wall"], default="auto",
                        help="cpu: process CPU time, robust on a shared machine (default for CPU with "
                             "one thread); wall: elapsed time (default otherwise)")
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _graphed(fn: Callable[[], None], device: torch.device, modules: list[torch.nn.Module],
             x: torch.Tensor) -> Callable[[], None]:
    """Capture ``fn`` (one segment's forward and backward) in a CUDA graph; return its replay.

    Warm-up runs on a side stream first (cuBLAS/cuDNN set-up, allocations), as CUDA graph
    capture requires; gradients are dropped before the capture so that the captured
    backward allocates them from the graph's own memory pool.
    """
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(3):
            fn()
    torch.cuda.current_stream(device).wait_stream(side)
    for module in modules:
        module.zero_grad(set_to_none=True)
    x.grad = None
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return graph.replay


def _segment_runner(name: str, n: int, d: int, B: int, T: int, device: torch.device) -> dict[str, Callable[[], None]]:
    """One closure per variant, all on the same parameters and data (graph replays on CUDA)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(T, B, d, generator=gen).to(device).requires_grad_()
    reset = (torch.rand(T, B, generator=gen) < 0.02).to(device)
    rtrl = make_core(name, d, n, learning="rtrl").to(device)
    tbptt = make_core(name, d, n, learning="tbptt").to(device)
    step = make_core(name, d, n, learning="rtrl", rtrl_path="step").to(device)
    tbptt.load_state_dict(rtrl.state_dict())
    step.load_state_dict(rtrl.state_dict())
    lstm = torch.nn.LSTM(d, n).to(device)
    w = torch.randn(T, B, rtrl.output_size, generator=gen).to(device)
    w_lstm = torch.randn(T, B, n, generator=gen).to(device)
    carry, state = rtrl.initial_carry(B), rtrl.initial_carry(B, sensitivities=False)
    tb_carry = tbptt.initial_carry(B)

    def forward() -> None:
        with torch.no_grad():
            rtrl(x, state, reset)

    def segment(core, start) -> Callable[[], None]:
        def run() -> None:
            y, _ = core(x, start, reset)
            (y * w).sum().backward()
        return run

    def per_step() -> None:
        c = carry
        for t in range(T):
            y, c = step(x[t:t + 1], c, reset[t:t + 1])
            (y * w[t:t + 1]).sum().backward()

    def forward_step() -> None:
        s = state
        with torch.no_grad():
            for t in range(T):
                _, s = rtrl(x[t:t + 1], s, reset[t:t + 1])

    def lstm_segment() -> None:
        y, _ = lstm(x)
        (y * w_lstm).sum().backward()

    runners = {"forward": forward, "rtrl": segment(rtrl, carry), "tbptt": segment(tbptt, tb_carry),
               "step": per_step, "forward_step": forward_step, "lstm": lstm_segment}
    if device.type == "cuda":
        modules = {"rtrl": rtrl, "tbptt": tbptt, "lstm": lstm}
        for key in GRAPHED:
            try:
                runners[f"{key}_graph"] = _graphed(runners[key], device, [modules[key]], x)
            except RuntimeError as err:  # reported, the other variants still run
                print(f"warning: {name} {key}: CUDA graph capture failed: {err}")
    return runners


def measure(name: str, n: int, d: int, B: int, T: int, device: torch.device, repeats: int,
            clock: Callable[[], float] = time.perf_counter) -> dict:
    """Median ms per segment for every variant, and the ratios that the speed targets name."""
    runners = _segment_runner(name, n, d, B, T, device)
    times: dict[str, list[float]] = {k: [] for k in runners}
    for rep in range(repeats + 1):  # the first round warms up and is dropped
        for key, fn in runners.items():
            _sync(device)
            start = clock()
            fn()
            _sync(device)
            if rep:
                times[key].append((clock() - start) * 1e3)
    ms = {k: statistics.median(v) for k, v in times.items()}
    ratios = {"rtrl/tbptt": ms["rtrl"] / ms["tbptt"], "rtrl/lstm": ms["rtrl"] / ms["lstm"],
              "step/forward_step": ms["step"] / ms["forward_step"]}
    for num, den in (("rtrl_graph", "tbptt_graph"), ("rtrl_graph", "lstm"), ("rtrl_graph", "lstm_graph")):
        if num in ms and den in ms:
            ratios[f"{num}/{den}"] = ms[num] / ms[den]
    return {"core": name, "n": n, "d": d, "B": B, "T": T, "ms": ms, "ratios": ratios}


def _print_table(rows: list[dict], title: str) -> None:
    """Print the rows with rich when available, else as plain text."""
    variants = [*VARIANTS, *(v for v in rows[0]["ms"] if v not in VARIANTS)]  # then the CUDA-graph replays
    head = ["core", "n", "d", "B", "T", *variants, *(k.replace("forward_step", "fwd_step") for k in rows[0]["ratios"])]
    body = [[r["core"], *(str(r[k]) for k in "ndBT"), *(f"{r['ms'].get(v, float('nan')):.2f}" for v in variants),
             *(f"{r['ratios'].get(k, float('nan')):.2f}" for k in rows[0]["ratios"])] for r in rows]
    print_table(title, head, body)


def run(args: argparse.Namespace) -> int:
    """Run the grid, print the table, optionally write JSON; returns the exit code."""
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda, but CUDA is not available")
        return 2
    torch.set_num_threads(args.threads)
    grid = CUDA_GRID if device.type == "cuda" else CPU_GRID
    repeats = args.repeats or (3 if args.quick else 7)
    clock_name = args.clock if args.clock != "auto" else ("cpu" if device.type == "cpu" and args.threads == 1 else "wall")
    clock = time.process_time if clock_name == "cpu" else time.perf_counter
    rows = [measure(*cfg, device=device, repeats=repeats, clock=clock) for cfg in (grid[:1] if args.quick else grid)]
    title = (f"cores, ms per segment ({device}, {torch.get_num_threads()} thread(s), {clock_name} time, "
             f"median of {repeats})")
    _print_table(rows, title)
    if args.json:
        meta = {"device": str(device), "threads": torch.get_num_threads(), "torch": torch.__version__,
                "repeats": repeats, "clock": clock_name, "machine": record.machine(), "versions": record.versions()}
        record.save(Path(args.json), {"meta": meta, "rows": rows})
    return 0
