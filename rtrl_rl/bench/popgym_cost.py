"""Wall time per environment step of two or more rules, measured side by side in one process.

The grid's wall times come from runs that may have shared the machine with different loads,
so they cannot settle "cheaper per step". This measurement can: in this one process, short
runs of each rule on a task alternate (A B A B ...), so all see the same machine, and the
median seconds per environment step of each rule (acting and learning, the whole ``rtrl-rl
train`` loop; no evaluation, no TensorBoard) are compared, the first rule against the second
as a ratio.
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


def seconds_per_step(overrides: list[str], work_dir: Path, config: str | None = None) -> float:
    """Train one short run with ``overrides`` (over the ready ``config``, where given) in this
    process; its wall seconds per environment step."""
    from rtrl_rl.config import load_config
    from rtrl_rl.config import resolve_config_path
    from rtrl_rl.runtime import train_run

    path = resolve_config_path(config) if config else None
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        summary = train_run(load_config(path, [*overrides, f"run_dir={work_dir}"]))
    return 1.0 / summary["sps"]


def by_task(specs: list[dict]) -> dict[str, dict[str, dict]]:
    """A grid's specs as :func:`measure` takes them: task -> rule -> spec."""
    runs: dict = {}
    for s in specs:
        runs.setdefault(s["task"], {})[s["rule"]] = s
    return runs


def measure(runs: dict[str, dict[str, dict]], steps: int, rounds: int = COST_ROUNDS, log=print) -> dict:
    """{"steps", "rounds", "rules", "tasks": {task: {rule: [s/step per round], "ratio": median A / median B}}}.

    ``runs``: task -> rule -> the spec of a short run of ``steps`` (its ``overrides`` and, where
    it has one, its ready ``config``); two rules or more per task, the first measured against
    the second. Rounds alternate the rules, so a change of load hits all."""
    rules = list(next(iter(runs.values())))
    out: dict = {"steps": steps, "rounds": rounds, "rules": rules, "tasks": {}}
    with tempfile.TemporaryDirectory(prefix="popgym-cost-") as tmp:
        for task, by_rule in runs.items():
            cell: dict = {r: [] for r in rules}
            for k in range(rounds):
                for rule in rules:
                    run = by_rule[rule]
                    cell[rule].append(round(seconds_per_step(run["overrides"], Path(tmp) / f"{task}-{rule}-{k}",
                                                             run.get("config")), 9))
            medians = [statistics.median(cell[r]) for r in rules]
            cell["ratio"] = round(medians[0] / medians[1], 4)
            out["tasks"][task] = cell
            log(f"cost {task}: " + ", ".join(f"{r} {1e6 * m:.1f} us/step" for r, m in zip(rules, medians))
                + f", ratio {cell['ratio']:.2f}")
    return out
