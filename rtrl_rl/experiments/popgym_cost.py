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

from rtrl_rl.experiments import popgym as pg
from rtrl_rl.experiments.popgym_targets import BEST_RTRL, LONG_TASKS

#: the two rules of the measurement: the best RTRL rule and the strongest BPTT baseline
COST_RULES = (BEST_RTRL, "tbptt-lstm-episode")
COST_STEPS, COST_ROUNDS = 100_000, 3


def seconds_per_step(overrides: list[str], work_dir: Path) -> float:
    """Train one short run with ``overrides`` in this process; its wall seconds per environment step."""
    from rtrl_rl.config import load_config
    from rtrl_rl.trainer import train

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        summary = train(load_config(None, [*overrides, f"run_dir={work_dir}"]))
    return 1.0 / summary["sps"]


def measure(tasks: list[str] | None = None, rules: tuple[str, ...] = COST_RULES, steps: int = COST_STEPS,
            rounds: int = COST_ROUNDS, extra: list[str] | None = None, log=print) -> dict:
    """{"steps", "rounds", "rules", "tasks": {task: {rule: [s/step per round], "ratio": median A / median B}}}.

    ``tasks`` default to the long-dependency tasks (where the episode-long baseline runs).
    Rounds alternate the rules, so a change of load hits both."""
    tasks = list(tasks or LONG_TASKS)
    grid = pg.Grid("cost", tasks, {r: pg.rules()[r] for r in rules}, [0], steps, eval_episodes=0,
                   extra=["log.tensorboard=false", *(extra or [])])
    out: dict = {"steps": steps, "rounds": rounds, "rules": list(rules), "tasks": {}}
    with tempfile.TemporaryDirectory(prefix="popgym-cost-") as tmp:
        for task in tasks:
            cell: dict = {r: [] for r in rules}
            for k in range(rounds):
                for rule in rules:
                    run_dir = Path(tmp) / f"{task}-{rule}-{k}"
                    cell[rule].append(round(seconds_per_step(grid.overrides(task, rule, 0), run_dir), 9))
            medians = [statistics.median(cell[r]) for r in rules]
            cell["ratio"] = round(medians[0] / medians[1], 4)
            out["tasks"][task] = cell
            log(f"cost {task}: " + ", ".join(f"{r} {1e6 * m:.1f} us/step" for r, m in zip(rules, medians))
                + f", ratio {cell['ratio']:.2f}")
    return out


def cost_section(cost: dict | None, labels: dict[str, str]) -> list[str]:
    """The page's table of the side-by-side measurement (nothing when it did not run)."""
    if not cost:
        return []
    a, b = cost["rules"]
    lines = ["## Cost per step, side by side", "",
             f"Measured in one process by `--cost`: {cost['rounds']} alternating rounds of {cost['steps']:,} "
             "environment steps per rule and task (the whole training loop, one torch thread, no evaluation); "
             "median microseconds per environment step.", "",
             f"| task | {labels.get(a, a)} | {labels.get(b, b)} | ratio |", "|---|---|---|---|"]
    for task, cell in cost["tasks"].items():
        lines.append(f"| {task} | {1e6 * statistics.median(cell[a]):.1f} | {1e6 * statistics.median(cell[b]):.1f} "
                     f"| {cell['ratio']:.2f} |")
    return [*lines, ""]
