"""``rtrl-rl bench gradients``: gradient quality and cost of the dense learning rules.

For each dense core (rnn, gru, lstm), rule (tbptt, snap1, uoro, kfrtrl) and size n, on
random inputs and on trajectories of the memory:recall task (random actions, episodes with
resets), over sequences of L steps cut into segments of T: the gradient of a random
linear loss of the outputs, accumulated over the segments with fixed parameters, against
the exact one (full-stream BPTT in float64, which exact dense RTRL equals, as tested):

- ``cos``: mean cosine similarity of one estimate to the exact gradient;
- ``var``: tr(Cov) / |g|², the variance across independent noise draws (0: deterministic);
- ``bias2``: (|mean - g|² - tr(Cov)/N) / |g|², an unbiased estimate of the squared bias
  relative to |g|² (about 0 for an unbiased rule, up to noise; can be negative).

Cost (float32, CPU, one thread, process time): ms per step of a segment's forward and
backward for B streams, beside tbptt, exact dense RTRL and nn.LSTM, and the carry's bytes
per stream. Exact RTRL's cost exponent in n is fitted on log-log. ``--json`` writes the
rows, ``--doc`` the page ``docs/approximations.md`` from them (:mod:`rtrl_rl.bench.approximations_page`).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

from rtrl_rl.agents.cores import DENSE_CORES, Carry
from rtrl_rl.agents.cores.dense import DenseCore
from rtrl_rl.bench import record
from rtrl_rl.bench.grid import SEGMENT_LENGTH
from rtrl_rl.bench.gradients_page import cost_table, quality_table
from rtrl_rl.bench.table import print_table

F64 = torch.float64
CORES = ("rnn", "gru", "lstm")
RULES = ("tbptt", "snap1", "uoro", "kfrtrl")
TIMED = ("tbptt", "snap1", "uoro", "kfrtrl", "rtrl")


def applies(core: str, rule: str) -> bool:
    """Whether ``rule`` is defined for ``core`` (KF-RTRL: rnn and lstm only)."""
    return not (core == "gru" and rule == "kfrtrl")


def stream_gradient(core: DenseCore, x: Tensor, w: Tensor, reset: Tensor, segment: int) -> tuple[Tensor, Carry]:
    """The core's gradient of Σ_t w_t·y_t, accumulated over consecutive segments from a zero
    carry (parameters fixed): x (L,B,d), w (L,B,n), reset (L,B) -> flat (P,), and the last carry."""
    core.zero_grad()
    carry = core.initial_carry(x.shape[1])
    for start in range(0, x.shape[0], segment):
        rows = slice(start, start + segment)
        y, carry = core(x[rows], carry, reset[rows])
        (w[rows] * y).sum().backward()
    grad = torch.cat([p.grad.flatten() for p in core.parameters()])
    core.zero_grad()
    return grad, carry


def bptt_gradient(core: DenseCore, x: Tensor, w: Tensor, reset: Tensor) -> Tensor:
    """The exact gradient: autograd BPTT over the whole stream from a zero state."""
    core.zero_grad()
    zero = {p: x.new_zeros(x.shape[1], core.hidden_size) for p in core.cell.parts}
    (w * core.reference_forward(x, zero, reset)).sum().backward()
    grad = torch.cat([p.grad.flatten() for p in core.parameters()])
    core.zero_grad()
    return grad


def like(core: DenseCore, learning: str) -> DenseCore:
    """A core of the same kind, size, dtype and parameters with another learning rule."""
    other = type(core)(core.input_size, core.hidden_size, learning=learning, max_rtrl_elements=1 << 62)
    other.to(next(core.parameters()).dtype).load_state_dict(core.state_dict())
    return other


def per_stream_estimates(core: DenseCore, x: Tensor, w: Tensor, reset: Tensor, segment: int,
                         draws: int) -> tuple[Tensor, Tensor]:
    """``draws`` independent estimates (draws, P) of one stream (x (L,1,d)), run as that many
    identical streams of one batch (each draws its own noise), and the batch's .grad / draws.

    Each stream's estimate is the truncated gradient plus Σ_k c_kᵀ M̂_k,b over the segment
    starts k; c_k = dL_k/ds_k is the same in every stream (the state does not depend on the
    noise). The mean of the estimates equals .grad / draws, the public path (tested).
    """
    L, _, d = x.shape
    xs, ws, rs = x.expand(L, draws, d), w.expand(L, draws, w.shape[2]), reset.expand(L, draws)
    core.zero_grad()
    carry, starts = core.initial_carry(draws), []
    for start in range(0, L, segment):
        rows = slice(start, start + segment)
        starts.append((carry, rows))
        y, carry = core(xs[rows], carry, rs[rows])
        (ws[rows] * y).sum().backward()
    public = torch.cat([p.grad.flatten() for p in core.parameters()]) / draws
    core.zero_grad()
    estimates = stream_gradient(like(core, "tbptt"), x, w, reset, segment)[0].repeat(draws, 1)
    order = [0, 2, 1, 3]   # split_gate_gradient's order -> parameter order (W_ih, W_hh, b_ih, b_hh)
    for carry, rows in starts:
        s0 = {p: carry[p][:1].clone().requires_grad_() for p in core.cell.parts}
        (w[rows] * core.reference_forward(x[rows], s0, reset[rows])).sum().backward()
        core.zero_grad()
        c0 = torch.stack([s0[p].grad for p in core.cell.parts], 1)
        entries = {k: carry[k] for k in core.sensitivity_shapes()}

        def one_stream(*values: Tensor) -> Tensor:
            flat = core.rule.carry_gradient({k: v.unsqueeze(0) for k, v in zip(entries, values)}, c0)
            parts = core.split_gate_gradient(flat)
            return torch.cat([parts[i].flatten() for i in order])
        estimates += torch.func.vmap(one_stream)(*entries.values())
    return estimates, public


def memory_inputs(length: int, seed: int) -> tuple[Tensor, Tensor]:
    """Observations (L,1,d) and episode starts (L,1) of memory:recall under random actions."""
    import numpy as np

    from rtrl_rl import envs

    venv = envs.make_vector("memory:recall", 1, seed, delay=20, distractors=True)
    rng = np.random.default_rng(seed)
    batch, obs, first = venv.reset(), [], []
    for _ in range(length):
        obs.append(np.asarray(batch.obs, dtype=np.float64).reshape(1, -1))
        first.append(np.asarray(batch.first).reshape(1))
        batch = venv.step(rng.integers(0, venv.single_action_space.n, size=1))
    venv.close()
    return torch.from_numpy(np.stack(obs)), torch.from_numpy(np.stack(first)).bool()


def quality(core_name: str, n: int, inputs: str, length: int, segment: int, draws: int, seed: int) -> list[dict]:
    """Gradient quality rows, one per rule, for one core, size, input kind and length."""
    if inputs == "memory":
        x, reset = memory_inputs(length, seed)
    else:
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(length, 1, 16, generator=gen, dtype=F64)
        reset = torch.zeros(length, 1, dtype=torch.bool)
    reset[0] = True
    torch.manual_seed(seed)
    base = DENSE_CORES[core_name](x.shape[2], n).double()
    w = torch.randn(length, 1, n, generator=torch.Generator().manual_seed(seed + 1), dtype=F64)
    exact = bptt_gradient(base, x, w, reset)
    rows = []
    for rule in RULES:
        if not applies(core_name, rule):
            continue
        core = like(base, rule)
        if rule in ("uoro", "kfrtrl"):
            core.reseed(seed)
            est, _ = per_stream_estimates(core, x, w, reset, segment, draws)
        else:
            est = stream_gradient(core, x, w, reset, segment)[0].unsqueeze(0)
        g2 = exact.pow(2).sum()
        trace = est.var(0).sum() if est.shape[0] > 1 else torch.zeros((), dtype=F64)
        mean = est.mean(0)
        cos = torch.nn.functional.cosine_similarity(est, exact.unsqueeze(0), dim=1)
        rows.append({"core": core_name, "rule": rule, "n": n, "inputs": inputs, "L": length, "T": segment,
                     "draws": est.shape[0], "cos": cos.mean().item(),
                     "cos_of_mean": torch.nn.functional.cosine_similarity(mean, exact, dim=0).item(),
                     "var": (trace / g2).item(), "bias2": ((mean - exact).pow(2).sum() - trace / est.shape[0]).item() / g2.item()})
    return rows


def _segment_runner(core: torch.nn.Module, x: Tensor, w: Tensor, reset: Tensor) -> Callable[[], None]:
    carry = core.initial_carry(x.shape[1])

    def run() -> None:
        y, _ = core(x, carry, reset)
        (w * y).sum().backward()
    return run


def cost(core_name: str, n: int, d: int, batch: int, segment: int, repeats: int) -> list[dict]:
    """ms per step (median over ``repeats``, after one warm-up) and carry bytes per stream,
    per rule, plus nn.LSTM for the lstm core; exact RTRL runs 2-step segments (it is slow)."""
    torch.manual_seed(0)
    base = DENSE_CORES[core_name](d, n)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(segment, batch, d, generator=gen).requires_grad_()
    w = torch.randn(segment, batch, n, generator=gen)
    reset = torch.zeros(segment, batch, dtype=torch.bool)
    variants: dict[str, tuple[torch.nn.Module, int]] = {}
    for rule in TIMED:
        if applies(core_name, rule):
            variants[rule] = (like(base, rule) if rule != "tbptt" else base, 2 if rule == "rtrl" else segment)
    if core_name == "lstm":
        variants["nn.LSTM"] = (torch.nn.LSTM(d, n), segment)
    rows = []
    for name, (core, steps) in variants.items():
        if name == "nn.LSTM":
            lstm = core

            def run() -> None:
                y, _ = lstm(x)
                (w * y).sum().backward()
            carry_bytes = 2 * n * 4
        else:
            run = _segment_runner(core, x[:steps], w[:steps], reset[:steps])
            carry_bytes = sum(v[0].numel() * v.element_size() for v in core.initial_carry(1).values())
        times = []
        for rep in range(repeats + 1):
            start = time.process_time()
            run()
            if rep:
                times.append((time.process_time() - start) * 1e3 / steps)
        rows.append({"core": core_name, "rule": name, "n": n, "d": d, "B": batch, "T": steps,
                     "ms_per_step": statistics.median(times), "carry_bytes": carry_bytes})
    return rows


def exponents(cost_rows: list[dict]) -> dict[str, dict[str, float]]:
    """Least-squares slope of log(ms per step) in log(n) for exact RTRL per core: of the
    total, of the part above tbptt (the influence update itself), and between the two
    largest sizes."""
    out: dict[str, dict[str, float]] = {}
    for core in sorted({r["core"] for r in cost_rows}):
        ms = {(r["rule"], r["n"]): r["ms_per_step"] for r in cost_rows if r["core"] == core}
        sizes = sorted(n for rule, n in ms if rule == "rtrl")
        if len(sizes) < 2:
            continue
        fits = {}
        for label, values in (("total", [ms["rtrl", n] for n in sizes]),
                              ("above_tbptt", [ms["rtrl", n] - ms["tbptt", n] for n in sizes])):
            if min(values) > 0:
                fits[label] = _slope([math.log(n) for n in sizes], [math.log(v) for v in values])
        if len(sizes) > 2:   # the largest sizes, where the arithmetic outweighs per-op overhead
            a, b = sizes[-2:]
            fits["last_pair"] = math.log(ms["rtrl", b] / ms["rtrl", a]) / math.log(b / a)
        out[core] = fits
    return out


def _slope(xs: list[float], ys: list[float]) -> float:
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((a - mx) * (b - my) for a, b in zip(xs, ys)) / sum((a - mx) ** 2 for a in xs)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the benchmark's arguments to ``parser``."""
    parser.add_argument("--quick", action="store_true", help="small grid: n = 8, 16; L = 100; 8 draws")
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="hidden sizes n (default 16 32 64)")
    parser.add_argument("--lengths", type=int, nargs="+", default=None,
                        help="sequence lengths L for gradient quality (default 100 1000)")
    parser.add_argument("--segment", type=int, default=SEGMENT_LENGTH, help=f"segment length T (default {SEGMENT_LENGTH})")
    parser.add_argument("--draws", type=int, default=None, help="noise draws for uoro/kfrtrl (default 32)")
    parser.add_argument("--batch", type=int, default=8, help="streams B for the cost (default 8)")
    parser.add_argument("--input-size", type=int, default=16, help="input size d for the cost (default 16)")
    parser.add_argument("--repeats", type=int, default=7, help="timing repetitions, median taken (default 7)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON")
    parser.add_argument("--doc", metavar="FILE", help="write the page from the JSON (needs --json; the charts go "
                                                      "beside the JSON, the learning part comes from the "
                                                      "approx-learning JSON there)")
    parser.add_argument("--report-only", action="store_true", help="with --json and --doc: rewrite the page from "
                                                                   "the saved JSON; measure nothing")


