"""The checks behind ``rtrl-rl check-env``: gymnasium's env checker plus our own.

Exit codes: 0 all checks pass ("OK"), 1 problems found (listed), 2 unknown suite,
game, task or id (with the valid suites or the closest names), or spaces that cannot be
carried or learned (with what is supported).
"""

from __future__ import annotations

import time
import traceback
import warnings
from typing import Any, Callable

import gymnasium as gym
import numpy as np
from gymnasium.utils.env_checker import check_env as gym_check_env

from rtrl_rl.envs.make import make_vector
from rtrl_rl.envs.spec import ENTRY_POINT, SpaceError, SpecError, parse_spec
from rtrl_rl.envs.vector_env import StepBatch, VectorEnv


class Problems:
    """Problem messages, each kept once with the step it first appeared at and a count."""

    def __init__(self) -> None:
        self.items: dict[str, list[Any]] = {}

    def add(self, message: str, step: int | None = None) -> None:
        """Record ``message`` (seen at ``step``); repeats only raise its count."""
        entry = self.items.setdefault(message, [step, 0])
        entry[1] += 1

    def lines(self) -> list[str]:
        """One line per distinct problem, with where it first appeared and how often."""
        out = []
        for msg, (step, count) in self.items.items():
            where = "" if step is None else f" (first at step {step}, {count}x)"
            out.append(f"- {msg}{where}")
        return out


def _single_env(spec: str, options: dict[str, Any]) -> gym.Env | None:
    """One plain gymnasium.Env for the spec, for gymnasium's checker (None: native suite)."""
    from rtrl_rl.envs.gym_suite import EnvFactory, gym_factory
    from rtrl_rl.envs.minatar_suite import GymnasiumSeeding

    parsed = parse_spec(spec)
    env_opts = {k: v for k, v in options.items()
                if k not in ("workers", "start_method", "poll_s", "step_timeout")}
    if parsed.suite == "memory":
        return EnvFactory("memory", parsed.name, env_opts)()
    if parsed.suite in ("gym", "popgym", "minigrid"):
        return gym_factory(parsed.suite, parsed.name, env_opts)().unwrapped
    if parsed.suite == "minatar":  # with the wrapper that gives it gymnasium's seeding contract
        env = gym_factory(parsed.suite, parsed.name, env_opts)()
        return GymnasiumSeeding(env.unwrapped)
    if parsed.suite == ENTRY_POINT:
        return EnvFactory("entry", spec, env_opts)()
    return None


def gymnasium_checker(spec: str, options: dict[str, Any], problems: Problems,
                      say: Callable[[str], None]) -> None:
    """Run gymnasium's check_env on one env; its errors are problems, warnings notes."""
    try:
        env = _single_env(spec, options)
    except Exception as err:  # the vector built, so this is a note, not a verdict
        say(f"gymnasium checker: could not build a single env ({err})")
        return
    if env is None:
        say("gymnasium checker: skipped (native vectorised backend, no single env)")
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            gym_check_env(env, skip_render_check=True)
            say("gymnasium checker: passed")
        except Exception as err:
            problems.add(f"gymnasium checker: {type(err).__name__}: {err}")
        finally:
            env.close()
    for w in caught:
        say(f"gymnasium checker warning: {w.message}")


def _leaves(obs: Any, space: gym.Space):
    if isinstance(space, gym.spaces.Dict):
        return [(k, obs[k], space[k]) for k in space.spaces]
    return [("obs", obs, space)]


def check_batch(venv: VectorEnv, batch: StepBatch, step: int, problems: Problems) -> None:
    """Our checks of one StepBatch: spaces, dtypes, finiteness and flag consistency."""
    space = venv.single_observation_space
    for key, value, sub in _leaves(batch.obs, space):
        if np.asarray(value).dtype != sub.dtype:
            problems.add(f"{key} dtype {np.asarray(value).dtype} != space dtype {sub.dtype}",
                         step)
    for i in range(venv.num_envs):
        if not space.contains(_index(batch.obs, i)):
            problems.add("observation outside the observation space", step)
    if batch.reward.dtype != np.float32 or not np.isfinite(batch.reward).all():
        problems.add("rewards must be finite float32", step)
    done = batch.terminated | batch.truncated
    if not np.array_equal(batch.first, done) and step > 0:
        problems.add("first != terminated | truncated", step)
    if step == 0 and not batch.first.all():
        problems.add("reset did not set first for every env", step)
    if sorted(e.env for e in batch.episodes) != list(np.flatnonzero(done)) and step > 0:
        problems.add("episode statistics do not match the ended episodes", step)
    for i, final in batch.final_obs.items():
        if not done[i]:
            problems.add("final_obs given for an env whose episode did not end", step)
        elif not space.contains(final):
            problems.add("final observation outside the observation space", step)


def _index(obs: Any, i: int) -> Any:
    return {k: v[i] for k, v in obs.items()} if isinstance(obs, dict) else obs[i]


def rollout(venv: VectorEnv, steps: int, seed: int, problems: Problems) -> tuple[float, int]:
    """Random actions for ``steps`` steps with our checks; returns (steps/s, episodes)."""
    actions = gym.vector.utils.batch_space(venv.single_action_space, venv.num_envs)
    actions.seed(seed)
    check_batch(venv, venv.reset(), 0, problems)
    stepping, episodes = 0.0, 0
    for t in range(1, steps + 1):
        a = actions.sample()
        start = time.perf_counter()
        batch = venv.step(a)
        stepping += time.perf_counter() - start
        episodes += len(batch.episodes)
        check_batch(venv, batch, t, problems)
    return steps * venv.num_envs / max(stepping, 1e-9), episodes


def run_check(spec: str, num_envs: int = 2, steps: int = 1000, seed: int = 0,
              options: dict[str, Any] | None = None,
              say: Callable[[str], None] = print,
              validate: Callable[[gym.Space, gym.Space], None] | None = None) -> int:
    """Build ``spec``, show it, run all checks; return the exit code (0, 1 or 2).

    ``validate(observation_space, action_space)`` raises ValueError for spaces the caller
    cannot use (the agents'; see ``rtrl_rl.agents.spaces``): exit 2 before any rollout.
    """
    options = dict(options or {})
    try:
        venv = make_vector(spec, num_envs, seed, **dict(options))
    except (SpecError, SpaceError) as err:
        say(f"error: {err}")
        return 2
    except Exception:
        say(f"error: could not build {spec!r}:\n{traceback.format_exc()}")
        return 1
    problems = Problems()
    with venv:
        say(f"spec: {spec}\nnum_envs: {num_envs}\nobservation space: "
            f"{venv.single_observation_space}\naction space: {venv.single_action_space}")
        say("options: " + ", ".join(f"{k}={v!r}" for k, v in venv.options.items()))
        try:
            if validate is not None:
                validate(venv.single_observation_space, venv.single_action_space)
        except ValueError as err:
            say(f"error: {err}")
            return 2
        gymnasium_checker(spec, options, problems, say)
        try:
            sps, episodes = rollout(venv, steps, seed, problems)
            say(f"random actions: {steps} steps x {num_envs} envs, {episodes} episodes "
                f"ended, {sps:,.0f} steps/s")
        except Exception:
            problems.add(f"stepping raised:\n{traceback.format_exc()}")
    if problems.items:
        say("problems:\n" + "\n".join(problems.lines()))
        return 1
    say("OK")
    return 0
