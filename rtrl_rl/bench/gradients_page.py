"""The page ``rtrl-rl bench gradients --doc FILE`` writes: what each rule approximates, the
verdicts on the claims computed from the measured rows, the tables, and three plots; then
the learning section of ``rtrl-rl bench approx-learning``, rebuilt from its JSON if present."""

from __future__ import annotations

import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402

from rtrl_rl.bench.approx_learning_page import page_tail
from rtrl_rl.bench.gradients_report import CORES, cost_table, quality_table  # noqa: E402

COLORS = {"tbptt": "tab:gray", "snap1": "tab:blue", "uoro": "tab:red", "kfrtrl": "tab:green",
          "rtrl": "black", "nn.LSTM": "tab:purple"}

INTRO = """# Approximate RTRL for the dense cores

The dense cores (`rnn`, `gru`, `lstm`) take `learning=` `tbptt`, `rtrl` (exact), `snap1`,
`uoro` or `kfrtrl` (see `cores.md`). Each rule but tbptt cuts the gradient at the segment
start into the part inside the segment (ordinary backpropagation, exact) and the carried
part c_0ᵀ M̂_0: the gradient that reaches the carried state, times the rule's estimate M̂ of
the influence M = ds/dθ. The rules differ only in M̂:

| rule | M̂ | per step and stream | what it approximates |
|---|---|---|---|
| `rtrl` | M itself, M_t = J_t M_{t-1} + I_t | O(n³) memory, O(n⁴) time | nothing (equals full-stream BPTT, tested in float64) |
| `snap1` | the entries one step makes non-zero (unit i's state, unit i's parameters), propagated by J_t's unit-diagonal blocks | O(n²) | drops influence through other units: biased, deterministic; exact for a diagonal W_hh |
| `uoro` | rank one, s̃ w̃ᵀ, with random signs each step | O(n²) | unbiased (E[M̂] = M), noisy |
| `kfrtrl` | Kronecker product ũᵀ ⊗ H̃, random signs each step | O(n²) memory, O(n³) time | unbiased, lower variance than UORO (rnn, lstm; not gru) |
| `tbptt` | 0 | | drops everything before the segment |

References: Menick et al. 2021 (SnAp), Tallec & Ollivier 2018 (UORO), Mujika et al. 2018
(KF-RTRL). The unbiasedness of UORO and KF-RTRL, SnAp-1's exactness where it must be
exact and exact RTRL's equality with BPTT are tests (`tests/test_cores_dense*.py`); this
page measures the rest.
"""


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


def verdicts(quality_rows: list[dict], cost_rows: list[dict], fits: dict, meta: dict) -> list[str]:
    """One line per claim, computed from the rows (the words follow the numbers)."""
    lines = []
    draws = meta["draws"]
    by = lambda rule: [r for r in quality_rows if r["rule"] == rule]
    for rule in ("uoro", "kfrtrl"):
        rows = by(rule)
        if not rows:
            continue
        # the debiased bias² estimate has a noise of the order of var / draws
        within = sum(abs(r["bias2"]) <= 5 * r["var"] / draws for r in rows)
        resolution = statistics.median(5 * r["var"] / draws for r in rows)
        lines.append(f"- **{rule} unbiased, noisy**: in {within} of {len(rows)} settings the estimated squared "
                     f"bias is within 5 var/N of 0 (N = {draws} draws), which only excludes squared biases above "
                     f"about {resolution:.3g} |g|² (median); the unbiasedness tests resolve biases of 15% of |g| "
                     f"with 20,000 draws. Variance: mean var/|g|² = {_mean([r['var'] for r in rows]):.3g}; "
                     f"mean cosine of one draw to the exact gradient {_mean([r['cos'] for r in rows]):.3f}.")
    pairs = [(u, k) for u in by("uoro") for k in by("kfrtrl")
             if all(u[key] == k[key] for key in ("core", "n", "inputs", "L"))]
    if pairs:
        ratio_by_n: dict[int, list[float]] = {}
        for u, k in pairs:
            ratio_by_n.setdefault(u["n"], []).append(u["var"] / k["var"] if k["var"] > 0 else float("inf"))
        lower = sum(u["var"] > k["var"] for u, k in pairs)
        scaling = ", ".join(f"n = {n}: {statistics.median(v):.3g}" for n, v in sorted(ratio_by_n.items()))
        lines.append(f"- **kfrtrl lower variance than uoro**: in {lower} of {len(pairs)} settings; median "
                     f"var(uoro) / var(kfrtrl) by n: {scaling}.")
    snap = by("snap1")
    if snap:
        tb = {(r["core"], r["n"], r["inputs"], r["L"]): r for r in by("tbptt")}
        better = sum(r["cos"] > tb[r["core"], r["n"], r["inputs"], r["L"]]["cos"] for r in snap)
        lines.append(f"- **snap1 biased, zero variance**: squared bias/|g|² from {min(r['bias2'] for r in snap):.3g} "
                     f"to {max(r['bias2'] for r in snap):.3g}, var 0 (deterministic); its cosine beats tbptt's "
                     f"in {better} of {len(snap)} settings.")
    ms = {(r["core"], r["rule"], r["n"]): r["ms_per_step"] for r in cost_rows}
    for rule, target in (("snap1", 2.0), ("uoro", 3.0)):
        for base in ("tbptt", "nn.LSTM"):
            ratios = {n: ms["lstm", rule, n] / ms["lstm", base, n] for (c, r, n) in ms
                      if c == "lstm" and r == rule and ("lstm", base, n) in ms}
            if ratios:
                met = all(v <= target for v in ratios.values())
                label = "the dense lstm's tbptt" if base == "tbptt" else "nn.LSTM (tbptt)"
                lines.append(f"- **target {rule} lstm <= {target:g}x {label}, same n**: "
                             + ", ".join(f"n = {n}: {v:.2f}x" for n, v in sorted(ratios.items()))
                             + (" (met)" if met else " (not met)"))
    for core, fit in fits.items():
        lines.append(f"- **exact rtrl cost exponent in n ({core})**: "
                     + ", ".join(f"{k.replace('_', ' ')} {v:.2f}" for k, v in fit.items()) + " (expected about 4)")
    return lines


