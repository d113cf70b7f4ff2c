"""``make_vector``: the one way in, dispatching a spec string to its suite."""

from __future__ import annotations

import os
from typing import Any

from rtrl_rl.envs.gym_suite import EnvFactory, gym_factory, load_class
from rtrl_rl.envs.spec import ENTRY_POINT, closest, parse_spec
from rtrl_rl.envs.vector_env import VectorEnv, derive_seeds

#: options consumed by the Python-env runner, with their defaults
RUNNER_DEFAULTS: dict[str, Any] = {"workers": None, "start_method": "forkserver",
                                   "poll_s": 1.0, "step_timeout": None}


#: below this many seconds per env step, stepping in-process beats workers (measured on
#: 2 shared cores, 32 CartPole envs of ~15 us/step: 66k steps/s in-process vs 48k in 2
#: workers, medians of 60 interleaved rounds; see docs/envs.md)
IN_PROCESS_BELOW_S = 2e-4


def default_workers(num_envs: int, step_seconds: float) -> int:
    """Worker processes when ``workers`` is not given.

    Cheap envs (a probe step under IN_PROCESS_BELOW_S) run in-process (0): the pipe
    round trip would cost more than the step. Others get one worker per core (at most
    one per env), each holding many envs: one process per env only adds round trips.
    """
    if step_seconds < IN_PROCESS_BELOW_S:
        return 0
    return max(1, min(num_envs, os.cpu_count() or 1))


def _python_vector(factory: EnvFactory, num_envs: int, seed: int | None,
                   options: dict[str, Any]) -> VectorEnv:
    """A PythonVectorEnv of ``num_envs`` copies of ``factory`` with per-env seeds."""
    from rtrl_rl.envs.python_vector import PythonVectorEnv

    run = {k: options.pop(k, v) for k, v in RUNNER_DEFAULTS.items()}
    factory.kwargs.update(options)
    obs_space, act_space, step_seconds = factory.probe(20 if run["workers"] is None else 0)
    if run["workers"] is None:
        run["workers"] = default_workers(num_envs, step_seconds)
    venv = PythonVectorEnv([factory] * num_envs, derive_seeds(seed, num_envs),
                           obs_space, act_space, **run)
    venv.options = {**factory.kwargs, **run}
    return venv


def make_vector(spec: str, num_envs: int = 1, seed: int | None = 0,
                **options: Any) -> VectorEnv:
    """Build the vectorised environment named by ``spec`` (see :mod:`rtrl_rl.envs.spec`).

    ``num_envs`` sub-envs, each seeded from ``seed`` via SeedSequence spawning, so the
    same seed replays the same trajectories. ``options`` go to the suite (documented in
    docs/envs.md); Python envs also take ``workers`` (0: in-process; default: a probe env
    stepped 20 times here decides: in-process below IN_PROCESS_BELOW_S per step, else
    one worker per core), ``start_method``, ``poll_s`` and ``step_timeout``. Autoreset
    is same-step:
    ``first == terminated | truncated`` after every step (see :mod:`rtrl_rl.envs.vector_env`).
    Raises SpecError (a ValueError) for unknown suites, games, tasks or ids.
    """
    if num_envs < 1:
        raise ValueError(f"num_envs must be >= 1, got {num_envs}")
    parsed = parse_spec(spec)
    suite, name = parsed.suite, parsed.name
    if suite == "atari":
        from rtrl_rl.envs.atari_suite import AtariVector
        venv: VectorEnv = AtariVector(name, num_envs, seed, **options)
    elif suite == "procgen":
        from rtrl_rl.envs.procgen_suite import ProcgenVector
        venv = ProcgenVector(name, num_envs, seed, **options)
    elif suite == "memory":
        venv = _memory(name, num_envs, seed, options)
    elif suite == "dmlab":
        from rtrl_rl.envs.dmlab_suite import check_level, import_lab
        level = check_level(name)
        # fail here with the build instructions, not later inside every worker
        import_lab(options.get("dmlab_module", "deepmind_lab"), options.get("dmlab_path"))
        venv = _python_vector(EnvFactory("dmlab", level), num_envs, seed, options)
    elif suite == ENTRY_POINT:
        where, _, cls = spec.rpartition(":")
        # absolute, so workers find the file whatever their working directory
        target = f"{os.path.abspath(where)}:{cls}" if where.endswith(".py") else spec
        load_class(target)  # fail here, in the caller, rather than in every worker
        venv = _python_vector(EnvFactory("entry", target), num_envs, seed, options)
    else:
        env_options = {k: v for k, v in options.items() if k not in RUNNER_DEFAULTS}
        run_options = {k: v for k, v in options.items() if k in RUNNER_DEFAULTS}
        venv = _python_vector(gym_factory(suite, name, env_options), num_envs, seed,
                              run_options)
    venv.spec = spec
    return venv


def _memory(name: str, num_envs: int, seed: int | None, options: dict) -> VectorEnv:
    """Native numpy vector by default; ``workers=N`` runs MemoryEnv copies in workers."""
    from rtrl_rl.envs.memory_suite import TASKS

    if name not in TASKS:
        raise closest(name, list(TASKS), "memory task")
    if options.get("workers"):
        return _python_vector(EnvFactory("memory", name), num_envs, seed, dict(options))
    options.pop("workers", None)
    return TASKS[name](num_envs, seed, **options)
