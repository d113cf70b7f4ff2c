"""``rtrl-rl bench envs SPEC``: steps/s of our VectorEnv against the alternatives.

Every backend is built once, then measured in interleaved rounds (ours, gymnasium
SyncVectorEnv, AsyncVectorEnv; for Atari ale-py's own AtariVectorEnv, for ProcGen the raw
gym3 env) in one process, so load from other processes hits them alike. Random actions
are drawn up front. Reports the median steps/s per backend (agent steps summed over
sub-envs) as a table and, with ``--json FILE``, as JSON.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import numpy as np

from rtrl_rl import envs
from rtrl_rl.bench import record
from rtrl_rl.envs.spec import parse_options, parse_spec


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the benchmark's arguments to ``parser``."""
    parser.add_argument("spec", help="environment spec, e.g. memory:recall, gym:CartPole-v1")
    parser.add_argument("--num-envs", type=int, default=32)
    # many short rounds: on a shared machine, load swings hit every backend alike
    parser.add_argument("--seconds", type=float, default=0.25, help="per backend per round")
    parser.add_argument("--rounds", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="option for our make_vector (repeatable)")
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON")


def _single_env_fn(spec: str, options: dict[str, Any]) -> Callable[[], gym.Env] | None:
    """A thunk building one plain gymnasium.Env for Sync/Async, or None if not applicable."""
    from rtrl_rl.envs.gym_suite import EnvFactory, gym_factory

    parsed = parse_spec(spec)
    env_opts = {k: v for k, v in options.items() if k not in ("workers", "start_method")}
    if parsed.suite == "memory":
        return EnvFactory("memory", parsed.name, env_opts)
    if parsed.suite in ("gym", "popgym", "minigrid"):
        return gym_factory(parsed.suite, parsed.name, env_opts)
    if parsed.suite == "entry":
        return EnvFactory("entry", spec, env_opts)
    return None


def _native(spec: str, venv: envs.VectorEnv, n: int, seed: int):
    """The suite's own vector backend, configured like ours (Atari, ProcGen), or None."""
    parsed = parse_spec(spec)
    if parsed.suite == "atari":
        from ale_py.vector_env import AtariVectorEnv
        o = venv.options
        env = AtariVectorEnv(venv.game, n, repeat_action_probability=o["sticky"],
                             frameskip=o["frameskip"], noop_max=o["noop_max"],
                             use_fire_reset=o["fire_reset"], stack_num=o["frame_stack"],
                             reward_clipping=False, autoreset_mode="SameStep")
        env.reset(seed=seed)
        return "ale-py AtariVectorEnv", lambda a: env.step(a), env.close
    if parsed.suite == "procgen":
        from procgen import ProcgenGym3Env
        env = ProcgenGym3Env(num=n, env_name=venv.game, rand_seed=seed, **venv.options)

        def step(a):
            """One raw gym3 act/observe, as our adapter does it."""
            env.act(a.astype(np.int32))
            return env.observe()
        return "procgen gym3 env", step, lambda: None
    return None


def _gymnasium_backends(thunk: Callable, n: int, seed: int) -> dict[str, tuple]:
    """Sync and Async in same-step autoreset (our semantics), plus Sync in next-step.

    Next-step mode (gymnasium's default) spends one call per episode on a reset that is
    not a transition, so its steps/s overstates the work done; it is shown for reference
    and is not the comparison target.
    """
    same = gym.vector.AutoresetMode.SAME_STEP
    out = {}
    for name, cls, mode in (("gymnasium SyncVectorEnv", gym.vector.SyncVectorEnv, same),
                            ("gymnasium AsyncVectorEnv", gym.vector.AsyncVectorEnv, same),
                            ("(ref) Sync, next-step", gym.vector.SyncVectorEnv, None)):
        venv = cls([thunk] * n, autoreset_mode=mode) if mode else cls([thunk] * n)
        venv.reset(seed=seed)
        out[name] = (lambda a, v=venv: v.step(a), venv.close)
    return out


def _measure(step: Callable, actions: np.ndarray, seconds: float, n: int) -> float:
    """Steps/s (summed over sub-envs) of ``step`` over about ``seconds``."""
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for k in range(64):
            step(actions[(count + k) % len(actions)])
        count += 64
    return count * n / (time.perf_counter() - start)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark described by ``args``; print a table; return 0."""
    options = parse_options(args.option)
    n = args.num_envs
    ours = envs.make_vector(args.spec, n, args.seed, **dict(options))
    ours.reset()
    space = gym.vector.utils.batch_space(ours.single_action_space, n)
    space.seed(args.seed)
    actions = np.stack([space.sample() for _ in range(256)])
    backends: dict[str, tuple[Callable, Callable]] = {"ours": (ours.step, ours.close)}
    thunk = _single_env_fn(args.spec, options)
    if thunk is not None:
        backends.update(_gymnasium_backends(thunk, n, args.seed))
    native = _native(args.spec, ours, n, args.seed)
    if native is not None:
        backends[native[0]] = native[1:]
    results: dict[str, list[float]] = {k: [] for k in backends}
    try:
        for _ in range(args.rounds):
            for name, (step, _) in backends.items():
                results[name].append(_measure(step, actions, args.seconds, n))
    finally:
        for _, close in backends.values():
            close()
    return _report(args, ours, results)


def _report(args, ours, results: dict[str, list[float]]) -> int:
    median = {k: statistics.median(v) for k, v in results.items()}
    others = [v for k, v in median.items() if k != "ours" and not k.startswith("(ref)")]
    best = max(others) if others else float("nan")
    print(f"{args.spec}  num_envs={args.num_envs}  rounds={args.rounds} x {args.seconds}s  "
          f"options={ours.options}")
    print(f"{'backend':32s} {'median steps/s':>15s} {'best round':>12s}")
    for name, values in results.items():
        print(f"{name:32s} {median[name]:15,.0f} {max(values):12,.0f}")
    ratio = median["ours"] / best if others else float("nan")
    print(f"ours / best alternative: {ratio:.2f}")
    if args.json:
        record.save(Path(args.json), {"spec": args.spec, "num_envs": args.num_envs, "rounds": results, "median": median,
                                      "ours_over_best": ratio, "options": {k: repr(v) for k, v in ours.options.items()},
                                      "machine": record.machine(), "versions": record.versions()})
    return 0