def _markdown_table(head: list[str], body: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |" for r in body]


def _plots(directory: Path, quality_rows: list[dict], cost_rows: list[dict]) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    longest = max(r["L"] for r in quality_rows)
    names = []
    for metric, label, log in (("cos", "cosine to the exact gradient (one draw)", False),
                               ("var", "variance / |g|² across noise draws", True)):
        fig, axes = plt.subplots(1, len(CORES), figsize=(4 * len(CORES), 3.2), sharey=True)
        for ax, core in zip(axes, CORES):
            for inputs, style in (("random", "-"), ("memory", "--")):
                for rule in COLORS:
                    pts = sorted((r["n"], r[metric]) for r in quality_rows if r["core"] == core and r["rule"] == rule
                                 and r["inputs"] == inputs and r["L"] == longest and (not log or r[metric] > 0))
                    if pts:
                        ax.plot(*zip(*pts), style, marker="o", color=COLORS[rule], label=f"{rule} ({inputs})")
            ax.set_title(f"{core}, L = {longest}")
            ax.set_xscale("log", base=2)
            ax.set_xlabel("n")
            if log:
                ax.set_yscale("log")
        axes[0].set_ylabel(label)
        axes[-1].legend(fontsize=7)
        fig.tight_layout()
        name = f"approximations_{metric}.png"
        fig.savefig(directory / name, dpi=110)
        plt.close(fig)
        names.append(name)
    fig, axes = plt.subplots(1, len(CORES), figsize=(4 * len(CORES), 3.2), sharey=True)
    for ax, core in zip(axes, CORES):
        for rule in COLORS:
            pts = sorted((r["n"], r["ms_per_step"]) for r in cost_rows if r["core"] == core and r["rule"] == rule)
            if pts:
                ax.plot(*zip(*pts), marker="o", color=COLORS[rule], label=rule)
        ax.set_title(core)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("n")
    axes[0].set_ylabel("ms per step (CPU, 1 thread)")
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(directory / "approximations_cost.png", dpi=110)
    plt.close(fig)
    return names + ["approximations_cost.png"]


def write_page(path: Path, quality_rows: list[dict], cost_rows: list[dict], fits: dict, meta: dict,
               command: str) -> None:
    """Write the markdown page at ``path`` and its PNGs under ``path.parent / "results"``."""
    plots = _plots(path.parent / "results", quality_rows, cost_rows)
    setup = (f"Generated by `{command}` (torch {meta['torch']}, {meta['cpu']}, one thread, "
             f"{meta['seconds']:.0f} s). Quality in float64, segments of T = {meta['segment']}, a random linear "
             f"loss of the outputs at every step, {meta['draws']} noise draws for uoro and kfrtrl; inputs: "
             "random N(0, 1) (d = 16) or memory:recall observations under random actions (episodes with "
             f"resets). Cost in float32, B = {meta['batch']} streams, d = {meta['input_size']}, "
             f"{meta['clock']}, median of {meta['repeats']}; exact rtrl is timed on 2-step segments.")
    lines = [INTRO, "## Verdicts (computed from the tables below)", "", setup, "",
             *verdicts(quality_rows, cost_rows, fits, meta), ""]
    for name in plots:
        lines += [f"![{name}](results/{name})", ""]
    lines += ["## Gradient quality", "", "cos: mean cosine of one estimate to the exact gradient; cos(mean): "
              "of the mean of the draws; var/|g|²: tr(Cov)/|g|²; bias²/|g|²: (|mean - g|² - tr(Cov)/N)/|g|², "
              "an unbiased estimate of the squared bias (noise of order var/N; can be negative).", "",
              *_markdown_table(*quality_table(quality_rows)), "", "## Cost", "",
              *_markdown_table(*cost_table(cost_rows)), ""]
    # the learning section (rtrl-rl bench approx-learning) is kept: rebuilt from its own JSON
    lines += page_tail(path.parent / "results" / "approx_learning.json")
    path.write_text("\n".join(lines))
