"""The targets of the POPGym protocol, judged from a saved result alone.

Each target compares MMER means over seeds, per task (:func:`per_task`), and says one of
three things (:func:`verdict`): **met**, **not met** (the cells measured so far already
rule it out) or **not measured** (missing cells could still decide it either way). A
target is never met on missing cells: while seeds of a rule it judges are unfinished, its
means are over the finished seeds and its status says "so far" (:func:`so_far`).

- the best RTRL rule is at least the published GRU − :data:`NEAR_GRU` on every task with a
  published figure, and at least the best published model on :data:`ABOVE_BEST` of them;
  a measured mean meets a published figure at that figure's precision (:func:`as_published`),
  since the paper prints 3 decimals and a mean of 0.99998 reads there as 1.000;
- it is at least the cpu replica (``replica-gru``) at equal steps on :data:`ABOVE_REPLICA`
  of the tasks, and at equal wall time (:func:`equal_wall`) on every task;
- the cpu replica is within :data:`REPRODUCE` of the published GRU on :data:`REPRODUCED`
  of the tasks with a published figure (the check that the protocol runs faithfully here);
- no run ends non-finite (:func:`non_finite`);
- measured side by side (``--cost``), the best RTRL rule costs no more per step than the
  cpu replica.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable

from rtrl_rl.bench.curves import mmer_within
from rtrl_rl.bench.popgym_targets import BEST_RTRL, mmer_mean

#: the replica the targets judge against: POPGym's baseline at a CPU's budget
REPLICA = "replica-gru"
NEAR_GRU, ABOVE_BEST, ABOVE_REPLICA, REPRODUCE, REPRODUCED = 0.05, 3, 10, 0.1, 6
MET, NOT_MET, NOT_MEASURED = "met", "**not met**", "not measured"
#: the decimals the paper prints its MMER figures with
PUBLISHED_DECIMALS = 3


def _check(a: float | None, b: float | None, test) -> bool | None:
    return None if a is None or b is None else bool(test(a, b))


def as_published(value: float | None) -> float | None:
    """A measured MMER rounded to the published figures' :data:`PUBLISHED_DECIMALS`, the precision
    at which it is compared with them."""
    return None if value is None else round(value, PUBLISHED_DECIMALS)


def equal_wall(runs: list[dict], tasks: list[str], window: int, rule: str = REPLICA) -> dict[str, dict]:
    """task -> {"wall_s": W, "mmer": mean over seeds or None, "seeds": how many}: ``rule``'s MMER
    over the part of each run's curve within W, the best RTRL rule's mean wall time per run on
    that task (its finished runs). Tasks without such runs of both are left out."""
    out = {}
    for task in tasks:
        best = [r["wall_s"] for r in runs if r["task"] == task and r["rule"] == BEST_RTRL and "error" not in r]
        other = [r for r in runs if r["task"] == task and r["rule"] == rule and "error" not in r and r.get("curve")]
        if not best or not other:
            continue
        wall = statistics.fmean(best)
        values = [v for v in (mmer_within(r["curve"], wall, window) for r in other) if v is not None]
        out[task] = {"wall_s": wall, "mmer": statistics.fmean(values) if values else None, "seeds": len(values)}
    return out


def per_task(agg: dict, walls: dict, published: dict, tasks: list[str]) -> dict[str, dict[str, bool | None]]:
    """target -> task -> True (met), False (not) or None (a cell missing): ``near_gru``,
    ``above_best``, ``reproduces`` on the tasks with a published figure; ``above_replica`` (equal
    steps) and ``above_replica_wall`` (equal wall time, ``walls`` from :func:`equal_wall`) on all."""
    out: dict[str, dict] = {k: {} for k in ("near_gru", "above_best", "above_replica", "above_replica_wall",
                                            "reproduces")}
    for task in tasks:
        cells = agg.get(task, {})
        rtrl, replica = mmer_mean(cells, BEST_RTRL), mmer_mean(cells, REPLICA)
        out["above_replica"][task] = _check(rtrl, replica, lambda a, b: a >= b)
        out["above_replica_wall"][task] = _check(rtrl, walls.get(task, {}).get("mmer"), lambda a, b: a >= b)
        if task in published:
            gru, best = published[task]["gru"], published[task]["best"]
            rtrl_, replica_ = as_published(rtrl), as_published(replica)
            out["near_gru"][task] = _check(rtrl_, gru, lambda a, b: a >= round(b - NEAR_GRU, PUBLISHED_DECIMALS))
            out["above_best"][task] = _check(rtrl_, best, lambda a, b: a >= b)
            out["reproduces"][task] = _check(replica_, gru, lambda a, b: round(abs(a - b), PUBLISHED_DECIMALS)
                                             <= REPRODUCE)
    return out


def verdict(checks: dict[str, bool | None], need: int | None = None) -> tuple[str, str]:
    """(status, detail) of "met on at least ``need`` of these tasks" (None: on every one)."""
    met = sum(v is True for v in checks.values())
    missing = sum(v is None for v in checks.values())
    n = len(checks)
    need = n if need is None else need
    status = MET if met >= need else NOT_MET if met + missing < need else NOT_MEASURED
    return status, f"{met} of {n} tasks" + (f" ({missing} not measured)" if missing else "")


def non_finite(row: dict) -> bool:
    """A run that stopped on a non-finite loss or gradient, or whose curve holds a non-finite value."""
    error = row.get("error", "")
    if "non-finite" in error or error.startswith("FloatingPointError"):
        return True
    return any(not math.isfinite(p[-1]) for p in row.get("curve") or [])


def finished(runs: list[dict]) -> set[tuple]:
    """The (task, rule, seed) cells with a finished run."""
    return {(r["task"], r["rule"], r["seed"]) for r in runs if "error" not in r}


def finite_verdict(runs: list[dict], expected: set[tuple]) -> tuple[str, str]:
    """(status, detail) of "no run ends non-finite": not met by any non-finite run; met once
    every cell of ``expected`` (task, rule, seed) has finished."""
    bad = [r for r in runs if non_finite(r)]
    done = finished(runs)
    lacking = len(expected - done)
    if bad:
        return NOT_MET, f"{len(bad)} of {len(runs)} runs non-finite"
    if lacking:
        return NOT_MEASURED, f"none of {len(runs)} runs non-finite; {lacking} of {len(expected)} cells not finished"
    return MET, f"none of {len(runs)} runs non-finite"


def cost_verdict(cost: dict | None) -> tuple[str, str]:
    """(status, detail) of "the best RTRL rule costs no more per step than the replica", from a
    side-by-side measurement whose first two rules are those two."""
    if not cost or cost.get("rules", [])[:2] != [BEST_RTRL, REPLICA]:
        return NOT_MEASURED, "no side-by-side measurement of the two"
    ratios = {task: cell["ratio"] for task, cell in cost["tasks"].items()}
    ok = all(r <= 1.0 for r in ratios.values())
    return (MET if ok else NOT_MET), ", ".join(f"{task}: {r:.2f}x the replica's time per step"
                                               for task, r in ratios.items())


def so_far(judged: tuple[str, str], runs: list[dict], expected: set[tuple], rules: tuple[str, ...],
           tasks: Iterable[str]) -> tuple[str, str]:
    """``judged`` (status, detail) marked "so far" while cells of ``rules`` on ``tasks`` (those the
    target judges) in ``expected`` (task, rule, seed) are unfinished: its means are over the seeds
    finished, and the rest may move them. Cells of tasks the target does not judge never count."""
    done, judged_tasks = finished(runs), set(tasks)
    lacking = sum(cell[0] in judged_tasks and cell[1] in rules and cell not in done for cell in expected)
    status, detail = judged
    if not lacking or status == NOT_MEASURED:
        return judged
    return f"{status} so far", f"{detail}; {lacking} cells of {' and '.join(rules)} not finished"


def targets(agg: dict, walls: dict, published: dict, tasks: list[str], runs: list[dict], expected: set[tuple],
            cost: dict | None) -> list[tuple[str, str, str]]:
    """The page's targets: (what, status, detail), one per target, in the issue's order."""
    checks = per_task(agg, walls, published, tasks)
    with_figure = len(checks["near_gru"])

    def judged(name: str, need: int | None, rules: tuple[str, ...]) -> tuple[str, str]:
        return so_far(verdict(checks[name], need), runs, expected, rules, checks[name])

    return [
        (f"best RTRL ≥ published GRU − {NEAR_GRU} on every task with a published figure ({with_figure})",
         *judged("near_gru", None, (BEST_RTRL,))),
        (f"best RTRL ≥ the best published model on at least {ABOVE_BEST} of them",
         *judged("above_best", ABOVE_BEST, (BEST_RTRL,))),
        (f"best RTRL ≥ the cpu replica at equal steps on at least {ABOVE_REPLICA} of {len(tasks)} tasks",
         *judged("above_replica", ABOVE_REPLICA, (BEST_RTRL, REPLICA))),
        (f"best RTRL ≥ the cpu replica at equal wall time on every task ({len(tasks)})",
         *judged("above_replica_wall", None, (BEST_RTRL, REPLICA))),
        (f"the cpu replica within {REPRODUCE} of the published GRU on at least {REPRODUCED} of {with_figure} tasks",
         *judged("reproduces", REPRODUCED, (REPLICA,))),
        ("no run ends non-finite", *finite_verdict(runs, expected)),
        ("best RTRL costs no more per step than the cpu replica (side by side)", *cost_verdict(cost)),
    ]
