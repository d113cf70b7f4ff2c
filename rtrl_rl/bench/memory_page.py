"""``docs/results.md`` and its charts, from ``memory.json`` alone.

The finding first (success against L, and the expected shape checked claim by claim),
then each task's tables, the costs, what is not measured, and how to reproduce it.
"""

from __future__ import annotations

import os
import statistics
from collections import defaultdict
from pathlib import Path

from rtrl_rl.bench import charts, memory_costs
from rtrl_rl.bench.page import duration, estimate, estimated, fmt, machine_line, mean_std, reproduce, spread, table, write

#: a cell is "solved" at or above this mean greedy success, "at chance" within the margin
SOLVED = 0.9
CHANCE_MARGIN = 0.1
STYLE = {"rtrl-elstm": ("tab:blue", "o"), "rtrl-mingru": ("tab:cyan", "s"), "tbptt-elstm": ("tab:red", "v"),
         "tbptt-lstm": ("tab:orange", "^"), "feedforward": ("tab:gray", "x")}

#: the expected shape, clause by clause: (claim, rules, lengths beyond T only, wanted class)
CLAIMS = [
    ("RTRL keeps solving beyond L = T", ("rtrl-elstm", "rtrl-mingru"), True, "solved"),
    ("TBPTT collapses towards chance once L > T", ("tbptt-elstm", "tbptt-lstm"), True, "chance"),
    ("feed-forward stays at chance", ("feedforward",), False, "chance"),
]


def frames_to_solve(evaluations: list[dict]) -> int | None:
    """Frames (env steps) of the first evaluation at or above :data:`SOLVED`; None if never."""
    return next((e["step"] for e in evaluations if (e.get("success_rate") or 0.0) >= SOLVED), None)


def aggregate(runs: list[dict], tasks: list[str], rules: list[str]) -> dict:
    """task -> rule -> L -> the final success over seeds and the mean learning curve.

    Tasks and rules in the order given (the grid's), lengths in increasing order; L as a
    string key, as JSON stores it."""
    groups: dict = defaultdict(list)
    for r in runs:
        if "error" not in r:
            groups[(r["task"], r["rule"], str(r["length"]))].append(r)
    final: dict = {}
    for (task, rule, L), group in sorted(groups.items(), key=lambda kv: (
            tasks.index(kv[0][0]), rules.index(kv[0][1]), int(kv[0][2]))):
        group.sort(key=lambda r: r["seed"])
        cell = spread([float(r["success_rate"]) for r in group])
        cell.update(n=len(group), seeds=[r["seed"] for r in group], frames=group[0]["steps"],
                    frames_to_solve=[frames_to_solve(r["evaluations"]) for r in group],
                    peak=statistics.fmean(max((e.get("success_rate") or 0.0) for e in r["evaluations"]) for r in group),
                    wall_s=statistics.fmean(r["wall_s"] for r in group), sps=statistics.fmean(r["sps"] for r in group),
                    curve=_mean_curve([r["evaluations"] for r in group]))
        final.setdefault(task, {}).setdefault(rule, {})[L] = cell
    return final


def _mean_curve(evaluation_lists: list[list[dict]]) -> dict:
    """Pointwise mean/min/max over seeds, truncated to the shortest seed's curve."""
    n = min(len(e) for e in evaluation_lists)
    rows = [[(e[i].get("success_rate") or 0.0) for e in evaluation_lists] for i in range(n)]
    return {"step": [evaluation_lists[0][i]["step"] for i in range(n)],
            "mean": [statistics.fmean(r) for r in rows], "min": [min(r) for r in rows], "max": [max(r) for r in rows]}


def throughput(final: dict) -> dict:
    """task -> rule -> mean env steps/s over the task's lengths."""
    return {task: {rule: statistics.fmean(c["sps"] for c in cells.values()) for rule, cells in rules.items()}
            for task, rules in final.items()}


def classify(mean: float, chance: float) -> str:
    """``solved``, ``chance`` or ``partial`` for one cell's mean success."""
    if mean >= SOLVED:
        return "solved"
    return "chance" if mean <= chance + CHANCE_MARGIN else "partial"


def check_claims(final: dict, chance: float, segment: int) -> list[dict]:
    """For one task: each claim's verdict and the cells that break it."""
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