def _refused(args: argparse.Namespace) -> str | None:
    for name in ("segment", "batch", "input_size", "repeats"):
        if getattr(args, name) < 1:
            return f"--{name.replace('_', '-')} must be >= 1"
    if args.draws is not None and args.draws < 2:
        return "--draws must be >= 2 (the variance needs two draws)"
    if any(v < 1 for v in (args.sizes or []) + (args.lengths or [])):
        return "--sizes and --lengths must be >= 1"
    if (args.doc or args.report_only) and not args.json:
        return "--doc and --report-only need --json (the page is written from the JSON)"
    if args.report_only and not Path(args.json).is_file():
        return f"--report-only: there is no {args.json}"
    return None


def run(args: argparse.Namespace) -> int:
    """Run the grid, print the tables, write the JSON and the page if asked; returns the exit code."""
    error = _refused(args)
    if error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not args.report_only:
        data = measure(args)
        _print(data)
        if args.json:
            record.save(Path(args.json), data)
    if args.doc:
        from rtrl_rl.bench.approximations_page import write_page

        json_path = Path(args.json)
        print("wrote", *map(str, write_page(record.load(json_path), json_path, Path(args.doc))))
    return 0


def measure(args: argparse.Namespace) -> dict:
    """Every core x size x input kind x length (quality) and core x size (cost)."""
    torch.set_num_threads(1)
    sizes = args.sizes or ([8, 16] if args.quick else [16, 32, 64])
    lengths = args.lengths or ([100] if args.quick else [100, 1000])
    draws = args.draws or (8 if args.quick else 32)
    began = time.time()
    quality_rows = [row for core in CORES for n in sizes for inputs in ("random", "memory") for L in lengths
                    for row in quality(core, n, inputs, L, args.segment, draws, args.seed)]
    cost_rows = [row for core in CORES for n in sizes
                 for row in cost(core, n, args.input_size, args.batch, args.segment, args.repeats)]
    meta = {"torch": torch.__version__, "cpu": record.machine()["cpu"], "threads": 1, "clock": "process time",
            "seconds": round(time.time() - began, 1), "segment": args.segment, "draws": draws, "batch": args.batch,
            "input_size": args.input_size, "repeats": args.repeats, "seed": args.seed,
            "command": record.command_line("rtrl-rl", getattr(args, "argv", None) or ["bench", "gradients"]),
            "versions": record.versions()}
    return {"meta": meta, "quality": quality_rows, "cost": cost_rows, "rtrl_exponent": exponents(cost_rows)}


def _print(data: dict) -> None:
    meta = data["meta"]
    print_table("gradient quality (float64)", *quality_table(data["quality"]), width=160)
    print_table(f"cost (float32, B={meta['batch']}, d={meta['input_size']}, {meta['clock']}, "
                f"median of {meta['repeats']})", *cost_table(data["cost"]), width=160)
    for core, fit in data["rtrl_exponent"].items():
        print(f"exact RTRL cost exponent in n, {core}: " + ", ".join(f"{k} {v:.2f}" for k, v in fit.items()))
