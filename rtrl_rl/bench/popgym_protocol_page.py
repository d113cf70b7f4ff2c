"""``docs/results_popgym.md`` (the POPGym protocol) and its charts, from ``popgym_protocol.json`` alone.

The chart first (MMER per task: the best RTRL rule, the cpu replica, the published GRU and
best model, TBPTT LSTM, the peer), then the targets, the cells still missing, the cost
per run, and the details: every rule's figures, the metric, the rules, the curves, the
failed runs and how to reproduce the page.
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path

from rtrl_rl.bench import popgym_protocol_targets as targets
from rtrl_rl.bench.page import (duration, estimate, fmt, machine_line, machines_line, mean_std, reproduce, table,
                                write)
from rtrl_rl.bench.popgym_charts import plot_curves, plot_tasks
from rtrl_rl.bench.popgym_page import aggregate
from rtrl_rl.bench.popgym_page import labels as rule_labels
from rtrl_rl.bench.popgym_targets import BEST_RTRL, PEER

#: the chart's bars, in order; the two published ones are not rules of the grid
PUBLISHED_GRU, PUBLISHED_BEST = "published-gru", "published-best"
LEAD = (BEST_RTRL, targets.REPLICA, PUBLISHED_GRU, PUBLISHED_BEST, "tbptt-lstm", PEER)
#: the chart's legend (short: six entries must fit under it)
CHART_LABELS = {BEST_RTRL: "best RTRL", targets.REPLICA: "replica, cpu GRU", PUBLISHED_GRU: "POPGym GRU (published)",
                PUBLISHED_BEST: "best POPGym (published)", "tbptt-lstm": "TBPTT LSTM, T = 10",
                PEER: "SB3 RecurrentPPO"}
#: marks of the published figures' statuses, in the order the statuses first appear
MARKS = ("†", "‡", "§", "¶")


def labels(data: dict) -> dict[str, str]:
    """The 3M page's rule labels, and the two published columns."""
    return rule_labels(data) | {
        PUBLISHED_GRU: "POPGym GRU (published)", PUBLISHED_BEST: "best POPGym model (published)"}


def protocol_tasks(data: dict) -> list[str]:
    """The full grid's tasks (the page lists every one, run or not)."""
    return list(dict.fromkeys([*data["grid"]["plans"]["full"]["tasks"], *data["grid"]["tasks"]]))


