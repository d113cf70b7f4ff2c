"""``rtrl-rl bench ppo``: PPO beside V-trace on the default task (``memory:recall`` with distractors).

Two parts, written into one JSON (default ``docs/results/ppo.json``):

- ``solve``: ``rtrl-rl train`` with the default config (``configs/default.yaml``), one run at
  a time in this process, one torch thread, for each rule and seed: V-trace (the default),
  PPO with the settings chosen for the task (:data:`PPO`), the same with truncated BPTT
  (``agent.learning=tbptt``), and PPO at the library's gradient clip (``ppo-gradclip40``). A run stops at the first greedy evaluation (every 200k steps,
  256 episodes) that reaches 95% success, or at the step budget; the JSON keeps its
  evaluations, steps, wall time and throughput.
- ``cost``: the same core and task in one process, one thread, V-trace's and PPO's
  updates interleaved round by round (each with its own environments and model, the
  segment collection included): steps/s of each, and where the update time goes
  (:mod:`rtrl_rl.bench.ppo_cost`).

Wall times depend on the machine and on what else runs on it: the JSON records the CPU,
the load average before and after each run, and beside every wall time the CPU time of
this process (the memory task steps in it, so that is the whole run's computation).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

DEFAULT_JSON = "docs/results/ppo.json"
#: the PPO settings chosen for the default task: the ppo.* defaults (CleanRL's recurrent PPO)
#: with CleanRL's gradient-norm clip, 0.5, instead of the library's 40 (IMPALA's, for summed losses)
PPO = ["agent.algorithm=ppo", "train.max_grad_norm=0.5"]
#: rule -> overrides of the default config
RULES = {
    "vtrace": [],
    "ppo": PPO,
    "ppo-tbptt": [*PPO, "agent.learning=tbptt"],
    "ppo-gradclip40": ["agent.algorithm=ppo"],
}
#: what every run of the bench sets (one thread; nothing written but the run's summary)
COMMON = ["train.threads=1", "log.progress=false", "log.tensorboard=false", "runtime.checkpoint_every_s=1e9"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the benchmark's arguments to ``parser``."""
    parser.add_argument("--part", choices=("solve", "cost", "all"), default="all",
                        help="which part to run; the other part's saved results are kept")
    parser.add_argument("--rules", default=",".join(RULES), help=f"solve: comma-separated, of {', '.join(RULES)}")
    parser.add_argument("--seeds", default="0,1,2", help="solve: comma-separated seeds")
    parser.add_argument("--budget", type=int, default=3_000_000, help="solve: environment steps per run at most")
    parser.add_argument("--rounds", type=int, default=5, help="cost: rounds of interleaved timing")
    parser.add_argument("--updates", type=int, default=20, help="cost: updates of each rule per round")
    parser.add_argument("--json", default=DEFAULT_JSON, help=f"results JSON (default {DEFAULT_JSON})")
    parser.add_argument("--resume", action="store_true",
                        help="solve: keep the runs already in --json with the same rule, seed and settings")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="more config overrides for every run")


