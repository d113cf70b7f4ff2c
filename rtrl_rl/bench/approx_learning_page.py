"""The "Learning with them" part of ``docs/approximations.md``, from the results JSON alone.

:func:`section` (the full grid) and :func:`longer_section` (the long grid) are pure
functions of the JSON ``rtrl-rl bench approx-learning`` writes; the verdict words are
computed from the numbers, and :func:`summary` is the finding the page leads with.
"""

from __future__ import annotations

import statistics

from rtrl_rl.bench.memory_page import classify
from rtrl_rl.bench.page import machines_line, mean_std, spread, table

HEADING = "## Learning with them"
#: POPGym returns lie in [-1, 1]; a rule "learns" when its mean MMER beats feed-forward's by this much
#: and by more than the two spreads together
POPGYM_MARGIN = 0.05
#: the rule the approximations are measured against, exact RTRL of their LSTM, and the approximations
REFERENCE = "rtrl-elstm"
EXACT = "lstm-rtrl"
APPROXIMATIONS = ("lstm-snap1", "lstm-uoro", "lstm-kfrtrl")
WORDS = {"solved": "solves", "partial": "learns (partly)", "chance": "does not learn at this budget"}


def finished(run: dict) -> bool:
    """A run that trained its whole budget (not failed, not interrupted by a signal)."""
    return "error" not in run and run.get("stopped", "budget") == "budget"


def cells(data: dict) -> dict:
    """task -> rule -> figures over the finished seeds (mean, std, values; wall and steps/s)."""
    out: dict = {}
    for run in data["runs"]:
        if finished(run):
            out.setdefault(run["task"], {}).setdefault(run["rule"], []).append(run)
    table: dict = {}
    for task, by_rule in out.items():
        for rule, runs in by_rule.items():
            runs.sort(key=lambda r: r["seed"])
            keys = ("success_rate",) if runs[0]["family"] == "memory" else ("mmer", "final_return")
            cell = {"seeds": [r["seed"] for r in runs], "wall_s": statistics.fmean(r["wall_s"] for r in runs),
                    "sps": statistics.fmean(r["sps"] for r in runs)}
            for key in keys:
                cell[key] = spread([r[key] for r in runs if r.get(key) is not None])
            table.setdefault(task, {})[rule] = cell
    return table


def verdict(data: dict, table: dict, task: str, rule: str) -> str | None:
    """The verdict word of one cell; None for a missing cell or a reference rule."""
    cell = table.get(task, {}).get(rule)
    if cell is None or rule == "feedforward":
        return None
    if task in data["grid"]["memory_tasks"]:
        return WORDS[classify(cell["success_rate"]["mean"], data["grid"]["memory_tasks"][task]["chance"])]
    ff = table[task].get("feedforward")
    if ff is None or ff["mmer"]["mean"] is None or cell["mmer"]["mean"] is None:
        return None
    gap = cell["mmer"]["mean"] - ff["mmer"]["mean"]
    spread = (cell["mmer"]["std"] or 0.0) + (ff["mmer"]["std"] or 0.0)
    return "learns" if gap > max(POPGYM_MARGIN, spread) else "does not learn at this budget"


def _short(word: str) -> str:
    """The verdict as a table cell says it (the table's caption says "at this budget")."""
    return word.removesuffix(" at this budget")


def _seeds_note(cell: dict, seeds: list[int]) -> str:
    return "" if len(cell["seeds"]) == len(seeds) else f" ({len(cell['seeds'])} of {len(seeds)} seeds)"


def _label(data: dict, rule: str) -> str:
    return data["grid"]["rules"][rule]["label"]


