"""The streaming trainer (``agent.algorithm=stream``): act, learn, repeat, one step at a time.

Each environment step of the B = ``env.num_envs`` streams is followed at once by one
update of :class:`rtrl_rl.agents.stream.StreamLearner` from that step (``docs/stream.md``).
Run directory, logs, evaluations, checkpoints and the summary are the synchronous
trainer's (:class:`rtrl_rl.session.RunSession`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from rtrl_rl.agents import ActorCritic
from rtrl_rl.agents.stream import StreamLearner, add_layer_norm, sparse_init_
from rtrl_rl.config import Config, ConfigError
from rtrl_rl.rollout import action_layout
from rtrl_rl.trainer import drive, evaluate_on_cpu, make_env, prepare_run


def build_stream_agent(config: Config, observation_space, action_space) -> tuple[ActorCritic, StreamLearner]:
    """The model with the stream-x ingredients that ``config.stream`` switches on, and its learner."""
    if not 0.0 <= config.stream.sparse_init < 1.0:
        raise ConfigError(f"stream.sparse_init must be in [0, 1), got {config.stream.sparse_init}")
    if config.stream.lr <= 0 or not 0.0 <= config.stream.trace_lambda <= 1.0:
        raise ConfigError("stream.lr must be > 0 and stream.trace_lambda in [0, 1]")
    model = ActorCritic(observation_space, action_space, config.agent)
    if config.stream.sparse_init > 0:
        sparse_init_(model, config.stream.sparse_init)
    if config.stream.layer_norm:
        add_layer_norm(model)
    return model, StreamLearner(model, config.stream, config.train.gamma, config.env.num_envs)


def _as_obs(obs):
    return {k: torch.as_tensor(v) for k, v in obs.items()} if isinstance(obs, dict) else torch.as_tensor(obs)


def _value_obs(batch):
    """The observation each stream's next value is taken from: the final one where truncated."""
    if not batch.truncated.any():
        return _as_obs(batch.obs)
    obs = batch.obs.copy() if not isinstance(batch.obs, dict) else {k: v.copy() for k, v in batch.obs.items()}
    for i in np.flatnonzero(batch.truncated):
        if i in batch.final_obs:
            if isinstance(obs, dict):
                for k in obs:
                    obs[k][i] = batch.final_obs[i][k]
            else:
                obs[i] = batch.final_obs[i]
    return _as_obs(obs)


def train_stream(config: Config, resume_from: str | Path | None = None) -> dict:
    """Train with stream AC(λ) and return the run summary (files as :func:`rtrl_rl.trainer.train`).

    ``resume_from`` names a run directory whose latest checkpoint to continue from: the
    parameters, the normalisers' statistics, the counters and the RNG states come back;
    the environments start new episodes, so the traces and the carry start from zero
    (:meth:`StreamLearner.restart_episodes`).
    """
    from rtrl_rl.resume import restore_run
    from rtrl_rl.session import RunSession

    if config.runtime.actors > 0:
        raise ConfigError("agent.algorithm=stream runs in one process: set runtime.actors=0")
    if config.train.device not in ("cpu", "auto"):
        raise ConfigError("agent.algorithm=stream runs on the CPU: set train.device=cpu")
    prepare_run(config, resume_from)
    venv = make_env(config, config.train.seed)
    try:
        model, learner = build_stream_agent(config, venv.single_observation_space, venv.single_action_space)
        start = restore_run(resume_from, model, learner, seed=config.train.seed) if resume_from else {}
        learner.restart_episodes()
        session = RunSession(config, model, learner, start_step=start.get("step", 0),
                             start_updates=start.get("update", 0), start_time_s=start.get("wall_s", 0.0))
        venv.guard = session.signals.interruptible  # a Ctrl-C need not wait for a slow env step
        return session.run(lambda: _loop(config, venv, learner, session), evaluate_on_cpu)
    finally:
        venv.close()


def _loop(config: Config, venv, learner: StreamLearner, session) -> str:
    B = venv.num_envs
    batch = venv.reset()
    act_shape, act_dtype = action_layout(venv.single_action_space)
    inputs = {"obs": _as_obs(batch.obs), "first": torch.as_tensor(batch.first, dtype=torch.bool),
              "prev_action": torch.zeros((B,) + act_shape, dtype=act_dtype), "prev_reward": torch.zeros(B)}

    def advance() -> tuple[int, dict, list]:
        action = learner.act(inputs["obs"], inputs["prev_action"], inputs["prev_reward"], inputs["first"])
        batch = venv.step(action.numpy())
        reward = torch.as_tensor(batch.reward, dtype=torch.float32)
        terminated = torch.as_tensor(batch.terminated, dtype=torch.bool)
        done = terminated | torch.as_tensor(batch.truncated, dtype=torch.bool)
        losses = learner.learn(reward, terminated, done, _value_obs(batch))
        first = torch.as_tensor(batch.first, dtype=torch.bool)
        keep = (~first).view((-1,) + (1,) * (action.dim() - 1))
        inputs.update(obs=_as_obs(batch.obs), first=first, prev_action=action * keep.to(action.dtype),
                      prev_reward=reward * ~first)
        return B, losses, batch.episodes

    return drive(config, session, advance)
