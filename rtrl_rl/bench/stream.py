"""``rtrl-rl bench stream``: the streaming actor-critic, measured. The page is ``docs/results_stream.md``.

Three measurements, all cells of one grid:

1. learning: one stream per run (``agent.algorithm=stream``) with exact RTRL cores, the
   one-step truncated core and the feed-forward baseline, and the segment agent with 128
   streams at the same number of environment steps, on small memory tasks and POPGym
   tasks (scored by POPGym's MMER), per seed;
2. drift: how far the online RTRL gradient (parameters changing every step) is from the
   exact gradient of the same value under the current parameters;
3. memory and throughput: peak resident memory of one-stream runs whose episodes differ
   in length, and each rule's training steps per second.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

from rtrl_rl.bench import driver
from rtrl_rl.bench.curves import mmer, training_curve, window_means
from rtrl_rl.bench.grid import SEGMENT_LENGTH, Block, Budget, Cell, Grid, plan
from rtrl_rl.bench.stream_page import write_page

MODEL = ["agent.hidden_size=16", "agent.encoder_size=16"]
RECALL = ["env.id=memory:recall", "env.options.num_symbols=2", "env.options.delay=4"]
#: name -> overrides, the greedy evaluation's metric, its chance level (None: none stated), episodes per
#: evaluation, and evaluations per run (POPGym's long episodes: only the final one; their curves are
#: the training returns)
TASKS = {
    # the cue 2 blank steps back, as in the stream learning test: a span one stream is known to learn
    "recall-blank-2": {"overrides": [*RECALL[:2], "env.options.delay=2", "env.options.distractors=false"],
                       "metric": "success_rate", "chance": 0.5, "eval_episodes": 100, "evaluations": 4},
    "recall-blank": {"overrides": [*RECALL, "env.options.distractors=false"], "metric": "success_rate",
                     "chance": 0.5, "eval_episodes": 100, "evaluations": 4},
    "recall-distractors": {"overrides": [*RECALL, "env.options.distractors=true"], "metric": "success_rate",
                           "chance": 0.5, "eval_episodes": 100, "evaluations": 4},
    "tmaze": {"overrides": ["env.id=memory:tmaze", "env.options.length=4"], "metric": "success_rate",
              "chance": 0.5, "eval_episodes": 100, "evaluations": 4},
    **{name: {"overrides": [f"env.id=popgym:{name}"], "metric": "mean_return", "chance": None, "eval_episodes": 20,
             "evaluations": 1}
       for name in ("RepeatFirstEasy", "CountRecallEasy", "PositionOnlyCartPoleEasy")},
}
STREAM = ["agent.algorithm=stream", "env.num_envs=1"]
RULES = {  # name -> (label, overrides)
    "stream-rtrl-elstm": ("stream, RTRL eLSTM", [*STREAM, "agent.core=elstm", "agent.learning=rtrl"]),
    "stream-rtrl-mingru": ("stream, RTRL minGRU", [*STREAM, "agent.core=mingru", "agent.learning=rtrl"]),
    "stream-rtrl-lru": ("stream, RTRL LRU", [*STREAM, "agent.core=lru", "agent.learning=rtrl"]),
    "stream-rtrl-rtu": ("stream, RTRL RTU", [*STREAM, "agent.core=rtu", "agent.learning=rtrl"]),
    "stream-rtrl-rtu-nonlinear": ("stream, RTRL non-linear RTU", [*STREAM, "agent.core=rtu_nonlinear",
                                                                  "agent.learning=rtrl"]),
    "stream-truncated-elstm": ("stream, one-step truncated eLSTM", [*STREAM, "agent.core=elstm",
                                                                    "agent.learning=tbptt"]),
    "stream-feedforward": ("stream, feed-forward", [*STREAM, "agent.core=none", "agent.learning=none"]),
    "segment-rtrl-elstm-128": (f"segment agent, RTRL eLSTM, 128 streams, T={SEGMENT_LENGTH}",
                               ["env.num_envs=128", "agent.core=elstm", "agent.learning=rtrl",
                                f"train.segment_length={SEGMENT_LENGTH}"]),
}
#: MMER windows (environment steps) are the budget over this: a few windows per run
MMER_WINDOWS = 4
#: the drift's learning rates, the memory measurement's delays (its episodes are 2 steps longer)
DRIFT_LRS, MEMORY_DELAYS = (1.0, 0.1, 0.01), (10, 100, 1000)


def grid(name: str, tasks: list[str], rules: list[str], seeds: list[int], steps: int) -> Grid:
    """Every task x rule x seed, one block per task (each task has its own evaluations)."""
    def budget(task: str) -> Budget:
        t = TASKS[task]
        return Budget(steps, max(steps // t["evaluations"], 1) if t["evaluations"] > 1 else 0, t["eval_episodes"],
                      tensorboard=True)
    return Grid(name, [Block((task,), tuple(rules), budget(task)) for task in tasks], seeds, list(MODEL))


GRIDS = {
    "full": grid("full", list(TASKS), list(RULES), [0, 1, 2], 5000),
    # one seed, two tasks, three rules, a fifth of the steps: the plumbing in minutes
    "quick": grid("quick", ["recall-blank-2", "RepeatFirstEasy"],
                  ["stream-rtrl-elstm", "stream-feedforward", "segment-rtrl-elstm-128"], [0], 1000),
}
EXPERIMENT = driver.Experiment("stream", "stream.json", "results_stream.md", tuple(GRIDS))


def spec(cell: Cell, extra: list[str]) -> dict:
    overrides = [*TASKS[cell.task]["overrides"], *RULES[cell.rule][1], *extra, *cell.block.budget.overrides(cell.seed)]
    return {"task": cell.task, "rule": cell.rule, "seed": cell.seed, "total_steps": cell.block.budget.total_steps,
            "overrides": overrides}


def specs(g: Grid, drift_steps: int, memory_steps: int, throughput_steps: int) -> list[dict]:
    """The measurements first (they are short), then the learning runs seed by seed."""
    return [*({"into": "drift", "lr": lr, "steps": drift_steps} for lr in DRIFT_LRS),
            *({"into": "memory", "delay": d, "steps": memory_steps} for d in MEMORY_DELAYS),
            *({"into": "throughput", "rule": r, "steps": throughput_steps} for r in g.rules),
            *g.specs(lambda cell: spec(cell, g.extra))]


def describe(g: Grid) -> dict:
    from rtrl_rl.bench.popgym import GRIDS as POPGYM

    return {"name": g.name, "tasks": {t: TASKS[t] for t in g.tasks},
            "rules": {r: {"label": RULES[r][0], "overrides": RULES[r][1]} for r in g.rules},
            "model": MODEL, "steps": g.blocks[0].budget.total_steps, "seeds": g.seeds,
            "popgym_steps": POPGYM["full"]().blocks[0].budget.total_steps,
            "catalog": {"tasks": list(TASKS), "rules": {r: label for r, (label, _) in RULES.items()}},
            "plans": {name: plan(full.specs(lambda cell: spec(cell, full.extra))) for name, full in GRIDS.items()}}


def run_cell(spec: dict, work_dir: str) -> dict:
    """One cell in its worker process: a learning run, or a drift, memory or throughput row."""
    measure = {"drift": _drift, "memory": _memory, "throughput": _throughput}.get(spec.get("into"))
    return {"into": spec["into"], **measure(spec, work_dir)} if measure else _learn(spec, work_dir)


def _train(overrides: list[str], run_dir: Path) -> dict:
    """``rtrl-rl train`` in this process, the stream trainer where the config asks for it."""
    from rtrl_rl.config import load_config
    from rtrl_rl.runtime import train_run

    return train_run(load_config(None, [*overrides, f"run_dir={run_dir}"]))


def _learn(spec: dict, work_dir: str) -> dict:
    """One learning run: its figures, peak memory and training MMER."""
    run_dir = Path(work_dir) / f"{spec['task']}-{spec['rule']}-s{spec['seed']}-{time.time_ns()}"
    _reset_peak()
    start = time.perf_counter()
    summary = _train(spec["overrides"], run_dir)
    wall = round(time.perf_counter() - start, 2)
    steps = spec["total_steps"]
    curve, window = training_curve(run_dir), max(steps // MMER_WINDOWS, 1)
    return {"task": spec["task"], "rule": spec["rule"], "seed": spec["seed"],
            "command": "rtrl-rl train " + " ".join(spec["overrides"]), "steps": summary["steps"],
            "updates": summary.get("updates"), "wall_s": wall, "sps": summary["sps"],
            "success_rate": summary.get("success_rate"), "mean_return": summary.get("mean_return"),
            "mmer": mmer(curve, window), "mmer_window": window, "max_rss_mib": _peak_mib(),
            "train_curve": [[step, round(v, 4)] for step, v in window_means(curve, window)],
            "evaluations": [{"step": e["step"], "success_rate": e.get("success_rate"),
                             "mean_return": e.get("mean_return")} for e in summary["evaluations"]]}


def _quiet(steps: int) -> list[str]:
    return [f"train.total_steps={steps}", "log.eval_episodes=0", "log.progress=false", "log.tensorboard=false"]


def _throughput(spec: dict, work_dir: str) -> dict:
    """Training steps per second of one rule on recall-blank, no evaluation: wall clock and
    per CPU-second of this process (the machine is shared, so the CPU figure is the steadier)."""
    rule = spec["rule"]
    cpu = time.process_time()
    summary = _train([*TASKS["recall-blank"]["overrides"], *RULES[rule][1], *MODEL, "train.threads=1",
                      *_quiet(spec["steps"])], Path(work_dir) / f"throughput-{rule}-{time.time_ns()}")
    return {"rule": rule, "steps": summary["steps"], "sps": summary["sps"],
            "cpu_sps": round(summary["steps"] / (time.process_time() - cpu), 1)}


def _memory(spec: dict, work_dir: str) -> dict:
    """Peak RSS of a one-stream eLSTM run on recall with ``delay`` blank steps."""
    delay = spec["delay"]
    _reset_peak()
    summary = _train([*STREAM, *MODEL, "env.options.num_symbols=2", f"env.options.delay={delay}",
                      "env.options.distractors=false", *_quiet(spec["steps"])],
                     Path(work_dir) / f"memory-{delay}-{time.time_ns()}")
    return {"delay": delay, "episode_length": delay + 2, "steps": summary["steps"], "max_rss_mib": _peak_mib()}


def _drift(spec: dict, work_dir: str) -> dict:
    """Relative error of the online RTRL gradient of V(s_t) for the core's parameters against
    the exact gradient under the current parameters (plain autograd through the episode so
    far), one stream of recall-blank, eLSTM, stream.lr = ``lr``."""
    from rtrl_rl.bench.stream_drift import measure_drift

    return measure_drift([*TASKS["recall-blank"]["overrides"], *STREAM, *MODEL], spec["lr"], spec["steps"])


def _reset_peak() -> None:
    """Reset this process's peak resident memory (Linux), so that the next reading is one run's."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _peak_mib() -> float:
    """Peak resident memory (MiB) since :func:`_reset_peak` (Linux; else since the process started)."""
    try:
        line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmHWM:"))
        return round(int(line.split()[1]) / 1024, 1)
    except (OSError, StopIteration):
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    driver.add_arguments(parser, EXPERIMENT)
    parser.add_argument("--steps", type=int, help="environment steps per run (default: the grid's)")
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds (default: the grid's)")
    parser.add_argument("--tasks", nargs="+", choices=list(TASKS), help="only these tasks")
    parser.add_argument("--rules", nargs="+", choices=list(RULES), help="only these rules")
    parser.add_argument("--drift-steps", type=int, default=600, help="steps of each drift measurement")
    parser.add_argument("--memory-steps", type=int, default=3000, help="steps of each memory measurement")
    parser.add_argument("--throughput-steps", type=int, default=2000, help="steps of each throughput measurement")


def run(args: argparse.Namespace) -> int:
    """Measure (unless ``--report-only``), then write the JSON, the page and the chart."""
    error = driver.check(args, EXPERIMENT)
    if not error and any(n is not None and n < 1 for n in (args.steps, args.drift_steps, args.memory_steps,
                                                           args.throughput_steps)):
        error = "--steps, --drift-steps, --memory-steps and --throughput-steps must be positive"
    if error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    g = GRIDS[args.grid].narrowed(args.tasks, args.rules, args.seeds, args.steps)
    return driver.drive(EXPERIMENT, args, describe=describe(g),
                        specs=specs(g, args.drift_steps, args.memory_steps, args.throughput_steps),
                        runner=run_cell, write_page=write_page)

