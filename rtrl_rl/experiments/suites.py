"""Short-budget training on the real suites, and the page that reports it.

Each run is ``rtrl-rl train --config <suite config>`` with the rule's overrides, on the
synchronous trainer with one thread, stopped by SIGINT after a wall-time budget (the
trainer then writes its final checkpoint and summary). Afterwards ``rtrl-rl evaluate``
plays fresh episodes with the suite's protocol, once with greedy and once with sampled
actions (greedy policies can coincide on a few seeded levels while their sampled
behaviour differs). ``--evaluate-only`` repeats both evaluations for runs already
recorded. Learning curves come from the run's TensorBoard scalars. Everything on the page
is read from ``suites.json``.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from rtrl_rl.run_paths import RunPaths

RULES = {
    "RTRL eLSTM": ["agent.core=elstm", "agent.learning=rtrl"],
    "feed-forward": ["agent.core=none", "agent.learning=none"],
}
#: env frames per agent step (Atari repeats each action 4 frames; ProcGen does not)
FRAMES_PER_STEP = {"atari": 4, "procgen": 1}
#: published figures at their budgets (the papers and CleanRL's benchmarks; not measured here)
PUBLISHED = {
    "atari/pong": "CleanRL PPO+LSTM 19.8 at 10M steps (40M frames); the reference gives no Pong figure",
    "atari/breakout": "reference RTRL eLSTM 275 (feed-forward 234) at 200M steps",
    "procgen/coinrun": "no published figure for this setup (normalisation range 5 to 10)",
    "procgen/starpilot": "CleanRL PPO 31.0 at 25M steps (normalisation range 2.5 to 64)",
}
#: what a plain ``python -m benchmarks.suites`` trains
DEFAULT_CONFIGS = ["procgen/coinrun", "atari/pong"]
#: the full budget each config asks for, in agent steps (its train.total_steps)
FULL_STEPS = {"atari/pong": 10_000_000, "atari/breakout": 50_000_000, "procgen/coinrun": 25_000_000,
              "procgen/starpilot": 25_000_000}


def train_command(config: str, rule: str, run_dir: Path) -> list[str]:
    """The exact training command of one run (no step limit: the wall-time budget stops it)."""
    return ["rtrl-rl", "train", "--config", config, *RULES[rule], "runtime.actors=0", "train.device=cpu",
            "train.threads=1", "log.progress=false", "log.eval_episodes=0", f"run_dir={run_dir}"]


def start(config: str, rule: str, run_dir: Path) -> subprocess.Popen:
    """Start one training run in the background; its log goes to ``run_dir/train.log``.

    An earlier run of the same config and rule in ``run_dir`` (from an earlier invocation,
    whose results this one replaces in suites.json) is deleted first.
    """
    from rtrl_rl.session import fresh_run_dir

    if fresh_run_dir(run_dir):
        print(f"replaced the earlier run in {run_dir}", flush=True)
    log = open(run_dir / "train.log", "w")
    return subprocess.Popen(train_command(config, rule, run_dir), stdout=log, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen, grace_s: float = 900.0) -> int:
    """SIGINT (final checkpoint and summary), then wait; kill only if it never ends."""
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def episode_curve(run_dir: Path) -> list[tuple[int, float]]:
    """(step, mean episodic return) points from the run's TensorBoard events."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    if "charts/episodic_return" not in acc.Tags()["scalars"]:
        return []
    return [(int(e.step), float(e.value)) for e in acc.Scalars("charts/episodic_return")]


def evaluate(run_dir: Path, episodes: int, sample: bool = False) -> dict:
    """``rtrl-rl evaluate --json`` on fresh environments with the suite's protocol.

    Greedy actions by default; ``sample`` draws them from the policy (``--sample``).
    """
    cmd = ["rtrl-rl", "evaluate", str(run_dir), "--episodes", str(episodes), "--num-envs", str(min(8, episodes)),
           "--seed", "0", *(["--sample"] if sample else []), "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": out.stderr.strip()[-2000:], "command": " ".join(cmd)}
    result = json.loads(out.stdout)
    return {k: result[k] for k in ("episodes", "mean_return", "std_return", "min_return", "max_return")} | {
        "command": " ".join(cmd)}


def evaluations(run_dir: Path, episodes: int) -> dict:
    """The greedy and the sampled evaluation of one run, as recorded in suites.json."""
    return {"evaluation": evaluate(run_dir, episodes), "evaluation_sampled": evaluate(run_dir, episodes, sample=True)}


def run_dir_of(work: Path, config: str, rule: str) -> Path:
    """Where the run of ``rule`` on ``config`` lives under the work directory."""
    return work / f"{config.replace('/', '-')}-{rule.split()[0].lower()}"


