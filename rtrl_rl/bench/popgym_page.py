"""``docs/results_popgym_3m.md`` (the 3M-step grid) and its charts, from ``popgym.json`` alone.

The finding first (MMER per task of the best RTRL rule, TBPTT LSTM and the peer, and the
targets), then every rule's table, the cost, the levers, the curves, the default task, the
rules, what is missing, and how to reproduce it.
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path

from rtrl_rl.bench.page import (duration, estimated, machine_line, machines_line, mean_std, reproduce, spread,
                                table, write)
from rtrl_rl.bench.popgym_charts import plot_curves, plot_tasks
from rtrl_rl.bench.popgym_targets import BEST_RTRL, targets_section

#: the label of the default-task rule, which trains with ``rtrl-rl train``'s defaults
DEFAULT_RULE = ("rtrl-rl-default", "rtrl-rl train (defaults: RTRL eLSTM)")


def aggregate(runs: list[dict], tasks: list[str], rule_names: list[str]) -> dict:
    """task -> rule -> MMER and final return (mean, std over seeds, values), wall time, sps."""
    out: dict = {}
    for task in tasks:
        for rule in rule_names:
            group = sorted((r for r in runs if r["task"] == task and r["rule"] == rule and "error" not in r),
                           key=lambda r: r["seed"])
            if not group:
                continue
            cell = {"seeds": [r["seed"] for r in group], "steps": group[0]["steps"],
                    "wall_s": statistics.fmean(r["wall_s"] for r in group),
                    "sps": statistics.fmean(r["sps"] for r in group)}
            for key in ("mmer", "final_return"):
                cell[key] = spread([r[key] for r in group if r.get(key) is not None])
            out.setdefault(task, {})[rule] = cell
    return out


def peer_rule(data: dict) -> str:
    return next(r for r, v in data["grid"]["rules"].items() if v.get("peer"))


def labels(data: dict) -> dict[str, str]:
    return {r: v["label"] for r, v in data["grid"]["rules"].items()}


def _cell(cell: dict | None, key: str) -> str:
    return "–" if not cell else mean_std(cell[key]["mean"], cell[key]["std"])


def _ran(agg: dict, rules: list[str]) -> list[str]:
    return [r for r in rules if any(r in cells for cells in agg.values())]


def missing_from_full_grid(data: dict) -> dict[str, int]:
    """rule -> how many of the full grid's runs (the peer's included) the result lacks. A run
    that ended in an error (a divergence) counts as run: the page reports it as failed."""
    full = data["grid"]["plans"]["full"]
    have = {(r["task"], r["rule"], r["seed"]) for r in data["runs"]}
    out = {rule: sum((t, rule, s) not in have for t in full["tasks"] for s in full["seeds"]) for rule in full["rules"]}
    return {rule: n for rule, n in out.items() if n}


def _peer_budget(data: dict, peer: str) -> str:
    """What the peer ran, against the best RTRL rule's wall time per run (it had more time)."""
    settings = data["meta"].get("peer", "not run")
    budgets = {r.get("wall_budget_s") for r in data["runs"] if r["rule"] == peer and r["task"] != "memory:recall"}
    best = [r["wall_s"] for r in data["runs"] if r["rule"] == BEST_RTRL and "error" not in r]
    if len(budgets) != 1 or not next(iter(budgets)) or not best:
        return settings
    budget, mean = next(iter(budgets)), statistics.fmean(best)
    return (f"{settings}; that is {budget / mean:.1f}x the {mean:.0f} s the best RTRL rule took per run on average "
            f"({min(best):.0f}–{max(best):.0f} s): the peer had more wall time, not the same")


def _lead(data: dict, png: str) -> list[str]:
    g = data["grid"]
    return ["# POPGym at 3M steps: the learning rules on POPGym's memory tasks", "",
            f"MMER (POPGym's max-mean episodic return, below) on {len(g['tasks'])} POPGym tasks after "
            f"{g['total_steps']:,} environment steps per run, mean and std over seeds: the best RTRL rule, TBPTT LSTM "
            "with the same segment, and a peer library's recurrent PPO. The paper's protocol (15M steps, beside the "
            "published figures and a replica of POPGym's baseline) is [results_popgym.md](results_popgym.md).", "",
            f"![MMER per task]({png})", ""]


def _results(data: dict, agg: dict, rules: list[str]) -> list[str]:
    names = labels(data)
    coverage = []
    for r in rules:
        cells = [c[r] for c in agg.values() if r in c]
        seeds = sorted({s for c in cells for s in c["seeds"]})
        coverage.append(f"{names[r]} {sum(len(c['seeds']) for c in cells)} runs on {len(cells)} tasks "
                        f"(seeds {', '.join(map(str, seeds))})")
    head = ["task", *(names[r] for r in rules)]
    return ["## Every rule: MMER (final greedy return)", "",
            "What ran: " + "; ".join(coverage) + ". A '–' cell did not run.", "",
            *table(head, [[task, *(f"{_cell(cells.get(r), 'mmer')} ({_cell(cells.get(r), 'final_return')})"
                                   for r in rules)] for task, cells in agg.items()]),
            "Wall time per run (s, mean over seeds) and environment steps per second:", "",
            *table(head, [[task, *(f"{cells[r]['wall_s']:.0f} s, {cells[r]['sps']:,.0f}/s" if r in cells else "–"
                                   for r in rules)] for task, cells in agg.items()])]