def success_vs_length(data: dict, final: dict, path: Path) -> Path:
    """One panel per task: final greedy success (mean, std bars) against L, a line per rule."""
    plt, g = charts.pyplot(), data["grid"]
    tasks = list(final)
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for rule, cells in final[task].items():
            lengths = sorted(cells, key=int)
            color, marker = STYLE.get(rule, ("black", "."))
            ax.errorbar([int(L) for L in lengths], [cells[L]["mean"] for L in lengths],
                        yerr=[cells[L]["std"] or 0.0 for L in lengths], color=color, marker=marker,
                        capsize=3, label=g["rules"][rule]["label"])
        _chance_and_segment(ax, g["tasks"][task]["chance"], g["segment_length"])
        ax.set_xscale("log", base=2)
        ax.set_xticks([int(L) for L in g["cells"][task]["lengths"]])
        import matplotlib.ticker as ticker

        ax.xaxis.set_major_formatter(ticker.ScalarFormatter())
        ax.xaxis.set_minor_locator(ticker.NullLocator())
        ax.set_title(task, fontsize=10)
        ax.set_xlabel("delay / corridor length L (steps)")
        ax.set_ylim(-0.02, 1.02)
    axes[0][0].set_ylabel("final greedy success")
    return charts.save_with_legend(fig, path, axes[0])


def learning_curves(data: dict, final: dict, task: str, path: Path) -> Path:
    """One panel per L: greedy success against frames, mean over seeds, shaded min-max."""
    plt, g = charts.pyplot(), data["grid"]
    lengths = sorted({L for cells in final[task].values() for L in cells}, key=int)
    fig, axes = plt.subplots(1, len(lengths), figsize=(3.4 * len(lengths), 3.0), squeeze=False, sharey=True)
    for ax, L in zip(axes[0], lengths):
        for rule, cells in final[task].items():
            if L not in cells:
                continue
            c = cells[L]["curve"]
            frames = [s / 1e6 for s in c["step"]]
            color, _ = STYLE.get(rule, ("black", "."))
            ax.plot(frames, c["mean"], color=color, label=g["rules"][rule]["label"])
            ax.fill_between(frames, c["min"], c["max"], color=color, alpha=0.15, lw=0)
        _chance_and_segment(ax, g["tasks"][task]["chance"], None)
        ax.set_title(f"{task}, L = {L}", fontsize=10)
        ax.set_xlabel("frames (millions)")
        ax.set_ylim(-0.02, 1.02)
    axes[0][0].set_ylabel("greedy success")
    return charts.save_with_legend(fig, path, axes[0])


def _chance_and_segment(ax, chance: float, segment: int | None) -> None:
    ax.axhline(chance, color="black", lw=0.8, ls="--", label="chance")
    if segment is not None:
        ax.axvline(segment, color="black", lw=0.8, ls=":", label="L = T")


def write_page(data: dict, json_path: Path, md_path: Path) -> list[Path]:
    """Draw the charts and write the page; returns the files."""
    g = data["grid"]
    final = aggregate(data["runs"], list(g["cells"]), list(g["rules"]))
    out = json_path.parent
    pngs = []
    if final:
        pngs.append(success_vs_length(data, final, out / "success_vs_length.png"))
        pngs += [learning_curves(data, final, task, out / f"curves_{task}.png") for task in final]
    links = {p.stem: os.path.relpath(p, md_path.parent) for p in pngs}
    lines = [*_lead(data, links), *_targets(data, final), *_grid(data), *_tasks(data, final, links),
             *memory_costs.section(data, throughput(final)), *_missing(data), *_reproduce(data, json_path, md_path)]
    return [write(md_path, lines), *pngs]


def _lead(data: dict, links: dict[str, str]) -> list[str]:
    T = data["grid"]["segment_length"]
    lines = ["# Memory tasks: RTRL against truncated BPTT and feed-forward", "",
             f"Which learning rules carry a cue across more steps than a segment of T = {T}? Every rule trains "
             "the same agent on the same frame budget; the chart shows the final greedy success against the "
             "memory length L (mean and std over seeds).", ""]
    if "success_vs_length" in links:
        lines += [f"![final greedy success against L]({links['success_vs_length']})", ""]
    return lines