def _seeds(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise SystemExit(f"--seeds takes comma-separated integers, got {text!r}") from None


def _rules(text: str) -> list[str]:
    names = [r.strip() for r in text.split(",") if r.strip()]
    unknown = [r for r in names if r not in RULES]
    if not names or unknown:
        raise SystemExit(f"--rules takes {', '.join(RULES)} (comma-separated), got {text!r}")
    return names


def command_line(args: argparse.Namespace) -> str:
    """The command as a user types it (the JSON records it)."""
    parts = ["rtrl-rl bench ppo"]
    if args.part != "all":
        parts.append(f"--part {args.part}")
    if args.resume:
        parts.append("--resume")
    defaults = {"rules": ",".join(RULES), "seeds": "0,1,2", "budget": 3_000_000, "rounds": 5, "updates": 20,
                "json": DEFAULT_JSON}
    parts += [f"--{k} {getattr(args, k)}" for k, v in defaults.items() if getattr(args, k) != v]
    return " ".join(parts + list(args.overrides))


def solve_run(rule: str, seed: int, budget: int, overrides: list[str]) -> dict:
    """One training run of ``rule`` (see the module docstring); its figures."""
    from rtrl_rl.config import load_config
    from rtrl_rl.trainer import train

    from rtrl_rl.experiments.cli import machine, versions

    settings = _settings(rule, seed, budget, overrides)
    with tempfile.TemporaryDirectory() as run_dir:
        config = load_config(None, [*settings, f"run_dir={run_dir}"])
        load, cpu = _load(), time.process_time()
        summary = train(config)
        cpu_s = time.process_time() - cpu  # the memory task steps in this process: all of the run
    reached = summary["stopped"] == "target"
    return {
        "rule": rule, "seed": seed, "stopped": summary["stopped"], "steps": summary["steps"],
        "wall_s": summary["wall_s"], "cpu_s": round(cpu_s, 2), "sps": summary["sps"],
        "success": summary.get("success_rate"),
        "steps_to_target": summary["steps"] if reached else None,
        "time_to_target_s": summary.get("time_to_target_s") if reached else None,
        "peak_success": max((e.get("success_rate", 0.0) for e in summary["evaluations"]), default=None),
        "evaluations": [{"step": e["step"], "wall_s": e["wall_s"], "success": e.get("success_rate")}
                        for e in summary["evaluations"]],
        "load_before": load, "load_after": _load(), "settings": settings, "cpu": machine()["cpu"],
        "git_commit": versions().get("git_commit"),
    }


def aggregate(runs: list[dict]) -> dict:
    """Per rule: how many runs reached the target, and the median and range of their steps
    and wall times to it; the peak greedy success of the others."""
    out: dict[str, dict] = {}
    for rule in dict.fromkeys(r["rule"] for r in runs):
        mine = [r for r in runs if r["rule"] == rule]
        solved = [r for r in mine if r["steps_to_target"] is not None]
        entry = {"runs": len(mine), "reached_target": len(solved), "seeds": [r["seed"] for r in mine]}
        for name, key in (("steps_to_target", "steps_to_target"), ("time_to_target_s", "time_to_target_s"),
                          ("cpu_s_to_target", "cpu_s")):
            values = [r[key] for r in solved]
            if values:
                entry[name] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
        unsolved = [r["peak_success"] for r in mine if r["steps_to_target"] is None]
        if unsolved:
            entry["peak_success_unsolved"] = {"min": min(unsolved), "max": max(unsolved)}
        entry["sps_median"] = statistics.median(r["sps"] for r in mine)
        out[rule] = entry
    return out


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(path)


def run(args: argparse.Namespace) -> int:
    """Run the parts asked for, writing the JSON after every run; print the headline table."""
    from rtrl_rl.experiments.cli import machine, versions

    path = Path(args.json)
    data = json.loads(path.read_text()) if path.is_file() else {}
    data.update(command=command_line(args), config="configs/default.yaml", overrides=list(args.overrides),
                machine=machine(), versions=versions())
    started = time.monotonic()
    if args.part in ("solve", "all") and _solve(args, data, path) is not None:
        return 130
    if args.part in ("cost", "all"):
        from rtrl_rl.bench.ppo_cost import measure

        sides = {rule: [*RULES[rule], *COMMON, *args.overrides] for rule in ("vtrace", "ppo")}
        data["cost"] = measure(args.rounds, args.updates, sides)
        print(json.dumps(data["cost"]["summary"], indent=1))
    data["machine"]["load_end"] = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    data["bench_wall_s"] = round(time.monotonic() - started, 1)
    _write(path, data)
    print(f"wrote {path}")
    return 0


def _solve(args: argparse.Namespace, data: dict, path: Path) -> int | None:
    """The solve part, one run at a time (the runs share the machine with nothing of ours).

    With ``--resume`` a run already in ``data`` for the same rule, seed and settings is kept.
    Returns 130 when a run was interrupted (the runs before it are saved), else None.
    """
    rules, seeds = _rules(args.rules), _seeds(args.seeds)
    kept = data.get("solve", {}).get("runs", []) if args.resume else []
    data["solve"] = {"rules": {r: RULES[r] for r in rules}, "common": COMMON, "budget": args.budget,
                     "seeds": seeds, "runs": []}
    for rule in rules:
        for seed in seeds:
            settings = _settings(rule, seed, args.budget, list(args.overrides))
            done = [r for r in kept if r["rule"] == rule and r["seed"] == seed and r.get("settings") == settings]
            result = done[0] if done else solve_run(rule, seed, args.budget, list(args.overrides))
            if result["stopped"].startswith("interrupted"):  # Ctrl-C or SIGTERM: keep what finished
                print(f"{rule} seed {seed}: {result['stopped']}; the runs before it are in {path}")
                return 130
            data["solve"]["runs"].append(result)
            data["solve"]["aggregate"] = aggregate(data["solve"]["runs"])
            _write(path, data)
            print(_run_line(result) + (" (kept)" if done else ""), flush=True)
    return None


def _settings(rule: str, seed: int, budget: int, overrides: list[str]) -> list[str]:
    """The config overrides of one solve run (over the defaults)."""
    return [*RULES[rule], *COMMON, f"train.seed={seed}", f"train.total_steps={budget}", *overrides]


def _run_line(r: dict) -> str:
    reached = (f"95% greedy at {r['steps_to_target']:,} steps, {r['time_to_target_s']:.0f} s"
               if r["steps_to_target"] else f"not reached in {r['steps']:,} steps (peak {r['peak_success']:.3f})")
    return f"{r['rule']:<10} seed {r['seed']}: {reached}; {r['sps']:,.0f} steps/s, load {r['load_before'][0]:.1f}"
