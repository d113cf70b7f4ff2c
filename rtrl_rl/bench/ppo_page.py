"""``docs/results_ppo.md`` and its chart, from ``ppo.json`` alone."""

from __future__ import annotations

import os
import statistics
from pathlib import Path

from rtrl_rl.bench import charts
from rtrl_rl.bench.page import duration, estimated, fmt, machine_line, machines_line, reproduce, table, write

COLOURS = ("tab:blue", "tab:red", "tab:grey", "tab:orange", "tab:green", "tab:purple")


def learning_runs(data: dict, rule: str | None = None) -> list[dict]:
    """The finished learning runs (of ``rule``), by seed."""
    runs = [r for r in data["runs"] if "error" not in r and (rule is None or r["rule"] == rule)]
    return sorted(runs, key=lambda r: r["seed"])


def reached(run: dict, target: float) -> dict | None:
    """The first evaluation of ``run`` at or above ``target`` (the run stopped there), or None."""
    return next((e for e in run["evaluations"] if (e.get("success_rate") or 0.0) >= target), None)


def plot(data: dict, path: Path) -> Path:
    """Greedy success against environment steps, one line per run, coloured by rule."""
    plt = charts.pyplot()
    g = data["grid"]
    fig, ax = plt.subplots(figsize=(7.0, 3.6))
    for colour, rule in zip(COLOURS, g["rules"]):
        for i, run in enumerate(learning_runs(data, rule)):
            steps = [e["step"] / 1e6 for e in run["evaluations"]]
            ax.plot(steps, [e["success_rate"] for e in run["evaluations"]], color=colour, lw=1.2, marker=".",
                    label=g["rules"][rule]["label"] if i == 0 else None)
    ax.axhline(g["target"], color="black", ls="--", lw=0.8, label=f"target {g['target']:.2f}")
    ax.axhline(g["chance"], color="black", ls=":", lw=0.8, label=f"chance {g['chance']:.2f}")
    ax.set_xlabel("environment steps (millions)")
    ax.set_ylabel("greedy success (256 episodes)")
    ax.set_ylim(0, 1.02)
    return charts.save_with_legend(fig, path, [ax])


def _per_seed(values: list[str]) -> str:
    return ", ".join(values) if values else "–"


def solve_rows(data: dict) -> list[list[str]]:
    """Per rule: runs that reached the target, and per seed its steps, wall and CPU time to it."""
    g, rows = data["grid"], []
    for rule, about in g["rules"].items():
        runs = learning_runs(data, rule)
        hits = [(r, reached(r, g["target"])) for r in runs]
        solved = [(r, e) for r, e in hits if e is not None]
        steps = [f"{e['step'] / 1e6:.2f}M" if e else f"– (peak {max(x['success_rate'] for x in r['evaluations']):.2f})"
                 for r, e in hits]
        wall = [f"{e['wall_s']:.0f}" if e else "–" for r, e in hits]
        cpu = [f"{r['cpu_s']:.0f}" if e else "–" for r, e in hits]
        median = fmt(statistics.median(e["step"] for _, e in solved) / 1e6) + "M" if solved else "–"
        sps = fmt(statistics.median(r["sps"] for r in runs), 0) if runs else "–"
        rows.append([about["label"], f"{len(solved)} of {len(runs)}", _per_seed(steps), median, _per_seed(wall),
                     _per_seed(cpu), sps])
    return rows


#: the cost table's rows: (label, key in the V-trace row, key in the PPO row); None: not a part of that update
PARTS = [
    ("collecting the segment (acting)", "collect_s", "collect_s"),
    ("update, all of it", "update_s", "update_s"),
    ("forward pass from the carry (with the sensitivity update)", "forward_s", None),
    ("carry pass (no gradient: values, GAE, the next carry)", None, "carry_pass_s"),
    ("epochs: every minibatch step", None, "epochs_s"),
    ("replays' forward passes", None, "replay_forward_s"),
    ("replays' backward passes and optimizer steps", None, "replay_backward_and_step_s"),
    ("sensitivity updates inside the forward passes", "forward_sensitivity_update_s",
     "replay_sensitivity_update_s"),
]