def cost_section(cost: dict | None, names: dict[str, str]) -> list[str]:
    """The side-by-side measurement of ``--cost`` (nothing when it did not run)."""
    if not cost:
        return []
    a, b = cost["rules"]
    return ["## Cost per step, side by side", "",
            f"Measured in one process by `--cost`: {cost['rounds']} alternating rounds of {cost['steps']:,} "
            "environment steps per rule and task (the whole training loop, one torch thread, no evaluation); "
            "median microseconds per environment step.", "",
            *table(["task", names.get(a, a), names.get(b, b), "ratio"],
                   [[task, f"{1e6 * statistics.median(c[a]):.1f}", f"{1e6 * statistics.median(c[b]):.1f}",
                     f"{c['ratio']:.2f}"] for task, c in cost["tasks"].items()])]


def _levers(data: dict, agg: dict) -> list[str]:
    """The variants of a rule (``<rule>+<lever>``) each under its rule, on the tasks they ran."""
    levers = _ran(agg, [r for r in data["grid"]["rules"] if "+" in r])
    if not levers:
        return []
    names = labels(data)
    tasks = [t for t, cells in agg.items() if any(r in cells for r in levers)]
    bases = list(dict.fromkeys(r.split("+")[0] for r in levers))
    rows = [[names[rule] if "+" not in rule else "&nbsp;&nbsp;" + names[rule],
             *(f"{_cell(agg[t].get(rule), 'mmer')} ({_cell(agg[t].get(rule), 'final_return')})" for t in tasks)]
            for rule in [r for base in bases for r in (base, *[v for v in levers if v.split("+")[0] == base])]]
    return ["## Levers", "", "Each variant changes one setting of a rule (the row above it, as the grid runs it); "
            "MMER (final greedy return), the same budget. Run one with `--rules NAME --resume`.", "",
            *table(["variant", *tasks], rows)]


def _recall(data: dict) -> list[str]:
    runs = [r for r in data["runs"] if r["task"] == "memory:recall"]
    if not runs:
        return []
    names = labels(data) | dict([DEFAULT_RULE])
    rows = []
    for r in runs:
        if "error" in r:
            rows.append([names[r["rule"]], str(r["seed"]), f"failed: {r['error'].splitlines()[-1]}", "", "", ""])
            continue
        last, ttt = (r.get("evaluations") or [{}])[-1].get("success_rate"), r.get("time_to_target_s")
        rows.append([names[r["rule"]], str(r["seed"]), f"{r['steps']:,}", f"{r['wall_s']:.0f}",
                     "not reached" if ttt is None else f"{ttt:.0f}", "–" if last is None else f"{last:.3f}"])
    return ["## The default task: wall time to 95 % greedy success", "",
            "`memory:recall` with distractors (K = 4, D = 40; chance 25 %). `rtrl-rl train` with its defaults "
            "(stops at 95 %), and the peer with greedy evaluations of 256 episodes every "
            f"{data['grid']['recall']['eval_interval_steps']:,} steps (their time counts), until 95 % or its "
            "step budget.", "",
            *table(["rule", "seed", "steps", "wall (s)", "time to 95 % greedy (s)", "last greedy success"], rows)]


def _rules(data: dict, agg: dict, peer: str) -> list[str]:
    g = data["grid"]
    ran = _ran(agg, list(g["rules"]))
    lines = ["## Rules", "", "Every run: `configs/default.yaml` settings (128 streams, Adam 3e-3, n = 64, V-trace), "
             f"segment T = {g['segment_length']} (the episode-long rule: the task's longest episode), then "
             f"`{' '.join(g['shared'])}` for every rule (POPGym's small per-step rewards; chosen on RepeatFirstEasy "
             "and CountRecallEasy, see the Levers table), then the rule's overrides:", ""]
    for r in (r for r in ran if r != peer):
        v = g["rules"][r]
        segment = ["train.segment_length=<episode length>"] if v.get("segment") == "episode" else []
        lines.append(f"- **{v['label']}**: `{' '.join([*v['overrides'], *segment])}`")
    lines += ["- Episode lengths (the segment of the episode-long rule): "
              + ", ".join(f"{t} {n}" for t, n in g["episodes"].items()) + "."]
    if peer in ran:
        lines.append(f"- **{g['rules'][peer]['label']}**: {data['meta'].get('peer', '')}")
    return lines + [""]


