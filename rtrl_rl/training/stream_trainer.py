"""The streaming trainer (``agent.algorithm=stream``): act, learn, repeat, one step at a time.

Each environment step of the B = ``env.num_envs`` streams is followed at once by one
update of :class:`rtrl_rl.agents.stream_learner.StreamLearner` from that step (``docs/stream.md``).
The run is built as every trainer's (``rtrl_rl.training.run_builder.build_run``: run directory,
logs, evaluations, checkpoints and the summary of :class:`rtrl_rl.run.session.RunSession`);
only ``advance`` is its own: one step and one update.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from rtrl_rl.agents import ActorCritic
from rtrl_rl.agents.stream_learner import StreamLearner, add_layer_norm, sparse_init_
from rtrl_rl.config import Config
from rtrl_rl.training.rollout import action_layout
from rtrl_rl.training.run_builder import Advance, Run, build_run


def build_stream_agent(config: Config, observation_space, action_space,
                       device: torch.device | str = "cpu") -> tuple[ActorCritic, StreamLearner]:
    """The model with the stream-x ingredients that ``config.stream`` switches on, and its learner.

    Both live on the CPU whatever ``device`` says (the run builder passes the learner's
    device; ``train.device=auto`` may resolve to CUDA): stream AC(λ) learns one step at a
    time, where moving every step to a GPU costs more than it saves.
    """
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
    """Train with stream AC(λ) and return the run summary (files as :func:`rtrl_rl.training.sync_trainer.train`).

    ``resume_from`` names a run directory (or a checkpoint file) to continue from: the
    parameters, the normalisers' statistics, the counters and the RNG states come back;
    the environments start new episodes, so the traces and the carry start from zero
    (:meth:`StreamLearner.restart_episodes`).
    """
    with build_run(config, resume_from, with_env=True, agent=build_stream_agent) as run:
        run.learner.restart_episodes()
        return run.train(step_and_learn(run))


def step_and_learn(run: Run) -> Advance:
    """The stream trainer's ``advance``: one action of every stream of ``run.env``, one step,
    one update of the learner from that step."""
    venv, learner = run.env, run.learner
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

    return advance