def _setup(data: dict) -> list[str]:
    g, meta = data["grid"], data["meta"]
    m, v = meta["machine"], meta["versions"]
    runs_done = sum(finished(r) for r in data["runs"])
    one_window = ": here one window, the run's mean training return" if g["popgym_steps"] <= g["window_steps"] else ""
    wall_min = sum(r.get("process_wall_s", 0.0) for r in data["runs"]) / 60
    expected = len(g["seeds"]) * (len(g["memory_tasks"]) * (len(g["rules"]) - len(g["popgym_only"]))
                                  + len(g["popgym_tasks"]) * len(g["rules"]))
    memory = ", ".join(f"`{t}` (L = {c['length']}, chance {c['chance']:.2f}: {c['what']})"
                       for t, c in g["memory_tasks"].items())
    popgym = ", ".join(f"`popgym:{t}` ({c['why']})" for t, c in g["popgym_tasks"].items())
    status = (f"All {expected} runs finished." if runs_done == expected else
              f"**{runs_done} of {expected} runs finished**; the others were not run (cells below say how many "
              "seeds they have).")
    machines = machines_line([r for r in data["runs"] if finished(r)], lambda r: _label(data, r["rule"]))
    mixed = (f" The grid was resumed on another CPU model, so its runs ran on two machines: {machines}; wall times "
             "and steps/s compare within one machine only." if machines else "")
    jobs = " then ".join(str(h["jobs"]) for h in meta["history"])
    return [
        (f"Measured with Python {v['python']}, torch {v['torch']}" + (f", commit {v['git_commit']}" if v.get("git_commit")
                                                                       else "")
         + f"; {m['cpu']}, {m['nproc']} cores shared with other jobs (load average {m['load_start']} at the start, "
         f"{m.get('load_end', '?')} at the end), {jobs} training process(es) at a time over "
         f"{len(meta['history'])} invocation(s), one thread each, {wall_min:.0f} min of wall time in all. "
         f"{status}{mixed}"),
        "",
        (f"Every run is an `rtrl-rl train` with segments of T = {g['segment_length']}, seeds {g['seeds']}, the "
         f"agent's defaults otherwise. Memory tasks: {memory}; {g['memory_steps']:,} steps per run, metric: greedy "
         f"success over {g['eval_episodes']} episodes at the end. POPGym: {popgym}; {g['popgym_steps']:,} steps per "
         f"run, metric: MMER (the best mean training return over windows of {g['window_steps']:,} steps{one_window}) "
         f"and the final greedy return over {g['eval_episodes']} episodes. These budgets are small (the whole grid "
         "fits about an hour of a shared 2-core machine): \"does not learn\" means at this budget."),
        "",
        (f"Every LSTM rule trains the same dense LSTM, n = {g['lstm_n']} units on an encoder of width "
         f"{g['lstm_encoder']}, so the rules differ only in their gradient. Exact RTRL sets that size: it keeps "
         "n x 4n(n + d + 1) influence entries per stream (d the encoder width) and its step costs O(n⁴) (the cost "
         "table above; the steps/s below), so a larger LSTM would leave no budget for the other rules. The RTRL "
         "eLSTM is the library's default agent (n = 64, encoder 64), the reference the approximations are measured "
         "against. On POPGym, feed-forward (no memory) is the baseline a rule must beat."),
        "",
        (f"Verdicts. Memory tasks: **solves** at mean greedy success >= 0.9, **does not learn** within 0.1 of "
         f"chance, **learns (partly)** between. POPGym: **learns** when the mean MMER beats feed-forward's by more "
         f"than {POPGYM_MARGIN} and by more than the two standard deviations together."),
    ]


def summary(data: dict, table: dict) -> list[str]:
    """One plain line per task: which rules learn there, which do not."""
    g, lines = data["grid"], []
    for task in [*g["memory_tasks"], *g["popgym_tasks"]]:
        words: dict[str, list[str]] = {}
        for rule in g["rules"]:
            word = verdict(data, table, task, rule)
            if word is not None:
                words.setdefault(word, []).append(_label(data, rule))
        name = f"`{task}`" if task in g["memory_tasks"] else f"`popgym:{task}`"
        parts = [f"{word}: {', '.join(rules)}" for word, rules in words.items()]
        caveat = ""
        if _fails(verdict(data, table, task, REFERENCE)):
            caveat += (" The reference, the RTRL eLSTM, does not learn here either: this budget is too small to "
                       "tell the rules apart on this task.")
        if _fails(verdict(data, table, task, EXACT)):
            caveat += (" Exact RTRL of the same LSTM does not learn it either, so a failure of the approximations "
                       "here is not theirs alone.")
        lines.append(f"- **{name}**: " + ("; ".join(parts) if parts else "no finished runs") + "." + caveat)
    learnt = [t for t in [*g["memory_tasks"], *g["popgym_tasks"]]
              if any(not _fails(verdict(data, table, t, r)) and verdict(data, table, t, r) for r in APPROXIMATIONS)]
    exact = [t for t in [*g["memory_tasks"], *g["popgym_tasks"]]
             if verdict(data, table, t, EXACT) and not _fails(verdict(data, table, t, EXACT))]
    if learnt:
        overall = f"Some approximation learns {len(learnt)} of the tasks: {', '.join(learnt)}."
    else:
        overall = ("**At this budget no approximation (SnAp-1, UORO, KF-RTRL) learns any task**, "
                   + (f"while exact RTRL of the same LSTM learns {', '.join(exact)}." if exact else
                      "and neither does exact RTRL of the same LSTM, so this grid does not yet tell the approximations "
                      "apart from each other or from exact RTRL: that needs a larger budget."
                      if any(EXACT in by_rule for by_rule in table.values()) else "and exact RTRL was not run."))
    return [overall, "", *lines]


def _fails(word: str | None) -> bool:
    return word is not None and word.startswith("does not")


def _memory_table(data: dict, cells_: dict) -> list[str]:
    g = data["grid"]
    tasks = list(g["memory_tasks"])

    def shown(task: str, rule: str) -> str:
        cell = cells_.get(task, {}).get(rule)
        if cell is None:
            return "not run"
        return (f"{mean_std(cell['success_rate']['mean'], cell['success_rate']['std'])} "
                f"({_short(verdict(data, cells_, task, rule))}){_seeds_note(cell, g['seeds'])}")
    return table(["rule", *(f"{t} (L = {g['memory_tasks'][t]['length']})" for t in tasks)],
                 [[_label(data, rule), *(shown(t, rule) for t in tasks)]
                  for rule in g["rules"] if rule not in g["popgym_only"]])


