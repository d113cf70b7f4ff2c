"""``python -m benchmarks.stream [--steps N] [--seeds 0 1 2] [--jobs 1]``: the streaming report.

Writes ``docs/results_stream.md``, ``docs/results/stream.json`` and
``docs/results/stream_curves.png``. Three measurements:

1. learning: one stream per run (``agent.algorithm=stream``) with exact RTRL cores, the
   one-step truncated core and the feed-forward baseline, and the segment agent with 128
   streams at the same number of environment steps, on small memory tasks and POPGym
   tasks (scored by POPGym's MMER, :func:`rtrl_rl.experiments.popgym.mmer`), per seed;
2. drift: how far the online RTRL gradient (parameters changing every step) is from the
   exact gradient of the same value under the current parameters;
3. memory: peak resident memory of one-stream runs whose episodes differ in length.

Runs go to ``--jobs`` long-lived worker processes (one torch thread each); each run's peak
memory is measured from a reset of the process's peak.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

from rtrl_rl.experiments.cli import stamp_cpu

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
    "segment-rtrl-elstm-128": ("segment agent, RTRL eLSTM, 128 streams, T=10",
                               ["env.num_envs=128", "agent.core=elstm", "agent.learning=rtrl",
                                "train.segment_length=10"]),
}
#: MMER windows (environment steps) are the budget over this: a few windows per run
MMER_WINDOWS = 4


def run_one(task: str, rule: str, seed: int, steps: int, work: str) -> dict:
    """One training run in this worker process: its figures, peak memory and training MMER."""
    from rtrl_rl.config import load_config
    from rtrl_rl.experiments.popgym import mmer, training_curve, window_means

    t = TASKS[task]
    eval_every = max(steps // t["evaluations"], 1) if t["evaluations"] > 1 else 10 * steps  # 1: at the end only
    overrides = [*t["overrides"], *RULES[rule][1], *MODEL, f"train.total_steps={steps}", f"train.seed={seed}",
                 "train.target_success=0", "train.threads=1", f"log.eval_interval_steps={eval_every}",
                 f"log.eval_episodes={t['eval_episodes']}", "log.progress=false", "log.tensorboard=true"]
    run_dir = f"{work}/{task}-{rule}-s{seed}-{time.time_ns()}"
    config = load_config(None, [*overrides, f"run_dir={run_dir}"])
    if config.agent.algorithm == "stream":
        from rtrl_rl.stream_trainer import train_stream as train
    else:
        from rtrl_rl.trainer import train
    _reset_peak()
    start = time.perf_counter()
    summary = train(config)
    wall = round(time.perf_counter() - start, 2)
    curve, window = training_curve(run_dir), max(steps // MMER_WINDOWS, 1)
    return {"task": task, "rule": rule, "seed": seed, "command": "rtrl-rl train " + " ".join(overrides),
            "steps": summary["steps"], "updates": summary.get("updates"), "wall_s": wall, "sps": summary["sps"],
            "success_rate": summary.get("success_rate"), "mean_return": summary.get("mean_return"),
            "mmer": mmer(curve, window), "mmer_window": window, "max_rss_mib": _peak_mib(),
            "train_curve": [[step, round(v, 4)] for step, v in window_means(curve, window)],
            "evaluations": [{"step": e["step"], "success_rate": e.get("success_rate"),
                             "mean_return": e.get("mean_return")} for e in summary["evaluations"]]}


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


def measure_drift(lr: float, steps: int, seed: int = 0) -> dict:
    """Relative error of the online RTRL gradient of V(s_t) for the core's parameters
    against the exact gradient under the current parameters (plain autograd through the
    episode so far), one stream of recall-blank, eLSTM, stream.lr = ``lr``."""
    import torch

    from rtrl_rl.config import load_config
    from rtrl_rl.gradcheck import relative_error
    from rtrl_rl.stream_trainer import build_stream_agent
    from rtrl_rl.trainer import make_env, seed_everything

    torch.set_num_threads(1)
    config = load_config(None, [*TASKS["recall-blank"]["overrides"], *STREAM, *MODEL, f"stream.lr={lr}",
                                f"train.seed={seed}"])
    seed_everything(seed)
    venv = make_env(config, seed)
    model, learner = build_stream_agent(config, venv.single_observation_space, venv.single_action_space)
    core_params = list(model.core.parameters())
    index = [i for i, p in enumerate(learner.params) if any(p is q for q in core_params)]
    batch, episode, errors, steps_taken = venv.reset(), [], [], []
    inputs = (torch.as_tensor(batch.obs), torch.zeros(1, dtype=torch.int64), torch.zeros(1),
              torch.as_tensor(batch.first))
    for _ in range(steps):
        episode = [inputs] if bool(inputs[3][0]) else episode + [inputs]
        action = learner.act(*inputs)
        online = [learner._grads(learner._pending[0][0])[i] for i in index]
        obs, prev_a, prev_r, first = (torch.stack(part) for part in zip(*episode))
        with torch.no_grad():
            x = model.core_input(obs, prev_a, prev_r, first)
        y = model.core.reference_forward(x, torch.zeros(1, model.core.hidden_size), first)
        if config.stream.layer_norm:
            y = torch.nn.functional.layer_norm(y, y.shape[-1:])
        exact = torch.autograd.grad(model.value_head(y[-1])[0], core_params)
        flat = lambda gs: torch.cat([g.reshape(-1) for g in gs])
        if len(episode) > 1:  # at an episode's first step both are the same-step gradient
            errors.append(relative_error(flat(online), flat(exact)))
        batch = venv.step(action.numpy())
        reward = torch.as_tensor(batch.reward, dtype=torch.float32)
        done = torch.as_tensor(batch.terminated | batch.truncated)
        stats = learner.learn(reward, torch.as_tensor(batch.terminated), done, torch.as_tensor(batch.obs))
        steps_taken.append(stats["loss/step_value"])
        first = torch.as_tensor(batch.first)
        inputs = (torch.as_tensor(batch.obs), action * ~first, reward * ~first, first)
    venv.close()
    return {"lr": lr, "steps": steps, "median_rel_error": statistics.median(errors),
            "p90_rel_error": sorted(errors)[int(0.9 * len(errors))], "max_rel_error": max(errors),
            "mean_effective_step": statistics.fmean(steps_taken)}


def measure_throughput(rule: str, steps: int) -> dict:
    """Training steps per second of one rule on recall-blank, no evaluation: wall clock and
    per CPU-second of this process (the machine is shared, so the CPU figure is the steadier)."""
    from rtrl_rl.config import load_config
    from rtrl_rl.stream_trainer import train_stream
    from rtrl_rl.trainer import train

    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"stream-throughput-{rule}-{time.time_ns()}"
    config = load_config(None, [*TASKS["recall-blank"]["overrides"], *RULES[rule][1], *MODEL, "train.threads=1",
                                f"train.total_steps={steps}", "log.eval_episodes=0", "log.progress=false",
                                "log.tensorboard=false", f"run_dir={work}"])
    cpu = time.process_time()
    summary = (train_stream if config.agent.algorithm == "stream" else train)(config)
    return {"rule": rule, "steps": summary["steps"], "sps": summary["sps"],
            "cpu_sps": round(summary["steps"] / (time.process_time() - cpu), 1)}


def measure_memory(delay: int, steps: int) -> dict:
    """Peak RSS of a one-stream eLSTM run on recall with ``delay`` blank steps."""
    from rtrl_rl.config import load_config
    from rtrl_rl.stream_trainer import train_stream

    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"stream-memory-{delay}-{time.time_ns()}"
    config = load_config(None, [*STREAM, *MODEL, "env.options.num_symbols=2", f"env.options.delay={delay}",
                                "env.options.distractors=false", f"train.total_steps={steps}", "log.eval_episodes=0",
                                "log.progress=false", "log.tensorboard=false", f"run_dir={work}"])
    _reset_peak()
    summary = train_stream(config)
    return {"delay": delay, "episode_length": delay + 2, "steps": summary["steps"], "max_rss_mib": _peak_mib()}


def _pool(jobs: int) -> ProcessPoolExecutor:
    """``jobs`` long-lived spawned workers, one torch thread each: starting a process per run
    (importing torch) would cost more than many of the runs themselves."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    return ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="streaming actor-critic report")
    parser.add_argument("--steps", type=int, default=5000, help="environment steps per run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--rules", nargs="+", default=list(RULES), choices=list(RULES))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("docs/results"))
    parser.add_argument("--md", type=Path, default=Path("docs/results_stream.md"))
    parser.add_argument("--work", type=Path, default=Path("runs/stream-bench"))
    parser.add_argument("--drift-steps", type=int, default=600)
    parser.add_argument("--memory-steps", type=int, default=3000)
    parser.add_argument("--throughput-steps", type=int, default=2000)
    parser.add_argument("--resume", action="store_true",
                        help="keep the finished runs (and drift, memory, throughput) of <work>/partial.json")
    parser.add_argument("--report-only", action="store_true", help="rebuild the page from the saved JSON")
    parser.add_argument("--partial", action="store_true",
                        help="with --report-only: take the runs so far from <work>/partial.json (and save them)")
    args = parser.parse_args(argv)
    json_path = args.out / "stream.json"
    if args.report_only:
        data = json.loads((args.work / "partial.json" if args.partial else json_path).read_text())
        if args.partial:
            json_path.write_text(json.dumps(data, indent=1) + "\n")
    else:
        data = measure(args)
        args.out.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(data, indent=1) + "\n")
    from benchmarks.stream_report import write_report

    write_report(data, args.out, args.md)
    print(f"wrote {json_path}, {args.md} and {args.out / 'stream_curves.png'}")
    return 0