def cost_lines(data: dict) -> list[str]:
    """The side-by-side cost: ms per update of each part, wall and CPU time; steps/s."""
    cost = next((r for r in data.get("cost", []) if "error" not in r), None)
    if cost is None:
        return ["Not measured yet.", ""]
    s = cost["summary"]
    ms = lambda row, key: fmt(1e3 * row[key], 1) if key else ""  # noqa: E731
    rows = [[label, ms(s["vtrace"]["wall"], v), ms(s["vtrace"]["cpu"], v), ms(s["ppo"]["wall"], p),
             ms(s["ppo"]["cpu"], p)] for label, v, p in PARTS]
    rows.append(["env steps per second, end to end", *(fmt(s[rule][kind]["steps_per_s"], 0)
                                                      for rule in ("vtrace", "ppo") for kind in ("wall", "cpu"))])
    carry = s["ppo"]["cpu"]["carry_pass_sensitivity_update_s"] * 1e3
    ppo = cost["ppo"]
    return [
        f"One process, one thread, {cost['segment']['streams']} streams and segments of {cost['segment']['length']}: "
        f"V-trace's and PPO's updates ({ppo['epochs']} epochs x {ppo['minibatches']} minibatches) interleaved for "
        f"{cost['rounds']} rounds of {cost['updates_per_round']} updates each (after {cost['warmup_updates']} "
        "warm-up updates), each rule with its own environments and model; the medians over the rounds, in ms per "
        "update. CPU time is this process's (the machine was shared, so wall time runs longer).", "",
        *table(["part of one update", "V-trace wall", "V-trace CPU", "PPO wall", "PPO CPU"], rows),
        f"PPO takes {s['ppo_over_vtrace_cpu']['update_s']:.1f} times V-trace's CPU time per update "
        f"({s['ppo_over_vtrace_wall']['update_s']:.1f} times its wall time), and end to end, with the collection, "
        f"runs at {s['ppo_over_vtrace_cpu']['steps_per_s']:.2f} of its steps per CPU second. The replays' sensitivity "
        "updates compute the carry after each minibatch's segment, which PPO does not use (the carry pass gives the "
        f"next segment's carry; its own sensitivity update takes {carry:.1f} ms of CPU).", ""]


def write_page(data: dict, json_path: Path, md_path: Path) -> list[Path]:
    """Write the chart and the page; return their paths."""
    g = data["grid"]
    png = plot(data, json_path.parent / "ppo_curves.png")
    commands = sorted({r["command"] for r in learning_runs(data)})
    lines = [
        "# PPO against V-trace on the default task", "",
        f"![greedy success against environment steps]({os.path.relpath(png, md_path.parent)})", "",
        f"The default run (`{g['config']}`): `memory:recall` with distractors (a cue of 4 symbols, 40 random symbols, "
        "then the recall; chance 0.25), 128 streams, segments of 10, an RTRL eLSTM of 64 units. **Target: "
        f"{g['target']:.0%} greedy success** over {g['eval_episodes']} fresh episodes, evaluated every "
        f"{g['eval_interval_steps']:,} environment steps; a run stops at the first evaluation that reaches it, or "
        f"after {g['steps']:,} steps. Truncated BPTT cannot hold the cue across the 4 segments it spans, so PPO "
        "with it should stay at chance, as V-trace does.", "",
        "## Steps and time to the target", "",
        *table(["rule", "reached 95%", "steps to 95%, per seed", "median", "wall s to 95%, per seed",
                "CPU s to 95%, per seed", "steps/s (median)"], solve_rows(data)),
        f"Seeds {', '.join(str(s) for s in g['seeds'])}; steps counted at the evaluation that reached the target, so "
        f"to within {g['eval_interval_steps']:,}; a run that did not reach it shows its peak greedy success. Wall and "
        "CPU seconds are those of the run until that evaluation (included); the CPU seconds are this run's process "
        "(the memory task steps in it) and depend less on the load of the shared machine than the wall time does.",
        "", "## Cost: one update side by side", "", *cost_lines(data),
        "## Settings", "",
        *(f"- {about['label']}: `{' '.join(about['overrides']) or 'the defaults'}`" for about in g["rules"].values()),
        f"- every run: `{' '.join(g['common'] + g['extra'])}`", "", "Each run's command:", "",
        *(f"- `{c}`" for c in commands), "", *_reproduce(data, json_path, md_path)]
    return [write(md_path, lines), png]


def _reproduce(data: dict, json_path: Path, md_path: Path) -> list[str]:
    meta, plans = data["meta"], data["grid"]["plans"]
    took = duration(sum(h.get("wall_s", 0.0) for h in meta["history"]))
    full = (f"{took} here, one run at a time" if data["grid"]["name"] == "full"
            else estimated(plans["full"], data["runs"], 1))
    commands = [("rtrl-rl bench ppo", f"the whole grid ({plans['full']['runs']} runs, the cost cell among them): {full}"),
                ("rtrl-rl bench ppo --quick --out quick/results", f"one seed of V-trace and PPO at a tenth of the "
                 f"budget, into a folder of its own: {estimated(plans['quick'], data['runs'], 1)}"),
                ("rtrl-rl bench ppo --report-only", "this page and its chart from the JSON, in seconds")]
    machines = machines_line(learning_runs(data), lambda r: r["rule"])
    return [*reproduce([os.path.relpath(json_path, md_path.parent)], commands),
            f"Machine: {machine_line(meta)} The machine was shared with other work, so wall times are upper bounds."
            + (f" The runs' CPUs: {machines}." if machines else ""), ""]
