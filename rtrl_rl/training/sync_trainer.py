"""The synchronous trainer: one process acts, collects segments and calls the learner.

Read it top to bottom: build the run (``rtrl_rl.training.run_builder.build_run``: run directory,
environments, model, learner, restored state, session); then repeat (collect one segment
of T steps from every stream, update, report) until the step budget is spent, greedy
evaluation reaches the target success rate, or a stop signal arrives (polled between
updates); ``RunSession.run`` ends the run however it stops (see ``docs/runtime.md``,
"How a run stops"). The learner lives on ``train.device``; acting and evaluation run on
the CPU. It is deterministic for a given seed on CPU and is the reference path the process
runtime (``rtrl_rl.runtime``) reuses for its learner.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from rtrl_rl.agents import ActorCritic
from rtrl_rl.config import Config
from rtrl_rl.training.rollout import Collector, allocate_segment
from rtrl_rl.training.run_builder import Advance, Run, build_run


def acting_model(model: ActorCritic) -> ActorCritic:
    """The model that acts in the environments: ``model`` itself on the CPU, else a CPU copy
    (environments hand over numpy arrays; acting on CUDA would sync at every step)."""
    return model if model.device.type == "cpu" else copy.deepcopy(model).to("cpu")


def train(config: Config, resume_from: str | Path | None = None) -> dict:
    """Train the agent that ``config`` describes and return the run summary.

    Writes ``config.yaml``, TensorBoard events, checkpoints, ``model.pt`` and
    ``summary.json`` into ``config.run_dir`` (chosen and filled in when empty; see
    ``rtrl_rl.run.layout``). ``resume_from`` names a run directory whose latest checkpoint
    to continue from, or a checkpoint file. Raises ConfigError for a config that breaks a
    rule or an unknown or unavailable ``train.device``, ValueError when ``run_dir`` holds another run (see
    ``session.check_run_dir``). An exception during training (e.g. from the environment)
    propagates after a final checkpoint and ``summary.json`` (see ``RunSession.abort``).
    """
    with build_run(config, resume_from, with_env=True) as run:
        return run.train(collect_and_update(run))


def collect_and_update(run: Run) -> Advance:
    """The synchronous trainer's ``advance``: collect T steps of every stream of ``run.env``
    with the acting model, update the learner on them, refresh the acting copy."""
    venv, model, learner = run.env, run.model, run.learner
    T, B = run.config.train.segment_length, venv.num_envs
    acting = acting_model(model)
    collector = Collector(venv, acting, T)
    segment = allocate_segment(venv.single_observation_space, venv.single_action_space, T, B)
    stream_ids = torch.arange(B)

    def advance() -> tuple[int, dict, list]:
        collector.collect(segment)
        losses = learner.update(segment, stream_ids)
        if acting is not model:
            acting.load_state_dict(model.state_dict())
        return T * B, losses, collector.episodes.drain()

    return advance
