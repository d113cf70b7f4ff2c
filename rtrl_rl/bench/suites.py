"""``rtrl-rl bench suites``: short RTRL and feed-forward runs on Atari and ProcGen.

A cell is one suite config: both rules side by side (one core each), each
``rtrl-rl train --config <suite config>`` with the rule's overrides on the synchronous
trainer with one thread, stopped by SIGINT after a wall-time budget (the trainer then
writes its final checkpoint and summary). Afterwards ``rtrl-rl evaluate`` plays fresh
episodes with the suite's protocol, once with greedy and once with sampled actions
(greedy policies can coincide on a few seeded levels while their sampled behaviour
differs). ``--evaluate-only`` repeats both evaluations for runs already recorded. The
page is ``docs/results_suites.md``.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from rtrl_rl.bench import driver, record
from rtrl_rl.bench.curves import training_curve
from rtrl_rl.bench.suites_page import write_page
from rtrl_rl.run.layout import RunPaths

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
#: what a plain ``rtrl-rl bench suites`` trains
DEFAULT_CONFIGS = ["procgen/coinrun", "atari/pong"]
EXPERIMENT = driver.Experiment("suites", "suites.json", "results_suites.md", ("suites",), default_grid="suites", jobs=1)


def train_command(config: str, rule: str, run_dir: Path) -> list[str]:
    """The exact training command of one run (no step limit: the wall-time budget stops it)."""
    return ["rtrl-rl", "train", "--config", config, *RULES[rule], "runtime.actors=0", "train.device=cpu",
            "train.threads=1", "log.progress=false", "log.eval_episodes=0", f"run_dir={run_dir}"]


def start(config: str, rule: str, run_dir: Path) -> subprocess.Popen:
    """Start one training run in the background; its log goes to ``run_dir/train.log``.
    An earlier run of the same config and rule in ``run_dir`` is deleted first."""
    from rtrl_rl.run.session import fresh_run_dir

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


def evaluate(run_dir: Path, episodes: int, sample: bool = False) -> dict:
    """``rtrl-rl evaluate --json`` on fresh environments with the suite's protocol; greedy
    actions by default, ``sample`` draws them from the policy (``--sample``)."""
    cmd = ["rtrl-rl", "evaluate", str(run_dir), "--episodes", str(episodes), "--num-envs", str(min(8, episodes)),
           "--seed", "0", *(["--sample"] if sample else []), "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1], "command": " ".join(cmd)}
    result = json.loads(out.stdout)
    return {k: result[k] for k in ("episodes", "mean_return", "std_return", "min_return", "max_return")} | {
        "command": " ".join(cmd)}


def evaluations(run_dir: Path, episodes: int) -> dict:
    """The greedy and the sampled evaluation of one run, as recorded in suites.json."""
    return {"evaluation": evaluate(run_dir, episodes), "evaluation_sampled": evaluate(run_dir, episodes, sample=True)}


def run_dir_of(work: Path, config: str, rule: str) -> Path:
    """Where the run of ``rule`` on ``config`` lives under the work directory."""
    return work / f"{config.replace('/', '-')}-{rule.split()[0].lower()}"


def full_steps(config: str) -> int:
    """The budget the config asks for, in agent steps (its ``train.total_steps``)."""
    from rtrl_rl.config import load_config, resolve_config_path

    return load_config(resolve_config_path(config), []).train.total_steps


def run_pair(config: str, minutes: float, work: Path, episodes: int) -> list[dict]:
    """Both rules on one config, side by side (one core each), for ``minutes`` of wall time."""
    dirs = {rule: run_dir_of(work, config, rule) for rule in RULES}
    procs = {rule: start(config, rule, d) for rule, d in dirs.items()}
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    time.sleep(minutes * 60)
    codes = {rule: stop(p) for rule, p in procs.items()}
    results = []
    for rule, run_dir in dirs.items():
        summary_file = RunPaths(run_dir).summary
        summary = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
        steps = summary.get("steps")
        results.append({
            "config": config, "rule": rule, "minutes": minutes, "started": started, "exit_code": codes[rule],
            "command": " ".join(train_command(config, rule, run_dir)), "steps": steps,
            "frames": (steps or 0) * FRAMES_PER_STEP.get(config.split("/")[0], 1), "wall_s": summary.get("wall_s"),
            "sps": summary.get("sps"), "curve": [(s, v) for s, _, v in training_curve(run_dir)],
            **evaluations(run_dir, episodes)})
    return results


def run_cell(spec: dict, work_dir: str) -> dict:
    """One config's pair, in the pool's process; its two rows."""
    return {"rows": run_pair(spec["config"], spec["minutes"], Path(work_dir), spec["episodes"])}


def evaluate_recorded(data: dict, work: Path, configs: list[str] | None, episodes: int) -> list[str]:
    """Evaluate again (greedy and sampled) the recorded runs whose directories still exist,
    of ``configs`` (all when None); returns the run directories it could not find."""
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


def describe(configs: list[str], episodes: int) -> dict:
    """What the page needs besides the runs: the configs, their full budgets, the published figures."""
    return {"name": "suites", "configs": configs, "eval_episodes": episodes, "frames_per_step": FRAMES_PER_STEP,
            "full_steps": {c: full_steps(c) for c in configs}, "published": {c: PUBLISHED.get(c, "–") for c in configs}}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    driver.add_arguments(parser, EXPERIMENT)
    parser.set_defaults(work_dir="runs/suites")  # kept: --evaluate-only evaluates them again
    parser.add_argument("--configs", nargs="+", default=None,
                        help=f"suite configs (training default: {' '.join(DEFAULT_CONFIGS)}; "
                             "with --evaluate-only: every recorded config)")
    parser.add_argument("--minutes", type=float, default=60.0, help="wall time per pair of runs")
    parser.add_argument("--episodes", type=int, default=16, help="evaluation episodes per run")
    parser.add_argument("--evaluate-only", action="store_true",
                        help="evaluate the recorded runs of --configs again (greedy and sampled), no training")


def run(args: argparse.Namespace) -> int:
    """Run the pairs into the JSON (or evaluate the recorded runs again), then write the page."""
    args.resume = args.resume or args.evaluate_only
    error = driver.check(args, EXPERIMENT)
    if error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    json_path, page_path = EXPERIMENT.paths(args)
    args.resume = json_path.is_file()  # the runs of these configs replace earlier ones; the others stay
    if args.evaluate_only:
        data = record.load(json_path)
        missing = evaluate_recorded(data, Path(args.work_dir), args.configs, args.episodes)
        if missing:
            print("not found, evaluation kept as recorded:", *missing)
        record.save(json_path, data)
        print("wrote", *map(str, write_page(data, json_path, page_path)))
        return 0
    configs = args.configs or DEFAULT_CONFIGS
    specs = [{"config": c, "minutes": args.minutes, "episodes": args.episodes} for c in configs]
    code = driver.drive(EXPERIMENT, args, describe=describe(configs, args.episodes), specs=specs, runner=run_cell,
                        write_page=write_page, done=lambda r: False, cell=lambda r: r["config"])
    data = record.load(json_path)
    return code or (0 if all(r["exit_code"] in (0, 130) for r in data["runs"]) else 1)