def run_pair(config: str, minutes: float, work: Path, episodes: int) -> list[dict]:
    """Both rules on one config, side by side (one core each), for ``minutes`` of wall time."""
    dirs = {rule: run_dir_of(work, config, rule) for rule in RULES}
    procs = {rule: start(config, rule, d) for rule, d in dirs.items()}
    time.sleep(minutes * 60)
    codes = {rule: stop(p) for rule, p in procs.items()}
    results = []
    for rule, run_dir in dirs.items():
        summary_file = RunPaths(run_dir).summary
        summary = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
        suite = config.split("/")[0]
        results.append({
            "config": config, "rule": rule, "exit_code": codes[rule],
            "command": " ".join(train_command(config, rule, Path("RUN_DIR"))),
            "steps": summary.get("steps"), "frames": (summary.get("steps") or 0) * FRAMES_PER_STEP.get(suite, 1),
            "wall_s": summary.get("wall_s"), "sps": summary.get("sps"),
            "curve": episode_curve(run_dir), **evaluations(run_dir, episodes),
        })
    return results


def evaluate_recorded(data: dict, work: Path, configs: list[str] | None, episodes: int) -> list[str]:
    """Evaluate again (greedy and sampled) the recorded runs whose directories still exist.

    Only runs of ``configs`` (all when None); returns the run directories it could not find.
    """
    missing = []
    for run in data["runs"]:
        if configs and run["config"] not in configs:
            continue
        run_dir = run_dir_of(work, run["config"], run["rule"])
        if not RunPaths(run_dir).checkpoints.is_dir():
            missing.append(str(run_dir))
            continue
        print(f"evaluating {run_dir}", flush=True)
        run.update(evaluations(run_dir, episodes))
    return missing


def merge(old: dict | None, runs: list[dict], batch: dict) -> dict:
    """The results after one invocation: its runs replace earlier runs of the same configs.

    Each run records the invocation (``batch``: batch_command, started, minutes) that made it,
    so configs measured by different invocations, with different budgets, share one page.
    A file written before runs carried their batch gets it from its top-level fields.
    """
    kept = []
    if old:
        legacy = {"batch_command": old["command"], "started": old["started"], "minutes": old["minutes"]} \
            if "command" in old else {}
        kept = [{**legacy, **r} for r in old["runs"] if r["config"] not in {n["config"] for n in runs}]
    new = [{**batch, **r} for r in runs]
    order = list(FULL_STEPS)
    merged = sorted(kept + new, key=lambda r: (order.index(r["config"]) if r["config"] in order else len(order),
                                               list(RULES).index(r["rule"])))
    return {"runs": merged, "published": PUBLISHED, "full_steps": FULL_STEPS, "frames_per_step": FRAMES_PER_STEP}


def main(argv: list[str] | None = None) -> int:
    """Run the pairs, merge them into the JSON, then write the plot and the page."""
    from rtrl_rl.experiments.suites_report import write_page

    parser = argparse.ArgumentParser(prog="python -m benchmarks.suites", description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=None,
                        help=f"suite configs (training default: {' '.join(DEFAULT_CONFIGS)}; "
                             "with --evaluate-only: every recorded config)")
    parser.add_argument("--minutes", type=float, default=60.0, help="wall time per pair of runs")
    parser.add_argument("--episodes", type=int, default=16, help="evaluation episodes per run")
    parser.add_argument("--out", default="docs/results", help="folder of suites.json and the plot")
    parser.add_argument("--work-dir", default="runs/suites", help="run directories")
    parser.add_argument("--report-only", action="store_true", help="rebuild the page from suites.json")
    parser.add_argument("--evaluate-only", action="store_true",
                        help="evaluate the recorded runs of --configs again (greedy and sampled), no training")
    args = parser.parse_args(argv)
    out = Path(args.out)
    json_path = out / "suites.json"
    if (args.report_only or args.evaluate_only) and not json_path.is_file():
        flag = "--report-only" if args.report_only else "--evaluate-only"
        parser.error(f"{json_path} does not exist: run without {flag} first")
    if args.evaluate_only:
        data = merge(json.loads(json_path.read_text()), [], {})
        missing = evaluate_recorded(data, Path(args.work_dir), args.configs, args.episodes)
        if missing:
            print("not found, evaluation kept as recorded:", *missing)
        json_path.write_text(json.dumps(data, indent=1))
    elif not args.report_only:
        configs = args.configs or DEFAULT_CONFIGS
        batch = {"batch_command": f"python -m benchmarks.suites --configs {' '.join(configs)} "
                            f"--minutes {args.minutes:g} --episodes {args.episodes}",
                 "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "minutes": args.minutes}
        runs = [r for config in configs for r in run_pair(config, args.minutes, Path(args.work_dir), args.episodes)]
        old = json.loads(json_path.read_text()) if json_path.is_file() else None
        out.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(merge(old, runs, batch), indent=1))
    data = merge(json.loads(json_path.read_text()), [], {})  # also upgrades a file of the old layout
    print("wrote", *write_page(data, out, out.parent / "results_suites.md"))
    return 0 if all(r["exit_code"] in (0, 130) for r in data["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
