"""The synchronous trainer: one process acts, collects segments and calls the learner.

Read it top to bottom: build the environment, the model and the learner from the config;
then repeat (collect one segment of T steps from every stream, update, report) until
the step budget is spent, greedy evaluation reaches the target success rate, or a stop
signal arrives (polled between updates); ``RunSession.run`` ends the run however it
stops (see ``docs/runtime.md``, "How a run stops"). The learner lives on
``train.device``; acting and evaluation run on the CPU. It is deterministic for a given
seed on CPU and is the reference path the process runtime (``rtrl_rl.runtime``) reuses
for its learner.
"""

from __future__ import annotations

import copy
import random
import time
from pathlib import Path

import numpy as np
import torch

from rtrl_rl import envs
from rtrl_rl.agents import ActorCritic, Learner, PPOLearner, SegmentLearner
from rtrl_rl.config import Config, resolve_device
from rtrl_rl.evaluation import evaluation_options, evaluation_seed, run_episodes
from rtrl_rl.rollout import Collector, allocate_segment
from rtrl_rl.stopping import TrainingInterrupted, WatchedEnv  # noqa: F401  (TrainingInterrupted: public here too)


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch so a CPU run is reproducible."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def default_run_dir(config: Config) -> Path:
    """``runs/<suite>-<name>-<timestamp>`` for runs that name no directory."""
    name = config.env.id.replace(":", "-").replace("/", "-")
    return Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


def make_env(config: Config, seed: int, num_envs: int | None = None, evaluation: bool = False) -> WatchedEnv:
    """The vectorised environment of a run (``evaluation`` selects the suite's test protocol).

    Its ``step`` and ``reset`` raise :class:`rtrl_rl.stopping.EnvHang` after
    ``runtime.step_timeout_s`` seconds, so a hung environment stops the run with a message.
    """
    options = dict(config.env.options)
    if config.env.imports:
        options["imports"] = list(config.env.imports)
    if evaluation:
        options = evaluation_options(config.env.id, options)
    venv = envs.make_vector(config.env.id, num_envs or config.env.num_envs, seed=seed, **options)
    return WatchedEnv(venv, config.runtime.step_timeout_s)


def learner_device(config: Config) -> torch.device:
    """The learner's device, ``train.device`` resolved on this machine (see ``config.resolve_device``).

    Raises ConfigError for an unknown or unavailable device, before anything is written.
    """
    return torch.device(resolve_device(config.train.device))


def build_agent(config: Config, observation_space, action_space,
                device: torch.device | str = "cpu") -> tuple[ActorCritic, SegmentLearner]:
    """The model (on ``device``) and its learner for the spaces of the run's environment:
    :class:`PPOLearner` for ``agent.algorithm=ppo``, else the V-trace :class:`Learner`."""
    model = ActorCritic(observation_space, action_space, config.agent).to(device)
    if config.agent.algorithm == "ppo":
        return model, PPOLearner(model, config.train, config.ppo, num_streams=config.env.num_envs)
    return model, Learner(model, config.train, num_streams=config.env.num_envs)


def evaluate_now(config: Config, model, episodes: int) -> dict:
    """Greedy evaluation on fresh environments with the suite's evaluation protocol."""
    n = max(1, min(episodes, config.env.num_envs))
    with make_env(config, evaluation_seed(config.train.seed), num_envs=n, evaluation=True) as venv:
        return run_episodes(venv, model, episodes, greedy=True)


def evaluate_on_cpu(config: Config, model, episodes: int) -> dict:
    """:func:`evaluate_now` with a CPU copy of ``model`` (the learner's may live on CUDA)."""
    if model.device.type != "cpu":
        model = copy.deepcopy(model).to("cpu")
    return evaluate_now(config, model, episodes)


def acting_model(model: ActorCritic) -> ActorCritic:
    """The model that acts in the environments: ``model`` itself on the CPU, else a CPU copy
    (environments hand over numpy arrays; acting on CUDA would sync at every step)."""
    return model if model.device.type == "cpu" else copy.deepcopy(model).to("cpu")


def prepare_run(config: Config, resume_from: str | Path | None = None) -> torch.device:
    """Check and fill in ``config.run_dir``, check the learner's device, seed everything and
    set the torch threads (shared by both trainers, the process runtime and the streaming
    trainer). Returns the learner's device. Raises ValueError when ``run_dir`` holds
    another run, ConfigError for an unknown or unavailable ``train.device``."""
    from rtrl_rl.session import check_run_dir

    run_dir = Path(config.run_dir) if config.run_dir else default_run_dir(config)
    check_run_dir(run_dir, resume_from)
    device = learner_device(config)
    config.run_dir = str(run_dir)
    seed_everything(config.train.seed)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    return device


def train(config: Config, resume_from: str | Path | None = None) -> dict:
    """Train the agent that ``config`` describes and return the run summary.

    Writes ``config.yaml``, TensorBoard events, checkpoints, ``model.pt`` and
    ``summary.json`` into ``config.run_dir`` (chosen and filled in when empty).
    ``resume_from`` names a run directory whose latest checkpoint to continue from.
    Raises ValueError when ``run_dir`` holds another run (see ``session.check_run_dir``),
    ConfigError for an unknown or unavailable ``train.device``. An exception during
    training (e.g. from the environment) propagates after a final checkpoint and
    ``summary.json`` (see ``RunSession.abort``).
    """
    from rtrl_rl.resume import restore_run
    from rtrl_rl.session import RunSession

    device = prepare_run(config, resume_from)
    venv = make_env(config, config.train.seed)
    try:
        model, learner = build_agent(config, venv.single_observation_space, venv.single_action_space, device)
        start = restore_run(resume_from, model, learner) if resume_from else {}
        session = RunSession(
            config, model, learner, start_step=start.get("step", 0),
            start_updates=start.get("update", 0), start_time_s=start.get("wall_s", 0.0),
        )
        venv.guard = session.signals.interruptible  # a Ctrl-C need not wait for a slow env step
        return session.run(lambda: _train_loop(config, venv, model, learner, session), evaluate_on_cpu)
    finally:
        venv.close()


def _train_loop(config: Config, venv, model, learner, session) -> str:
    """Collect, update, report until the budget or the target (see :func:`drive`)."""
    T, B = config.train.segment_length, venv.num_envs
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

    return drive(config, session, advance)


def drive(config: Config, session, advance) -> str:
    """Call ``advance() -> (env steps, losses, finished episodes)`` until the budget is spent,
    evaluation reaches the target or a stop signal arrives; record, checkpoint and evaluate
    after each call. Returns why it stopped. Shared by the segment trainer and the streaming
    trainer; a stop signal is noticed between calls, so the parameters, optimizer and
    counters always come from the same update."""
    monitor = session.monitor
    while monitor.step < config.train.total_steps:
        if stop := session.stop_requested():
            return stop
        steps, losses, episodes = advance()
        monitor.record_episodes(episodes)
        monitor.record_update(steps, losses)
        if session.after_update(evaluate_on_cpu):
            return "target"
    return "budget"
