"""From the raw runs of the results JSON to the figures the report prints and plots.

Everything here is a pure function of the runs list, so the report can be rebuilt from the
JSON at any time and always says the same. Lengths are string keys (as JSON stores them).
"""

from __future__ import annotations

import statistics
from collections import defaultdict

#: a cell is "solved" at or above this mean greedy success, "at chance" within the margin
SOLVED = 0.9
CHANCE_MARGIN = 0.1


def _std(values: list[float]) -> float | None:
    """Sample standard deviation over seeds; None for one seed (no spread to report)."""
    return statistics.stdev(values) if len(values) > 1 else None


def frames_to_solve(evaluations: list[dict]) -> int | None:
    """Frames (env steps) of the first evaluation at or above :data:`SOLVED`; None if never."""
    for e in evaluations:
        if (e.get("success_rate") or 0.0) >= SOLVED:
            return e["step"]
    return None


def aggregate(runs: list[dict], tasks: list[str], rules: list[str]) -> dict:
    """Final-success table and mean learning curves per (task, rule, L) over seeds.

    Tasks and rules appear in the order given (the grid's), lengths in increasing order.
    """
    groups: dict = defaultdict(list)
    for r in runs:
        if "error" not in r:
            groups[(r["task"], r["rule"], str(r["length"]))].append(r)
    final: dict = defaultdict(lambda: defaultdict(dict))
    curves: dict = defaultdict(lambda: defaultdict(dict))
    for (task, rule, L), group in sorted(groups.items(), key=lambda kv: (
            tasks.index(kv[0][0]), rules.index(kv[0][1]), int(kv[0][2]))):
        group.sort(key=lambda r: r["seed"])
        values = [float(r["success_rate"]) for r in group]
        solve = [frames_to_solve(r["evaluations"]) for r in group]
        final[task][rule][L] = {
            "mean": statistics.fmean(values), "std": _std(values), "n": len(values), "values": values,
            "seeds": [r["seed"] for r in group], "frames": group[0]["steps"],
            "frames_to_solve": solve, "peak": statistics.fmean(
                max((e.get("success_rate") or 0.0) for e in r["evaluations"]) for r in group), "wall_s": statistics.fmean(r["wall_s"] for r in group),
            "sps": statistics.fmean(r["sps"] for r in group),
        }
        curves[task][rule][L] = _mean_curve([r["evaluations"] for r in group])
    throughput = {task: {rule: statistics.fmean(c["sps"] for c in cells.values()) for rule, cells in rules.items()}
                  for task, rules in final.items()}
    return {"final": _plain(final), "curves": _plain(curves), "throughput": throughput,
            "solved_threshold": SOLVED, "chance_margin": CHANCE_MARGIN}


def _mean_curve(evaluation_lists: list[list[dict]]) -> dict:
    """Pointwise mean/min/max over seeds, truncated to the shortest seed's curve."""
    n = min(len(e) for e in evaluation_lists)
    rows = [[(e[i].get("success_rate") or 0.0) for e in evaluation_lists] for i in range(n)]
    return {"step": [evaluation_lists[0][i]["step"] for i in range(n)],
            "mean": [statistics.fmean(r) for r in rows], "min": [min(r) for r in rows], "max": [max(r) for r in rows]}


def _plain(d):
    return {k: _plain(v) for k, v in d.items()} if isinstance(d, dict) else d


def classify(mean: float, chance: float) -> str:
    """``solved``, ``chance`` or ``partial`` for one cell's mean success."""
    if mean >= SOLVED:
        return "solved"
    return "chance" if mean <= chance + CHANCE_MARGIN else "partial"


#: the expected shape of the results, clause by clause: (claim, rules, lengths beyond T only, wanted class)
CLAIMS = [
    ("RTRL keeps solving beyond L = T", ("rtrl-elstm", "rtrl-mingru"), True, "solved"),
    ("TBPTT collapses towards chance once L > T", ("tbptt-elstm", "tbptt-lstm"), True, "chance"),
    ("feed-forward stays at chance", ("feedforward",), False, "chance"),
]


def check_claims(final: dict, chance: float, segment: int) -> list[dict]:
    """For one task: each claim's verdict and the cells that support or break it."""
    out = []
    for claim, rules, beyond, wanted in CLAIMS:
        cells = [(rule, L, c["mean"]) for rule in rules if rule in final
                 for L, c in final[rule].items() if not beyond or int(L) > segment]
        if not cells:
            out.append({"claim": claim, "verdict": "not tested", "against": []})
            continue
        against = [(rule, L) for rule, L, m in cells if classify(m, chance) != wanted]
        out.append({"claim": claim, "verdict": "refuted" if against else "confirmed",
                    "against": [{"rule": r, "length": L, "mean": final[r][L]["mean"],
                                 "peak": final[r][L].get("peak")} for r, L in against]})
    return out
