"""Peer baselines on the same environment ids: SB3-contrib ``RecurrentPPO`` (``MlpLstmPolicy``).

Optional: install with ``pip install "rtrl-rl[peers]"``. The adapter builds single gymnasium
envs of the same ids the library trains on (``popgym:<Name>`` through the same resolver,
``memory:recall`` as :class:`rtrl_rl.envs.memory_suite.MemoryEnv`), vectorises them with SB3's
``DummyVecEnv`` and trains RecurrentPPO with its defaults, except ``n_envs`` streams (SB3's
default is one). It records the same training curve as the library's runs (per rollout, the
mean return of the episodes that ended in it, with step and wall time), so MMER is computed
by the same function, plus a greedy evaluation: at the end, and on the memory task every
``eval_interval_steps`` to measure the wall time to a target greedy success.
"""

from __future__ import annotations

import importlib.util
import statistics
import time
from importlib import metadata
from typing import Any

import gymnasium as gym
import numpy as np

#: what the page and the JSON record of the peer's settings
N_ENVS = 8


def peer_versions() -> dict:
    """The versions of the peer's libraries, where installed. Read from the installed
    packages' metadata, not by importing them: stable-baselines3 imports the old ``gym``,
    whose banner would otherwise open every invocation's output."""
    try:
        return {name: metadata.version(dist) for name, dist in
                (("sb3_contrib", "sb3-contrib"), ("stable_baselines3", "stable-baselines3"))}
    except metadata.PackageNotFoundError:
        return {}


def sb3_missing() -> str | None:
    """Why the peer cannot run here (None when it can): the extra to install."""
    if importlib.util.find_spec("sb3_contrib") is None:
        return "sb3-contrib is not installed; install it with pip install \"rtrl-rl[peers]\""
    return None


def make_env(spec: str, options: dict | None = None) -> gym.Env:
    """One gymnasium env for ``spec`` (``popgym:<Name>`` or ``memory:<task>``), Monitor-wrapped.

    A Tuple observation (POPGym Autoencode), which SB3's policies do not take, and a
    MultiDiscrete one (CountRecall, Concentration: SB3 2.9 sizes its LSTM input with a numpy
    integer there, which torch refuses) are flattened by gymnasium's ``FlattenObservation``
    (the concatenated one-hots SB3 and the library's agent would build themselves).
    """
    from stable_baselines3.common.monitor import Monitor

    from rtrl_rl.envs.spec import parse_spec

    parsed = parse_spec(spec)
    if parsed.suite == "popgym":
        from rtrl_rl.envs.popgym_suite import resolve_popgym
        env = gym.make(resolve_popgym(parsed.name), **(options or {}))
    elif parsed.suite == "memory":
        from rtrl_rl.envs.memory_suite import MemoryEnv
        env = MemoryEnv(parsed.name, **(options or {}))
    else:
        raise ValueError(f"the peer adapter runs popgym: and memory: specs, got {spec!r}")
    if isinstance(env.observation_space, (gym.spaces.Tuple, gym.spaces.MultiDiscrete)):
        env = gym.wrappers.FlattenObservation(env)
    return Monitor(env)


def _vec(spec: str, options: dict | None, n: int, seed: int):
    from stable_baselines3.common.vec_env import DummyVecEnv

    venv = DummyVecEnv([lambda: make_env(spec, options) for _ in range(n)])
    venv.seed(seed)
    return venv


def greedy_episodes(model, spec: str, options: dict | None, episodes: int, seed: int) -> dict:
    """Play ``episodes`` episodes with deterministic actions and the LSTM state carried.

    Returns mean return and, where the env reports ``info["success"]``, the success rate.
    """
    venv = _vec(spec, options, min(episodes, N_ENVS), seed)
    obs = venv.reset()
    state, starts = None, np.ones(venv.num_envs, dtype=bool)
    returns, successes = [], []
    while len(returns) < episodes:
        action, state = model.predict(obs, state=state, episode_start=starts, deterministic=True)
        obs, _, dones, infos = venv.step(action)
        starts = dones
        for done, info in zip(dones, infos):
            if done:
                returns.append(float(info["episode"]["r"]))
                if "success" in info:
                    successes.append(float(info["success"]))
    venv.close()
    out = {"episodes": len(returns), "mean_return": statistics.fmean(returns)}
    if successes:
        out["success_rate"] = statistics.fmean(successes)
    return out


