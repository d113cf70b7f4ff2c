"""The synchronous trainer: one process acts, collects segments and calls the learner.

Read it top to bottom: build the environment, the model and the learner from the config;
then repeat (collect one segment of T steps from every stream, update, report) until
the step budget is spent or greedy evaluation reaches the target success rate. It is
deterministic for a given seed on CPU and is the reference path the process runtime
(``rtrl_rl.runtime``) reuses for its learner.
"""

from __future__ import annotations

import random
import signal
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from rtrl_rl import envs
from rtrl_rl.agents import ActorCritic, Learner
from rtrl_rl.config import Config
from rtrl_rl.evaluation import evaluation_options, evaluation_seed, run_episodes
from rtrl_rl.rollout import Collector, allocate_segment


class TrainingInterrupted(Exception):
    """Raised inside the loop by SIGINT/SIGTERM so the run can save and exit cleanly."""


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch so a CPU run is reproducible."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def default_run_dir(config: Config) -> Path:
    """``runs/<suite>-<name>-<timestamp>`` for runs that name no directory."""
    name = config.env.id.replace(":", "-").replace("/", "-")
    return Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


def make_env(config: Config, seed: int, num_envs: int | None = None, evaluation: bool = False):
    """The vectorised environment of a run (``evaluation`` selects the suite's test protocol)."""
    options = dict(config.env.options)
    if config.env.imports:
        options["imports"] = list(config.env.imports)
    if evaluation:
        options = evaluation_options(config.env.id, options)
    return envs.make_vector(config.env.id, num_envs or config.env.num_envs, seed=seed, **options)


def learner_device(config: Config) -> torch.device:
    """The device named by ``train.device`` ("auto" picks CUDA when available)."""
    name = config.train.device
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def build_agent(config: Config, observation_space, action_space) -> tuple[ActorCritic, Learner]:
    """The model and its learner for the spaces of the run's environment."""
    model = ActorCritic(observation_space, action_space, config.agent)
    learner = Learner(model, config.train, num_streams=config.env.num_envs)
    return model, learner


@contextmanager
def stop_on_signals():
    """Turn SIGINT and SIGTERM into :class:`TrainingInterrupted` for the duration."""

    def handler(signum, frame):
        raise TrainingInterrupted(signal.Signals(signum).name)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def evaluate_now(config: Config, model, episodes: int) -> dict:
    """Greedy evaluation on fresh environments with the suite's evaluation protocol."""
    n = max(1, min(episodes, config.env.num_envs))
    with make_env(config, evaluation_seed(config.train.seed), num_envs=n, evaluation=True) as venv:
        return run_episodes(venv, model, episodes, greedy=True)


def prepare_run(config: Config, resume_from: str | Path | None = None) -> None:
    """Check and fill in ``config.run_dir``, seed everything and set the torch threads
    (shared by the trainers and the process runtime)."""
    from rtrl_rl.session import check_run_dir

    run_dir = Path(config.run_dir) if config.run_dir else default_run_dir(config)
    check_run_dir(run_dir, resume_from)
    config.run_dir = str(run_dir)
    seed_everything(config.train.seed)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)


def train(config: Config, resume_from: str | Path | None = None) -> dict:
    """Train the agent that ``config`` describes and return the run summary.

    Writes ``config.yaml``, TensorBoard events, checkpoints, ``model.pt`` and
    ``summary.json`` into ``config.run_dir`` (chosen and filled in when empty).
    ``resume_from`` names a run directory whose latest checkpoint to continue from.
    Raises ValueError when ``run_dir`` holds another run (see ``session.check_run_dir``).
    """
    from rtrl_rl.resume import restore_run
    from rtrl_rl.session import RunSession

    prepare_run(config, resume_from)
    venv = make_env(config, config.train.seed)
    try:
        model, learner = build_agent(config, venv.single_observation_space, venv.single_action_space)
        start = restore_run(resume_from, model, learner) if resume_from else {}
        session = RunSession(
            config, model, learner, start_step=start.get("step", 0),
            start_updates=start.get("update", 0), start_time_s=start.get("wall_s", 0.0),
        )
        return _train_loop(config, venv, model, learner, session)
    finally:
        venv.close()


def _train_loop(config: Config, venv, model, learner, session) -> dict:
    T, B = config.train.segment_length, venv.num_envs
    collector = Collector(venv, model, T)
    segment = allocate_segment(venv.single_observation_space, venv.single_action_space, T, B)
    stream_ids = torch.arange(B)

    def advance() -> tuple[int, dict, list]:
        collector.collect(segment)
        losses = learner.update(segment, stream_ids)
        return T * B, losses, collector.episodes.drain()

    return drive(config, session, advance)


def drive(config: Config, session, advance) -> dict:
    """Call ``advance() -> (env steps, losses, finished episodes)`` until the budget is spent
    or evaluation reaches the target; record, checkpoint and evaluate around each call.
    Shared by the segment trainer and the streaming trainer. Returns the run summary."""
    monitor = session.monitor
    next_eval = monitor.step + config.log.eval_interval_steps
    reason = "budget"
    try:
        with stop_on_signals():
            while monitor.step < config.train.total_steps:
                steps, losses, episodes = advance()
                monitor.record_episodes(episodes)
                monitor.record_update(steps, losses)
                session.maybe_checkpoint()
                if monitor.step >= next_eval:
                    next_eval += config.log.eval_interval_steps
                    if session.evaluate_and_check(evaluate_now):
                        reason = "target"
                        break
    except TrainingInterrupted as stop:
        reason = f"interrupted ({stop})"
    return session.finish(reason, evaluate_now)