def _targets(data: dict, final: dict) -> list[str]:
    g = data["grid"]
    lines = ["## The expected shape, checked", "",
             f"A cell counts as solved at a mean final success ≥ {fmt(SOLVED)}, as at chance within "
             f"{fmt(CHANCE_MARGIN)} of the chance level. The verdicts are computed from the tables below; the "
             "grid's budget and seeds bound what they can say.", ""]
    verdicts = {task: check_claims(cells, g["tasks"][task]["chance"], g["segment_length"]) for task, cells in final.items()}
    lines += table(["task", *(c[0] for c in CLAIMS)],
                   [[task, *(f"**{c['verdict']}**" if c["verdict"] == "refuted" else c["verdict"] for c in claims)]
                    for task, claims in verdicts.items()])
    for task, claims in verdicts.items():
        chance = g["tasks"][task]["chance"]
        against = [f"{c['claim']}: " + "; ".join(
            f"{g['rules'][a['rule']]['label']} at L = {a['length']}: final {fmt(a['mean'])} "
            f"({classify(a['mean'], chance)}), best evaluation {fmt(a['peak'])}" for a in c["against"])
            for c in claims if c["against"]]
        if against:
            lines += [f"Against them on **{task}**:", "", *(f"- {a}" for a in against), ""]
    if "recall-blank" in final:
        lines += ["On recall-blank the TBPTT clause is expected to fail given enough frames: without distractors "
                  "truncated BPTT can still learn, only more slowly (below).", ""]
    return lines + _separation(data, final)


def _separation(data: dict, final: dict) -> list[str]:
    """Blank delays against distractors for truncated BPTT, at the lengths both tasks ran."""
    T = data["grid"]["segment_length"]
    blank, noisy = final.get("recall-blank", {}), final.get("recall-distractors", {})
    parts = []
    for rule in ("tbptt-elstm", "tbptt-lstm", "rtrl-elstm"):
        common = sorted(set(blank.get(rule, {})) & set(noisy.get(rule, {})), key=int)
        for L in (L for L in common if int(L) > T):
            parts.append(f"{data['grid']['rules'][rule]['label']} at L = {L}: blank {fmt(blank[rule][L]['mean'])}, "
                         f"distractors {fmt(noisy[rule][L]['mean'])}")
    if not parts:
        return []
    return ["**Blank delays against distractors** (final greedy success). A likely explanation, not measured "
            "here: with blank delays a high forget bias keeps a passive trace of the cue and the critic's "
            "bootstrapped values carry it across segments, so truncated BPTT can still learn; random symbols during "
            "the delay overwrite a passive trace, leaving only the gradient through the whole delay, which TBPTT "
            "cuts at the segment boundary: " + "; ".join(parts) + ".", ""]


def _grid(data: dict) -> list[str]:
    g, h = data["grid"], data["grid"]["hyperparameters"]
    lines = [
        "## The grid", "",
        f"Grid `{g['name']}`: segment length T = {g['segment_length']} for every run; each run trains "
        f"for the same {g['total_steps']:,} frames (env steps summed over streams, no early stop), "
        f"seeds {g['seeds']}; greedy evaluation on {g['eval_episodes']} fresh episodes every "
        f"{g['eval_interval_steps']:,} frames and at the end (the learning curves). Final success is the "
        "last greedy evaluation, mean ± sample std over seeds (no ± with one seed).", "",
        f"Shared settings: {h['num_envs']} streams, core width {h['hidden_size']}, MLP encoder "
        f"{h['encoder_size']}, forget bias {h['forget_bias']}, encoder gradient `{h['encoder_grad']}`, "
        f"{h['optimizer']} lr {h['lr']} ({'decayed linearly to zero' if h.get('lr_decay') else 'constant'}), "
        f"γ {h['gamma']}, entropy {h['entropy_cost']}, baseline {h['baseline_cost']}, loss reduction "
        f"`{h['loss_reduction']}`, grad-norm clip {h['max_grad_norm']}.", "",
        "Rules: " + "; ".join(f"{r['label']} (`{' '.join(r['overrides'])}`)" for r in g["rules"].values()) + ".",
        ("One run, for example: `" + data["runs"][0]["command"] + "`") if data["runs"] else "", "",
    ]
    lines += [_wall_time(data), ""]
    if g["extra_overrides"]:
        lines += [f"Extra overrides of every run: `{' '.join(g['extra_overrides'])}`.", ""]
    else:
        lines += ["Every task uses these same settings (nothing tuned per task or rule).", ""]
    return lines


