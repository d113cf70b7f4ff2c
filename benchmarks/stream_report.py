"""The page and plot of ``python -m benchmarks.stream``, rebuilt from its JSON alone."""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path


def _mean_std(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.fmean(values):.2f} ± {statistics.stdev(values):.2f}"


def _groups(data: dict) -> dict:
    groups: dict = defaultdict(list)
    for r in data["runs"]:
        groups[(r["task"], r["rule"])].append(r)
    return groups


def plot_curves(data: dict, path: Path) -> None:
    """Mean greedy success over seeds against environment steps, one panel per task."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks, groups = list(data["tasks"]), _groups(data)
    fig, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for rule, meta in data["rules"].items():
            runs = groups.get((task, rule))
            if not runs:
                continue
            steps = [e["step"] for e in runs[0]["evaluations"]]
            mean = [statistics.fmean(r["evaluations"][i]["success_rate"] for r in runs) for i in range(len(steps))]
            ax.plot(steps, mean, marker="o", label=meta["label"])
        ax.axhline(data["tasks"][task]["chance"], color="grey", ls=":", label="chance")
        ax.set_title(task)
        ax.set_xlabel("environment steps")
        ax.set_ylabel(f"greedy success (mean of {len(data['seeds'])} seeds)")
        ax.set_ylim(0, 1.05)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def render(data: dict, plot_name: str) -> list[str]:
    """The markdown lines of the page."""
    meta, groups = data["meta"], _groups(data)
    lines = ["# Streaming actor-critic: measured", "",
             f"Written by `{meta['command']}` ({meta['wall_s']:.0f} s; machine: {meta['machine']['nproc']} cores, "
             f"{meta['machine']['cpu']}, load average at start {meta['machine']['load_start']}, at end "
             f"{meta['load_end']}; commit {meta['versions']['git_commit']}). "
             "Rebuild the page from the JSON with `python -m benchmarks.stream --report-only`.", "",
             f"Every run: {data['steps']} environment steps, seeds {', '.join(map(str, data['seeds']))}, model "
             f"{' '.join(data['model'])}, 100 greedy evaluation episodes every {data['steps'] // 5} steps. "
             "Stream rules use one stream (`env.num_envs=1`) and the `stream.*` defaults; the segment agent "
             "uses 128 streams and segments of 10 steps with the `train.*` defaults, so at the same number of "
             "environment steps it makes far fewer updates.", "", "## Final greedy success", "",
             "| task | " + " | ".join(m["label"] for m in data["rules"].values()) + " |",
             "|---|" + "---|" * len(data["rules"])]
    for task, t in data["tasks"].items():
        cells = [_mean_std([r["success_rate"] for r in groups.get((task, rule), [])]) for rule in data["rules"]]
        lines.append(f"| {task} (chance {t['chance']}) | " + " | ".join(cells) + " |")
    lines += ["", f"![learning curves]({plot_name})", "", "## Wall time, steps per second, peak memory", "",
              "| task | rule | wall s | steps/s | peak RSS MiB |", "|---|---|---|---|---|"]
    for (task, rule), runs in sorted(groups.items()):
        lines.append(f"| {task} | {data['rules'][rule]['label']} | {statistics.fmean(r['wall_s'] for r in runs):.1f} | "
                     f"{statistics.fmean(r['sps'] for r in runs):.0f} | {max(r['max_rss_mib'] for r in runs):.0f} |")
    lines += ["", "Wall time includes the evaluations. The machine is shared, so these are upper bounds.", "",
              "## Drift of the online gradient", "",
              "The parameters change every step while the sensitivities carry derivatives taken under older "
              "parameters. Each step of a one-stream run (recall-blank, RTRL eLSTM), the online gradient of "
              "V(s_t) for the core's parameters is compared with the exact gradient under the current "
              "parameters (plain autograd through the episode so far); relative error |g − g*| / |g*|, over the "
              "steps that are not an episode's first. Where ObGD's bound is active the step "
              "α / (α κ max(|δ|,1) ‖z‖₁) does not depend on α = `stream.lr`, so rows with the same mean step are "
              "the same run:", "",
              "| stream.lr | mean ObGD step | median | 90th percentile | max | steps |", "|---|---|---|---|---|---|"]
    for d in data["drift"]:
        lines.append(f"| {d['lr']} | {d['mean_effective_step']:.4f} | {d['median_rel_error']:.2e} | "
                     f"{d['p90_rel_error']:.2e} | {d['max_rel_error']:.2e} | {d['steps']} |")
    lines += ["", "## Memory against episode length", "",
              "One stream, RTRL eLSTM, recall with blank delays, 3000 steps, no evaluation:", "",
              "| episode length | peak RSS MiB |", "|---|---|"]
    for m in data["memory"]:
        lines.append(f"| {m['episode_length']} | {m['max_rss_mib']:.0f} |")
    lines += ["", "## Not measured here", "",
              "- POPGym tasks (RepeatFirstEasy, CountRecallEasy, PositionOnlyCartPoleEasy): `popgym` is not "
              "installed on the machine that made this page.",
              "- Long memory spans and the distractor variant: the budget above fits short tasks only.", ""]
    return lines


def write_report(data: dict, out_dir: Path, md_path: Path) -> None:
    """Write the plot into ``out_dir`` and the page to ``md_path``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plot = out_dir / "stream_curves.png"
    plot_curves(data, plot)
    md_path.write_text("\n".join(render(data, str(plot.relative_to(md_path.parent)))) + "\n")
