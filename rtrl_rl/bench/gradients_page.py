"""The gradient part of ``docs/approximations.md``, from ``bench_gradients.json`` alone: what
each rule approximates, the verdicts computed from the measured rows, the tables, three charts."""

from __future__ import annotations

import statistics
from pathlib import Path

from rtrl_rl.bench import charts
from rtrl_rl.bench.page import table

COLORS = {"tbptt": "tab:gray", "snap1": "tab:blue", "uoro": "tab:red", "kfrtrl": "tab:green",
          "rtrl": "black", "nn.LSTM": "tab:purple"}

RULES = """The dense cores (`rnn`, `gru`, `lstm`) take `learning=` `tbptt`, `rtrl` (exact), `snap1`,
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
page measures the rest."""


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


def plots(directory: Path, quality_rows: list[dict], cost_rows: list[dict]) -> list[Path]:
    """The cosine, variance and cost charts, one panel per core; returns their paths."""
    plt = charts.pyplot()
    cores = list(dict.fromkeys(r["core"] for r in cost_rows))
    directory.mkdir(parents=True, exist_ok=True)
    longest = max(r["L"] for r in quality_rows)
    names = []
    for metric, label, log in (("cos", "cosine to the exact gradient (one draw)", False),
                               ("var", "variance / |g|² across noise draws", True)):
        fig, axes = plt.subplots(1, len(cores), figsize=(4 * len(cores), 3.2), sharey=True)
        for ax, core in zip(axes, cores):
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
        names.append(charts.save(fig, directory / f"approximations_{metric}.png", dpi=110))
    fig, axes = plt.subplots(1, len(cores), figsize=(4 * len(cores), 3.2), sharey=True)
    for ax, core in zip(axes, cores):
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
    return names + [charts.save(fig, directory / "approximations_cost.png", dpi=110)]


def setup(data: dict) -> str:
    """How the rows were measured, in one paragraph."""
    meta = data["meta"]
    return (f"Measured with torch {meta['torch']} on {meta['cpu']}, one thread, {meta['seconds']:.0f} s. Quality "
            f"in float64, segments of T = {meta['segment']}, a random linear loss of the outputs at every step, "
            f"{meta['draws']} noise draws for uoro and kfrtrl; inputs: random N(0, 1) (d = 16) or memory:recall "
            "observations under random actions (episodes with resets). Cost in float32, B = "
            f"{meta['batch']} streams, d = {meta['input_size']}, {meta['clock']}, median of {meta['repeats']}; exact "
            "rtrl is timed on 2-step segments.")


def details(data: dict) -> list[str]:
    """The tables of the measured rows."""
    return ["## Gradient quality", "", "cos: mean cosine of one estimate to the exact gradient; cos(mean): "
            "of the mean of the draws; var/|g|²: tr(Cov)/|g|²; bias²/|g|²: (|mean - g|² - tr(Cov)/N)/|g|², "
            "an unbiased estimate of the squared bias (noise of order var/N; can be negative).", "",
            *table(*quality_table(data["quality"])), "## Cost", "", *table(*cost_table(data["cost"]))]