def marks(published: dict) -> dict[str, str]:
    """status -> its mark on the page."""
    statuses = list(dict.fromkeys(p["status"] for p in published.values()))
    return {status: MARKS[k % len(MARKS)] * (1 + k // len(MARKS)) for k, status in enumerate(statuses)}


def missing_cells(data: dict) -> dict[str, dict[str, list[int]]]:
    """rule -> task -> the seeds of the full grid (the peer's included) without a finished run."""
    done = targets.finished(data["runs"])
    out: dict = {}
    for name in ("full", "peer"):
        p = data["grid"]["plans"][name]
        for rule in p["rules"]:
            for task in p["tasks"]:
                seeds = [s for s in p["seeds"] if (task, rule, s) not in done]
                if seeds:
                    out.setdefault(rule, {})[task] = seeds
    return out


def expected_cells(data: dict) -> set[tuple]:
    """The (task, rule, seed) cells that "no run non-finite" needs finished."""
    p = data["grid"]["plans"]["full"]
    return {(t, r, s) for t in p["tasks"] for r in p["rules"] if r in data["grid"]["finite_rules"]
            for s in p["seeds"]}


def _seeds(seeds: list[int]) -> str:
    return f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"


def _tasks(tasks: list[str], every: list[str]) -> str:
    """Tasks as a reader takes them in: "every task", "every task but A, B", or the list."""
    if set(tasks) == set(every):
        return "every task"
    if len(tasks) > len(every) / 2:
        return "every task but " + ", ".join(t for t in every if t not in tasks)
    return ", ".join(tasks)


def missing_section(data: dict) -> list[str]:
    """The cells still missing, rule by rule, and the failed runs: the page is true after every part."""
    names, missing, every = labels(data), missing_cells(data), protocol_tasks(data)
    lines = ["## Missing cells", ""]
    if not missing:
        lines += ["None: every cell of the full grid (the peer's included) has a finished run.", ""]
    else:
        total = sum(len(s) for tasks in missing.values() for s in tasks.values())
        lines += [f"{total} cells (task × rule × seed) of the full grid have no finished run yet; a target that "
                  "needs one of them reads \"not measured\". Each part of the grid is a narrowed invocation with "
                  "`--resume` (`--tasks`, `--rules`, `--seeds`).", ""]
        for rule, tasks in missing.items():
            n = sum(len(s) for s in tasks.values())
            groups: dict[tuple, list[str]] = {}
            for task, seeds in tasks.items():
                groups.setdefault(tuple(seeds), []).append(task)
            where = "; ".join(f"{_tasks(ts, every)} ({_seeds(list(seeds))})" for seeds, ts in groups.items())
            lines.append(f"- **{names.get(rule, rule)}** (`{rule}`), {n} cells: {where}")
        lines.append("")
    failed = [r for r in data["runs"] if "error" in r]
    if failed:
        lines += ["Failed runs (counted as missing; `--resume` runs them again):", "",
                  *[f"- {r['task']} {r['rule']} seed {r['seed']}: `{r['error'].strip().splitlines()[-1]}`"
                    for r in failed], ""]
    return lines


def _lead(data: dict, png: str, ran: set[str]) -> list[str]:
    g, names = data["grid"], labels(data)
    absent = [names[r] for r in LEAD if r not in ran]
    return ["# POPGym at the paper's protocol: 15M steps, beside the published baselines and a replica of them", "",
            f"MMER (POPGym's max-mean episodic return, below) on {len(protocol_tasks(data))} POPGym tasks, "
            f"{g['total_steps']:,} environment steps per run, mean over seeds (the line: their standard deviation): "
            "the best RTRL rule, the replica of POPGym's baseline at a CPU's budget, the published GRU and best "
            "model of the POPGym paper, TBPTT LSTM and a peer library's recurrent PPO at equal wall time. A missing "
            "bar is a cell not measured (or a task without a published figure)"
            + (f"; no bar at all yet: {', '.join(absent)}." if absent else "."), "",
            f"![MMER per task]({png})", ""]


def _published(p: dict | None, mark: dict[str, str], key: str) -> str:
    if not p:
        return "–"
    model = f" {p['best_model']}" if key == "best" and p["best_model"] not in ("GRU", "tie") else ""
    return f"{p[key]:.3f}{mark[p['status']]}{model}"


def _mmer(cells: dict, rule: str) -> str:
    cell = cells.get(rule)
    return "–" if not cell else mean_std(cell["mmer"]["mean"], cell["mmer"]["std"])


def targets_section(data: dict, agg: dict, walls: dict) -> list[str]:
    g, names = data["grid"], labels(data)
    published, mark = g["published"], marks(g["published"])
    tasks = protocol_tasks(data)
    rows = targets.targets(agg, walls, published, tasks, data["runs"], expected_cells(data), data.get("cost"))
    per_task = []
    for task in tasks:
        cells, w = agg.get(task, {}), walls.get(task)
        wall = "–" if not w else f"{fmt(w['mmer'])} ({w['wall_s']:.0f} s)"
        per_task.append([task, _mmer(cells, BEST_RTRL), _mmer(cells, targets.REPLICA), wall,
                         _published(published.get(task), mark, "gru"), _published(published.get(task), mark, "best"),
                         _mmer(cells, "tbptt-lstm"), _mmer(cells, PEER), _mmer(cells, "replica-lstm"),
                         _mmer(cells, "replica-faithful")])
    legend = "; ".join(f"{m} {status}" for status, m in mark.items())
    return ["## Targets", "",
            *table(["target", "result", "detail"], [[what, status, detail] for what, status, detail in rows]),
            "A target is met only on measured cells: \"not measured\" where missing cells could still decide it, "
            "\"not met\" where the measured ones already rule it out; \"so far\" while seeds are unfinished, "
            "the means being over the finished ones. A mean is compared with a published figure "
            f"at the {targets.PUBLISHED_DECIMALS} decimals the paper prints (0.99998 counts as 1.000). "
            "MMER means over seeds per task:", "",
            *table(["task", names[BEST_RTRL], names[targets.REPLICA],
                    "replica at the best RTRL rule's wall time (that time)", names[PUBLISHED_GRU],
                    names[PUBLISHED_BEST], names["tbptt-lstm"], names[PEER], names["replica-lstm"],
                    names["replica-faithful"]], per_task),
            f"Published figures: {data['grid']['paper']}; {legend}. Best model: the model named where it is not the "
            "GRU or a tie.", ""]


def cost_section(data: dict) -> list[str]:
    """Wall time per 15M-step run of each rule: side by side (``--cost``), and the grid's own runs."""
    g, names, cost = data["grid"], labels(data), data.get("cost")
    steps = g["total_steps"]
    lines = ["## Cost per run", ""]
    if cost:
        rules, (task, cell), = cost["rules"], next(iter(cost["tasks"].items()))
        base = statistics.median(cell[rules[0]])
        full, jobs = g["plans"]["full"], _jobs(data)
        n_runs = len(full["tasks"]) * len(full["seeds"])
        rows = []
        for r in rules:
            per = statistics.median(cell[r])
            batch, opt = g["rules"][r].get("batch"), g["rules"][r].get("optimizer_steps")
            rows.append([names.get(r, r), f"{batch:,}" if batch else "–", f"{cost['steps'] / batch:g}" if batch else "–",
                         f"{steps / batch * opt:,.0f}" if batch and opt else "–",
                         f"{1e6 * per:,.1f}", f"{per * steps / 3600:.2f} h", f"{per / base:.2f}",
                         duration(per * steps * n_runs / jobs)])
        lines += [f"Measured side by side in one process by `--cost` on {task}: {cost['rounds']} "
                  f"round{'s' if cost['rounds'] > 1 else ''} (the rules in turn within each) of {cost['steps']:,} "
                  "environment steps per rule (the whole training loop, acting and learning, one torch thread, no "
                  "evaluation), median microseconds per step. The time per run is extrapolated from those steps "
                  f"(time per step × {steps:,}), so each rule's measured steps should hold whole updates: the column "
                  f"says how many. Optimiser steps: the gradient steps one run takes (updates × PPO's epochs × "
                  "minibatches; one per update for V-trace). The last column is the full grid's "
                  f"{n_runs} runs of the rule, {jobs} at a time.",
                  "", *table(["rule", "steps per update", "updates measured", "optimiser steps per run", "µs per step",
                              f"per {steps:,}-step run", f"× {names.get(rules[0], rules[0])}",
                              f"{n_runs} runs, {jobs} at a time"], rows)]
    else:
        lines += ["Not measured side by side yet (`--cost`).", ""]
    walls: dict[str, list[float]] = {}
    for r in data["runs"]:
        if "error" not in r:
            walls.setdefault(r["rule"], []).append(r["wall_s"])
    if walls:
        lines += ["Wall time per run of the grid's own runs (mean over tasks and seeds; the runs ran two at a time "
                  "beside other work, so they are upper bounds): " + "; ".join(
                      f"{names.get(r, r)} {duration(statistics.fmean(w))} ({len(w)} runs)" for r, w in walls.items())
                  + ".", ""]
    return lines


def _results(data: dict, agg: dict) -> list[str]:
    names = labels(data)
    rules = [r for r in data["grid"]["rules"] if any(r in cells for cells in agg.values())]
    if not rules:
        return []
    head = ["task", *(names[r] for r in rules)]

    def final(cell: dict | None) -> str:
        return "–" if not cell else mean_std(cell["final_return"]["mean"], cell["final_return"]["std"])

    return ["## Every rule: MMER (final greedy return)", "",
            *table(head, [[t, *(f"{_mmer(cells, r)} ({final(cells.get(r))})" for r in rules)]
                          for t, cells in agg.items()]),
            "Wall time per run (mean over seeds) and environment steps per second:", "",
            *table(head, [[t, *(f"{duration(cells[r]['wall_s'])}, {cells[r]['sps']:,.0f}/s" if r in cells else "–"
                                for r in rules)] for t, cells in agg.items()])]


def _metric(data: dict) -> list[str]:
    g = data["grid"]
    w = g["window_steps"]
    return ["## The metric", "",
            f"**MMER here.** A run's training curve holds one point per update: the mean return of the episodes "
            f"that ended in that update's segment. The curve is cut into windows of {w:,} environment steps "
            f"((k·{w:,}, (k+1)·{w:,}], k = 0, 1, ...; the last one, where a run ends inside it, partial); a "
            "window's mean is the mean of its updates' means, and MMER is the largest window mean over the whole "
            f"run ({g['total_steps']:,} steps). The tables give mean ± std over seeds.", "",
            "**MMER in the POPGym paper** (RLlib): after every training iteration of 65,536 steps, "
            "`episode_reward_mean`, the mean return of the episodes that ended in that iteration (topped up with "
            "earlier ones to at least 100 episodes, which never applies on these tasks: more than 300 end in every "
            "iteration); its running maximum over the iterations up to 15M steps; then the mean over 3 trials. "
            "The two agree where an update is an iteration (the faithful replica: one update, one iteration and "
            "one window of 65,536 steps each). For the other rules a window averages several updates' means "
            "(the best RTRL rule's update is 1,280 steps, the cpu replica's 32,768, the peer's 1,024), each "
            "update counting the same where RLlib counts each episode the same: the two differ only where "
            "episode lengths vary (CartPole, MineSweeper, Battleship).", "",
            "**Equal wall time.** W is the best RTRL rule's mean wall time per run on the task (its finished "
            "runs' training time). The cpu replica's MMER at equal wall time is the MMER, computed as above, of the "
            "part of each of its runs' curves logged within W seconds of that run's start (the opening of its "
            "event file), the last window partial; then the mean over its seeds. The peer runs at equal wall time "
            "by construction: each of its runs trains for the best RTRL rule's mean wall time per run (all tasks) "
            "in the result it joined.", ""]


def _rules(data: dict) -> list[str]:
    g = data["grid"]
    lines = ["## Rules", "",
             f"Every run: `rtrl-rl train` with the rule's settings, {g['total_steps']:,} environment steps, one torch "
             "thread, no early stop, one greedy evaluation (256 episodes) at the end. Rules without a config run "
             f"`configs/default.yaml`'s settings, segment T = {g['segment_length']}, `{' '.join(g['shared'])}` "
             "(the 3M grid's shared setting) and their overrides; a config rule runs its ready config as written "
             "under its overrides (the configs' headers say what each setting matches in POPGym's baseline "
             "and what cannot be matched).", ""]
    for r, v in g["rules"].items():
        if v.get("peer"):
            lines.append(f"- **{v['label']}** (`{r}`): {data['meta'].get('peer', '')}.")
            continue
        where = f"`--config {v['config']}`" + (f" `{' '.join(v['overrides'])}`" if v["overrides"] else "") \
            if v.get("config") else f"`{' '.join(v['overrides'])}`"
        lines.append(f"- **{v['label']}** (`{r}`): {where}; {v['batch']:,} steps per update.")
    quick = g["plans"]["quick"]
    per_run = next(iter(quick["steps"].values())) // (len(quick["tasks"]) * len(quick["seeds"]))
    return lines + ["", f"`--quick` runs {quick['runs']} cells ({', '.join(quick['tasks'])}; "
                        f"{', '.join(quick['rules'])}; {_seeds(quick['seeds'])}) of {per_run:,} steps each into a "
                        "result of its own (`--out DIR`): a check of the plumbing that stays under 20 minutes on "
                        "2 cores.", ""]


def _cost_rows(data: dict) -> list[dict]:
    """The side-by-side measurement as runs (steps, wall_s) for the rules without a run of the grid."""
    cost = data.get("cost")
    if not cost:
        return []
    _, cell = next(iter(cost["tasks"].items()))
    return [{"rule": r, "steps": cost["steps"], "wall_s": statistics.median(cell[r]) * cost["steps"]}
            for r in cost["rules"]]


def _jobs(data: dict) -> int:
    """Runs at a time of the result's first invocation (the page's estimates assume as many)."""
    history = data["meta"].get("history")
    return history[0]["jobs"] if history else 2


def _reproduce(data: dict, json_path: Path, md_path: Path) -> list[str]:
    meta, g = data["meta"], data["grid"]
    jobs = _jobs(data)
    ran = {r["rule"] for r in data["runs"] if "error" not in r}
    runs = [*data["runs"], *(row for row in _cost_rows(data) if row["rule"] not in ran)]
    full = estimate(g["plans"]["full"], runs, jobs)
    grid_time = ("not measured (a rule of it has no run or cost measurement here)" if full is None else
                 f"about {duration(full)} with {jobs} runs at a time, from the time per step measured here (the "
                 "grid's runs, else the side-by-side cost)")
    best = [r["wall_s"] for r in data["runs"] if r["rule"] == BEST_RTRL and "error" not in r]
    peer = g["plans"]["peer"]
    peer_time = (f"{peer['runs']} runs of {duration(statistics.fmean(best))} each: about "
                 f"{duration(peer['runs'] * statistics.fmean(best) / jobs)}" if best else
                 "its budget is not measured yet (no finished best RTRL run)")
    commands = [("rtrl-rl bench popgym-protocol --cost",
                 f"the full grid without the peer ({g['plans']['full']['runs']} runs): {grid_time}; then the "
                 "side-by-side cost (minutes). Narrow it into parts with `--tasks`, `--rules`, `--seeds` and "
                 "`--resume`"),
                (f"rtrl-rl bench popgym-protocol --rules {PEER} --resume",
                 f"the peer at equal wall time, once the best RTRL rule has run: {peer_time}"),
                ("rtrl-rl bench popgym-protocol --report-only", "this page and its charts from the JSON, in seconds")]
    machines = machines_line(data["runs"], lambda r: labels(data).get(r["rule"], r["rule"]))
    return [*reproduce([os.path.relpath(json_path, md_path.parent)], commands),
            f"This page's result came from {len(meta['history'])} invocation"
            f"{'s' if len(meta['history']) != 1 else ''}, runs {jobs} at a time, one torch thread each. Machine: "
            f"{machine_line(meta)}" + (f" The runs ran on more than one CPU model, so compare wall times within one "
                                       f"machine only: {machines}." if machines else "")
            + " The machine was shared with other work, so wall times are upper bounds.", ""]


def write_page(data: dict, json_path: Path, md_path: Path) -> list[Path]:
    """Write the charts and the page; return their paths."""
    g, out = data["grid"], json_path.parent
    tasks, names = protocol_tasks(data), labels(data)
    agg = aggregate(data["runs"], tasks, list(g["rules"]))
    walls = targets.equal_wall(data["runs"], tasks, g["window_steps"])
    chart = {t: {**agg.get(t, {})} for t in tasks}
    for t, p in g["published"].items():
        if t in chart:
            chart[t][PUBLISHED_GRU] = {"mmer": {"mean": p["gru"], "std": None}}
            chart[t][PUBLISHED_BEST] = {"mmer": {"mean": p["best"], "std": None}}
    ran = {r for cells in chart.values() for r in cells}
    pngs = [plot_tasks(chart, list(LEAD), CHART_LABELS, out / "popgym_protocol_tasks.png"),
            plot_curves(data, [r for r in g["rules"] if any(r in c for c in agg.values())], names,
                        out / "popgym_protocol_steps.png", "steps")]
    link = {p.stem: os.path.relpath(p, md_path.parent) for p in pngs}
    lines = [*_lead(data, link["popgym_protocol_tasks"], ran), *targets_section(data, agg, walls),
             *missing_section(data), *cost_section(data), *_results(data, agg), *_metric(data),
             f"![training return against steps]({link['popgym_protocol_steps']})", "",
             *_rules(data), *_reproduce(data, json_path, md_path)]
    return [write(md_path, lines), *pngs]