def run_recurrent_ppo(spec: str, total_steps: int, seed: int = 0, options: dict | None = None,
                      eval_episodes: int = 256, eval_interval_steps: int = 0, target_success: float = 0.0,
                      threads: int = 1, wall_budget_s: float = 0.0, **ppo_kwargs: Any) -> dict:
    """Train RecurrentPPO (MlpLstmPolicy, SB3-contrib defaults) on ``spec`` for ``total_steps``.

    Returns steps, wall_s, sps, ``curve`` [(step, wall s, mean return per rollout)], the
    greedy ``evaluations`` [{step, wall_s, mean_return, success_rate?}] and, with
    ``target_success > 0``, ``time_to_target_s`` (None if never reached; training stops
    when reached). ``wall_budget_s > 0`` also stops training once that much wall time has
    passed (the equal-wall-time comparison; the final greedy evaluation comes after it).
    ``ppo_kwargs`` override RecurrentPPO's defaults.
    """
    import torch
    from sb3_contrib import RecurrentPPO
    from stable_baselines3.common.callbacks import BaseCallback

    torch.set_num_threads(threads)
    start = time.perf_counter()
    record: dict = {"curve": [], "evaluations": [], "time_to_target_s": None}
    pending: list[float] = []

    class Recorder(BaseCallback):
        """Episode returns per rollout; periodic greedy evaluations; stop at the target."""

        next_eval = eval_interval_steps

        def _on_step(self) -> bool:
            pending.extend(float(i["episode"]["r"]) for i, d in zip(self.locals["infos"], self.locals["dones"])
                           if d and "episode" in i)
            out_of_time = wall_budget_s > 0 and time.perf_counter() - start >= wall_budget_s
            return record["time_to_target_s"] is None and not out_of_time

        def _on_rollout_end(self) -> None:
            if pending:
                record["curve"].append((self.num_timesteps, round(time.perf_counter() - start, 3),
                                        statistics.fmean(pending)))
                pending.clear()
            if eval_interval_steps and self.num_timesteps >= self.next_eval:
                self.next_eval += eval_interval_steps
                evaluate(self.model, self.num_timesteps)

    def evaluate(model, step: int) -> None:
        result = greedy_episodes(model, spec, options, eval_episodes, seed + 10_000)
        result.update(step=step, wall_s=round(time.perf_counter() - start, 2))
        record["evaluations"].append(result)
        if target_success > 0 and result.get("success_rate", 0.0) >= target_success:
            record["time_to_target_s"] = result["wall_s"]

    venv = _vec(spec, options, N_ENVS, seed)
    model = RecurrentPPO("MlpLstmPolicy", venv, seed=seed, device="cpu", verbose=0, **ppo_kwargs)
    model.learn(total_timesteps=total_steps, callback=Recorder())
    steps = int(model.num_timesteps)
    train_wall = time.perf_counter() - start
    if pending:  # episodes of a rollout cut short by the wall budget or the target
        record["curve"].append((steps, round(train_wall, 3), statistics.fmean(pending)))
    if record["time_to_target_s"] is None and not (record["evaluations"] and record["evaluations"][-1]["step"] == steps):
        evaluate(model, steps)
    venv.close()
    return {"steps": steps, "wall_s": round(time.perf_counter() - start, 2), "sps": round(steps / train_wall, 1),
            "n_envs": N_ENVS, "ppo_kwargs": ppo_kwargs, "wall_budget_s": wall_budget_s, **record}