def measure(args: argparse.Namespace) -> dict:
    """Run the learning grid, the drift and the memory measurements; the results JSON.

    Runs go seed by seed (every task and rule for seed 0 first), and the results so far are
    saved to ``<work>/partial.json`` after each, so that a grid stopped early still leaves
    whole seeds to report (``--report-only --partial``)."""
    from rtrl_rl.experiments.cli import machine, versions

    started, runs, machine_start, versions_start = time.time(), [], machine(), versions()
    cmd = (f"python -m benchmarks.stream --steps {args.steps} --seeds {' '.join(map(str, args.seeds))} "
           f"--tasks {' '.join(args.tasks)} --rules {' '.join(args.rules)} --jobs {args.jobs}")
    data = {"meta": {"command": cmd, "machine": machine_start, "versions": versions_start, "jobs": args.jobs},
            "tasks": {t: TASKS[t] for t in args.tasks},
            "rules": {r: {"label": RULES[r][0], "overrides": RULES[r][1]} for r in args.rules},
            "model": MODEL, "steps": args.steps, "seeds": args.seeds, "runs": runs, "drift": [], "memory": [],
            "planned_runs": len(args.seeds) * len(args.tasks) * len(args.rules)}
    partial = args.work / "partial.json"
    args.work.mkdir(parents=True, exist_ok=True)
    done = _resumable(partial, data) if args.resume else {}
    runs += done.get("runs", [])
    started -= done.get("wall_s", 0.0)  # the page's wall time covers the stopped grid too
    finished = {(r["task"], r["rule"], r["seed"]) for r in runs}
    with _pool(args.jobs) as pool:
        jobs = {"drift": [(measure_drift, lr, args.drift_steps) for lr in (1.0, 0.1, 0.01)],
                "memory": [(measure_memory, delay, args.memory_steps) for delay in (10, 100, 1000)],
                "throughput": [(measure_throughput, rule, args.throughput_steps) for rule in args.rules]}
        kept = {key: _kept_rows(done.get(key) or [], key, [job[1] for job in v]) for key, v in jobs.items()}
        pending = {key: {job[1]: pool.submit(*job) for job in v if job[1] not in kept[key]}
                   for key, v in jobs.items()}
        futures = [pool.submit(run_one, task, rule, seed, args.steps, str(args.work))
                   for seed in args.seeds for task in args.tasks for rule in args.rules
                   if (task, rule, seed) not in finished]
        here = machine_start["cpu"]
        for key, v in jobs.items():
            data[key] = [kept[key][job[1]] if job[1] in kept[key] else stamp_cpu([pending[key][job[1]].result()],
                                                                                 here)[0] for job in v]
        for future in as_completed(futures):
            runs.append(stamp_cpu([future.result()], here)[0])
            r = runs[-1]
            print(f"{r['task']:24s} {r['rule']:24s} seed {r['seed']}: success {r['success_rate']}, return "
                  f"{r['mean_return']}, {r['wall_s']:.0f} s", flush=True)
            data["meta"].update(wall_s=round(time.time() - started, 1), load_end=_load())
            partial.write_text(json.dumps(data, indent=1) + "\n")
    data["meta"].update(wall_s=round(time.time() - started, 1), load_end=_load())
    return data