def _popgym_table(data: dict, cells_: dict) -> list[str]:
    g = data["grid"]
    tasks = list(g["popgym_tasks"])

    def shown(task: str, rule: str) -> list[str]:
        cell = cells_.get(task, {}).get(rule)
        if cell is None:
            return ["not run", "not run"]
        word = verdict(data, cells_, task, rule)
        return [mean_std(cell["mmer"]["mean"], cell["mmer"]["std"]) + (f" ({_short(word)})" if word else "")
                + _seeds_note(cell, g["seeds"]), mean_std(cell["final_return"]["mean"], cell["final_return"]["std"])]
    return table(["rule", *(f"{t} {what}" for t in tasks for what in ("MMER", "final return"))],
                 [[_label(data, rule), *(c for t in tasks for c in shown(t, rule))] for rule in g["rules"]])


def _cost_table(data: dict) -> list[str]:
    """Per rule: runs, total wall time, mean steps/s on memory and on POPGym tasks."""
    rows = []
    for rule in data["grid"]["rules"]:
        runs = [r for r in data["runs"] if r["rule"] == rule and finished(r)]
        if runs:
            sps = [[r["sps"] for r in runs if r["family"] == fam] for fam in ("memory", "popgym")]
            rows.append([_label(data, rule), str(len(runs)), f"{sum(r['wall_s'] for r in runs) / 60:.1f}",
                         *(f"{statistics.fmean(v):,.0f}" if v else "–" for v in sps)])
    return table(["rule", "runs", "wall time (min, all runs)", "steps/s, memory tasks", "steps/s, POPGym"], rows)


def section(data: dict) -> list[str]:
    """The full grid's part, from its results JSON alone (its :func:`summary` leads the page)."""
    table = cells(data)
    errors = [r for r in data["runs"] if "error" in r]
    lines = [HEADING, "", ("Gradient quality is one question; whether an agent trained with the estimate learns "
             "is another. Here the dense LSTM is trained by each rule on memory tasks whose dependency spans more "
             "than a segment, and on two POPGym tasks, beside the RTRL eLSTM."), "", *_setup(data), "",
             "### Memory tasks: greedy success at the end (mean ± std over seeds; verdicts at this budget)", "",
             *_memory_table(data, table),
             "### POPGym: MMER and final greedy return (mean ± std over seeds; verdicts at this budget)", "",
             *_popgym_table(data, table), "### Cost (wall time on the shared machine above)", "",
             ("Steps/s are training throughput on a machine shared with other jobs: comparable between rules of "
              "this grid only roughly, not a benchmark of the rules' speed (the cost table above is)."), "",
             *_cost_table(data)]
    if errors:
        lines += [f"{len(errors)} runs failed: " + ", ".join(f"{r['task']} {r['rule']} seed {r['seed']}"
                                                             for r in errors), ""]
    cut = [r for r in data["runs"] if "error" not in r and not finished(r)]
    if cut:
        lines += [f"{len(cut)} runs were interrupted before their budget and are not counted: "
                  + ", ".join(f"{r['task']} {r['rule']} seed {r['seed']} ({r['steps']:,} steps)" for r in cut), ""]
    return lines


def longer_section(data: dict) -> list[str]:
    """The long grid's subsection (``--grid long``): fewer tasks, a larger budget."""
    g, meta = data["grid"], data["meta"]
    m, v = meta["machine"], meta["versions"]
    table = cells(data)
    tasks = ", ".join(f"`{t}` (L = {c['length']}, chance {c['chance']:.2f})" for t, c in g["memory_tasks"].items())
    expected = len(g["seeds"]) * len(g["memory_tasks"]) * len(g["rules"])
    runs_done = sum(finished(r) for r in data["runs"])
    status = (f"All {expected} runs finished." if runs_done == expected else
              f"**{runs_done} of {expected} runs finished**; the others were not run.")
    wall_min = sum(r.get("process_wall_s", 0.0) for r in data["runs"]) / 60
    jobs = meta["history"][0]["jobs"]
    return [f"### A longer budget: {g['memory_steps']:,} steps", "",
            (f"Measured" + (f" at commit {v['git_commit']}" if v.get("git_commit") else "") + f" on {m['cpu']}, "
             f"{m['nproc']} cores, load average {m['load_start']} at the start, {m.get('load_end', '?')} at the end; "
             f"{jobs} training processes at a time, {wall_min:.0f} min of wall time in all. {status} The same rules "
             f"and network sizes as above on {tasks}, {g['memory_steps']:,} steps per run, seeds {g['seeds']}, greedy "
             f"success over {g['eval_episodes']} episodes at the end."), "",
            *_memory_table(data, table), *_cost_table(data)]