def _wall_time(data: dict) -> str:
    """The invocations' wall time: in all, for the training runs, for the cost benchmarks."""
    history = data["meta"]["history"]
    total = sum(h.get("wall_s", 0.0) for h in history)
    bench = sum(h.get("bench_wall_s", 0.0) for h in history)
    runs = sum(h.get("grid_wall_s", h.get("wall_s", 0.0) - h.get("bench_wall_s", 0.0)) for h in history)
    jobs = history[0]["jobs"]
    return (f"Wall time: {fmt(total, 0)} s in all ({fmt(runs, 0)} s for the {len(data['runs'])} training "
            f"runs on {jobs} worker processes of one thread each, {fmt(bench, 0)} s for the cost benchmarks).")


def _tasks(data: dict, final: dict, links: dict[str, str]) -> list[str]:
    g, lines = data["grid"], []
    for task, rules in final.items():
        t = g["tasks"][task]
        lengths = sorted({L for cells in rules.values() for L in cells}, key=int)
        head = ["rule", *(f"L = {L}" for L in lengths)]

        def rows(show) -> list[list[str]]:
            return [[g["rules"][rule]["label"], *(show(cells[L]) if L in cells else "" for L in lengths)]
                    for rule, cells in rules.items()]
        lines += [f"### {task}", "", f"`{t['env_id']}` with options {t['options']}: {t['what']}. "
                  f"L is the `{t['length_option']}` option. Chance success: {fmt(t['chance'])}.", "",
                  "Final greedy success:", "", *table(head, rows(lambda c: mean_std(c["mean"], c["std"]))),
                  "Best greedy evaluation during training (a final value below it means the policy got "
                  "worse again before the budget ended):", "", *table(head, rows(lambda c: fmt(c["peak"]))),
                  f"Frames (millions) to the first greedy evaluation ≥ {fmt(SOLVED)}, per seed "
                  "(– never within the budget):", "",
                  *table(head, rows(lambda c: ", ".join(fmt(s / 1e6) if s is not None else "–"
                                                        for s in c["frames_to_solve"]))),
                  "Wall time per run (s) and training throughput (env steps/s), mean over seeds:", "",
                  *table(head, rows(lambda c: f"{fmt(c['wall_s'], 0)} s, {c['sps']:,.0f}/s"))]
        if f"curves_{task}" in links:
            lines += [f"![learning curves, {task}]({links[f'curves_{task}']})", ""]
    failed = [r for r in data["runs"] if "error" in r]
    if failed:
        lines += ["### Failed runs", "", *(f"- `{r['command']}`: {r['error'].strip().splitlines()[-1]}"
                                           for r in failed), ""]
    return lines


def _missing(data: dict) -> list[str]:
    name = data["grid"]["name"]
    full = [] if name == "full" else [f"- **The full grid has not been run**: this page shows the `{name}` grid only "
                                      "(Reproduce says what the full grid takes)."]
    return ["## Not measured here", "", *full,
            "- **Atari (Pong, Breakout) and ProcGen (coinrun, starpilot)** are not part of this experiment: their "
            "short-budget runs have their own page, [results_suites.md](results_suites.md).", ""]


def _reproduce(data: dict, json_path: Path, md_path: Path) -> list[str]:
    """The full grid (its measured time, or an estimate), the quick grid's estimate, the page."""
    meta, plans = data["meta"], data["grid"]["plans"]
    jobs = meta["history"][0]["jobs"]

    def took(name: str) -> str:
        measured = f"{duration(sum(h.get('wall_s', 0.0) for h in meta['history']))} on {jobs} cores"
        if data["grid"]["name"] == name and len(data["runs"]) == plans[name]["runs"]:
            return f"{measured}, as measured here"
        if data["grid"]["name"] == name and estimate(plans[name], data["runs"], jobs) is None:
            return (f"the {len(data['runs'])} of its runs on this page took {measured}; the rules without a run here "
                    "are not measured")
        return estimated(plans[name], data["runs"], jobs)
    commands = [("rtrl-rl bench memory", f"the full grid ({plans['full']['runs']} runs) and the cost benchmarks: "
                 + took("full")),
                ("rtrl-rl bench memory --quick --out quick/results", f"the quick grid ({plans['quick']['runs']} runs, "
                 "one seed) into a folder of its own: " + took("quick")),
                ("rtrl-rl bench memory --report-only", "this page and its charts from the JSON, in seconds")]
    rel = os.path.relpath(json_path, md_path.parent)
    return [*reproduce([rel], commands), f"Machine: {machine_line(meta)} The machine was shared with other work, "
            "so wall times are upper bounds.", ""]