def _resumable(partial: Path, data: dict) -> dict:
    """What a stopped grid with the same budget and model left in ``partial``: its finished
    runs of this grid's tasks, rules and seeds, and its drift, memory and throughput rows."""
    if not partial.exists():
        return {}
    old = json.loads(partial.read_text())
    if old["steps"] != data["steps"] or old["model"] != data["model"]:
        raise SystemExit(f"--resume: {partial} has another budget or model")
    runs = [r for r in old["runs"] if r["task"] in data["tasks"] and r["rule"] in data["rules"]
            and r["seed"] in data["seeds"]]
    print(f"resuming: {len(runs)} finished runs from {partial}", flush=True)
    cpu = old["meta"]["machine"]["cpu"]  # what ran before: on the machine of that invocation
    return {**{k: stamp_cpu(old.get(k) or [], cpu) for k in ("drift", "memory", "throughput")},
            "runs": stamp_cpu(runs, cpu), "wall_s": old["meta"].get("wall_s", 0.0)}


#: the field of a drift, memory or throughput row that names what it measured
_ROW_KEY = {"drift": "lr", "memory": "delay", "throughput": "rule"}


def _kept_rows(rows: list[dict], key: str, wanted: list) -> dict:
    """The saved rows of one measurement that this invocation asks for, by what each measured
    (a learning rate, a delay, a rule): ``--resume`` measures only the rest, so a grid that adds
    rules gets their throughput rows while keeping the old ones."""
    return {row[_ROW_KEY[key]]: row for row in rows if row[_ROW_KEY[key]] in wanted}


def _load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    raise SystemExit(main())
