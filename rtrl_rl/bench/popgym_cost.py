"""Wall time per environment step of two rules, measured side by side in one process.

The grid's wall times come from runs that may have shared the machine with different loads,
so they cannot settle "cheaper per step". This measurement can: in this one process, short
runs of each rule on a task alternate (A B A B ...), so both see the same machine, and the
median seconds per environment step of each rule (acting and learning, the whole ``rtrl-rl
train`` loop; no evaluation, no TensorBoard) are compared as a ratio.
"""

from __future__ import annotations

import contextlib
import io
import statistics
import tempfile
from pathlib import Path

from rtrl_rl.bench.popgym_targets import BEST_RTRL

#: the two rules of the measurement: the best RTRL rule and the strongest BPTT baseline
COST_RULES = (BEST_RTRL, "tbptt-lstm-episode")
COST_STEPS, COST_ROUNDS = 100_000, 3


def seconds_per_step(overrides: list[str], work_dir: Path) -> float:
    """Train one short run with ``overrides`` in this process; its wall seconds per environment step."""
    from rtrl_rl.config import load_config
    from rtrl_rl.training.sync_trainer import train

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        summary = train(load_config(None, [*overrides, f"run_dir={work_dir}"]))
    return 1.0 / summary["sps"]


def measure(runs: dict[str, dict[str, list[str]]], steps: int, rounds: int = COST_ROUNDS, log=print) -> dict:
    """{"steps", "rounds", "rules", "tasks": {task: {rule: [s/step per round], "ratio": median A / median B}}}.

    ``runs``: task -> rule -> the overrides of a short run of ``steps`` (two rules per task,
    the first measured against the second). Rounds alternate the rules, so a change of load
    hits both."""
    rules = list(next(iter(runs.values())))
    out: dict = {"steps": steps, "rounds": rounds, "rules": rules, "tasks": {}}
    with tempfile.TemporaryDirectory(prefix="popgym-cost-") as tmp:
        for task, by_rule in runs.items():
            cell: dict = {r: [] for r in rules}
            for k in range(rounds):
                for rule in rules:
                    cell[rule].append(round(seconds_per_step(by_rule[rule], Path(tmp) / f"{task}-{rule}-{k}"), 9))
            medians = [statistics.median(cell[r]) for r in rules]
            cell["ratio"] = round(medians[0] / medians[1], 4)
            out["tasks"][task] = cell
            log(f"cost {task}: " + ", ".join(f"{r} {1e6 * m:.1f} us/step" for r, m in zip(rules, medians))
                + f", ratio {cell['ratio']:.2f}")
    return out