def missing_notes(data: dict, peer: str) -> list[str]:
    """What this result does not hold: its notes, the peer's machines, the full grid's missing runs."""
    notes = list(data.get("not_measured", []))
    peer_runs = [r for r in data["runs"] if r["rule"] == peer and r["task"] != "memory:recall"]
    peer_machines = machines_line(peer_runs)
    if peer_machines:
        steps = {cpu: statistics.fmean(r["steps"] for r in peer_runs if r.get("cpu") == cpu)
                 for cpu in dict.fromkeys(r.get("cpu") for r in peer_runs)}
        notes.append("The peer's runs ran on more than one CPU model (" + peer_machines + "). With the same "
                     "wall-time budget a run on the faster machine trained more steps (mean steps per run: "
                     + ", ".join(f"{cpu} {n:,.0f}" for cpu, n in steps.items()) + "); its wall-time table "
                     "averages over seeds, machines included.")
    missing = missing_from_full_grid(data)
    if missing:
        names = labels(data)
        notes.insert(0, "Runs of the full grid missing from this page: "
                     + ", ".join(f"{names.get(rule, rule)} {n}" for rule, n in missing.items()) + ".")
    failed = [r for r in data["runs"] if "error" in r]
    lines = ["## Not measured here", "", *(f"- {n}" for n in notes), ""] if notes else []
    if failed:
        lines += ["## Failed runs", "", *[f"- {r['task']} {r['rule']} seed {r['seed']}: "
                                          f"`{r['error'].strip().splitlines()[-1]}`" for r in failed], ""]
    return lines


def _reproduce(data: dict, json_path: Path, md_path: Path, peer: str) -> list[str]:
    meta, plans = data["meta"], data["grid"]["plans"]
    jobs = meta["history"][0]["jobs"]
    budgets = {r.get("wall_budget_s") for r in data["runs"] if r["rule"] == peer and r.get("wall_budget_s")}
    peer_flag = f" --peer-wall-s {next(iter(budgets)):g}" if len(budgets) == 1 else ""

    timed = [r for r in data["runs"] if "started_unix" in r and r.get("wall_s") is not None]
    span = (max(r["started_unix"] + r["wall_s"] for r in timed) - min(r["started_unix"] for r in timed)) if timed else 0
    recall = sum(r["wall_s"] for r in data["runs"] if r["task"] == "memory:recall" and "error" not in r)
    commands = [(f"rtrl-rl bench popgym --peer{peer_flag} --recall --cost",
                 f"the full grid ({plans['full']['runs']} runs, the peer's included): {estimated(plans['full'], data['runs'], jobs)}; then the "
                 f"default task ({duration(recall)} here) and the side-by-side cost"),
                ("rtrl-rl bench popgym --quick --out quick/results", f"the quick grid ({plans['quick']['runs']} runs, "
                 "one seed) into a folder of its own: " + estimated(plans["quick"], data["runs"], jobs)),
                ("rtrl-rl bench popgym --report-only", "this page and its charts from the JSON, in seconds")]
    machines = machines_line(data["runs"], lambda r: labels(data).get(r["rule"], r["rule"]))
    return [*reproduce([os.path.relpath(json_path, md_path.parent)], commands),
            f"This page's runs came from {len(meta['history'])} invocations, {duration(span)} from the first run's "
            f"start to the last run's end, {jobs} runs at a time, one torch thread each. Machine: {machine_line(meta)}"
            + (f" The runs ran on more than one CPU model, so compare wall times within one machine only: {machines}."
               if machines else "") + " The machine was shared with other work, so wall times are upper bounds.", ""]


def write_page(data: dict, json_path: Path, md_path: Path) -> list[Path]:
    """Write the charts and the page; return their paths."""
    g, out = data["grid"], json_path.parent
    peer, names = peer_rule(data), labels(data)
    agg = aggregate(data["runs"], g["tasks"], list(g["rules"]))
    main = _ran(agg, [r for r in g["rules"] if "+" not in r])
    lead = [r for r in (BEST_RTRL, "tbptt-lstm", peer) if r in main]
    pngs = [plot_tasks(agg, lead, names, out / "popgym_tasks.png"),
            plot_curves(data, main, names, out / "popgym_steps.png", "steps"),
            plot_curves(data, main, names, out / "popgym_wall.png", "wall")]
    link = {p.stem: os.path.relpath(p, md_path.parent) for p in pngs}
    lines = [*_lead(data, link["popgym_tasks"]),
             *targets_section(agg, names, len(g["tasks"]), _peer_budget(data, peer), peer=peer, cost=data.get("cost")),
             *cost_section(data.get("cost"), names),
             "**Metric.** MMER: the training curve is, per update, the mean return of the episodes that ended in it; "
             f"it is averaged over fixed windows of {g['window_steps']:,} environment steps and MMER is the largest "
             "window mean. In brackets: the final greedy evaluation return (256 fresh episodes). Mean ± std over "
             f"seeds (std only with more than one seed). POPGym returns lie in [-1, 1]. Grid `{g['name']}`: seeds "
             f"{g['seeds']}, {g['total_steps']:,} environment steps per run for every rule (the POPGym paper used "
             "15M).", "",
             *_results(data, agg, main), *_levers(data, agg),
             f"![training return against steps]({link['popgym_steps']})", "",
             f"![training return against wall time]({link['popgym_wall']})", "",
             *_recall(data), *_rules(data, agg, peer), *missing_notes(data, peer),
             *_reproduce(data, json_path, md_path, peer)]
    return [write(md_path, lines), *pngs]
