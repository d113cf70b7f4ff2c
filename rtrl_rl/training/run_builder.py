"""One run setup for every trainer, and the one loop they all run.

:func:`build_run` turns (config, resume directory) into a ready :class:`Run`: the run
directory checked and chosen, the learner's device, the observation and action spaces,
the model and its learner, the state restored from the latest checkpoint, and the
:class:`~rtrl_rl.run.session.RunSession` that owns the directory. :meth:`Run.train` then runs
:func:`drive`, the loop of every trainer: until the step budget is spent, the target is
reached or a stop is requested, call ``advance()`` (one update from whatever produced
segments), record it, checkpoint and evaluate. The trainers differ only in ``advance``:
the synchronous trainer collects a segment in-process (``rtrl_rl.training.sync_trainer``), the stream
trainer takes one step (``rtrl_rl.training.stream_trainer``), the actor-learner backends take
the actors' segments from a transport (``rtrl_rl.runtime.learn_loop``).
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from rtrl_rl import envs
from rtrl_rl.agents import ActorCritic, Learner, PPOLearner, SegmentLearner
from rtrl_rl.config import Config, ConfigError, check, check_env_imports, device_problem
from rtrl_rl.envs.values import MAX_ABS_REWARD, CheckedValues
from rtrl_rl.run.layout import RunPaths
from rtrl_rl.run.session import RunSession, check_run_dir
from rtrl_rl.run.stopping import WatchedEnv
from rtrl_rl.training.episodes import evaluation_options, evaluation_seed, run_episodes

#: ``advance() -> (env steps, metrics, finished episodes)`` for one update, or None when
#: nothing arrived yet (the loop then checks the budget and the stop signals again)
Advance = Callable[[], "tuple[int, dict, list] | None"]
#: ``(config, observation space, action space, learner device) -> (model, learner)``
AgentBuilder = Callable[[Config, spaces.Space, spaces.Space, torch.device], tuple[ActorCritic, Any]]


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch so a CPU run is reproducible."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def env_seed(seed: int, start_step: int = 0) -> int:
    """Seed of a run's training environments: ``train.seed`` itself for a fresh run; for a
    run resumed at ``start_step``, a seed drawn from both, so the resumed run meets new
    episodes instead of replaying its first ones (actors salt their seeds with the start
    step in the same way: ``runtime.actor.actor_seed``)."""
    if not start_step:
        return seed
    return int(np.random.SeedSequence([seed % 2**32, int(start_step)]).generate_state(1)[0] & 0x7FFFFFFF)


def default_run_dir(config: Config) -> Path:
    """``runs/<suite>-<name>-<timestamp>`` for runs that name no directory."""
    name = config.env.id.replace(":", "-").replace("/", "-")
    return Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


def make_env(config: Config, seed: int, num_envs: int | None = None, evaluation: bool = False,
             first_stream: int = 0, where: str = "") -> WatchedEnv:
    """The vectorised environment of a run (``evaluation`` selects the suite's test protocol).

    Its ``step`` and ``reset`` raise :class:`rtrl_rl.run.stopping.EnvHang` after
    ``runtime.step_timeout_s`` seconds, so a hung environment stops the run with a message,
    and :class:`rtrl_rl.envs.values.NonFiniteValue` on a NaN or infinite observation or
    reward (or one beyond :func:`reward_limit`). Messages number its streams from
    ``first_stream`` and add ``where`` (an actor's streams are a slice of the run's).
    Raises ConfigError for ``env.imports`` with a suite that takes none.
    """
    check_env_imports(config)
    options = dict(config.env.options)
    if config.env.imports:
        options["imports"] = list(config.env.imports)
    if evaluation:
        options = evaluation_options(config.env.id, options)
    venv = envs.make_vector(config.env.id, num_envs or config.env.num_envs, seed=seed, **options)
    streams = range(first_stream, first_stream + venv.num_envs)
    checked = CheckedValues(venv, streams, reward_limit(config), "evaluation" if evaluation else where)
    return WatchedEnv(checked, config.runtime.step_timeout_s)


def reward_limit(config: Config) -> float:
    """The largest |reward| a run takes: any finite one where the segment learner clips rewards
    (``train.reward_clip > 0``), else :data:`~rtrl_rl.envs.values.MAX_ABS_REWARD` (the
    streaming learner never clips; see ``docs/configs.md``, "Rewards")."""
    clips = config.train.reward_clip > 0 and config.agent.algorithm != "stream"
    return math.inf if clips else MAX_ABS_REWARD


def resolve_device(name: str) -> str:
    """The torch device that the ``train.device`` value ``name`` means on this machine.

    ``auto`` is ``cuda`` when CUDA is available, else ``cpu``. Raises ConfigError for a
    spelling other than auto, cpu, cuda, cuda:N, or a CUDA device this machine lacks, so a
    run never trains silently on another device than the one asked for.
    """
    problem = device_problem(name)
    if problem:
        raise ConfigError(f"config key 'train.device' {problem}, got {name!r}")
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"train.device={name}, but CUDA is not available on this machine; "
                              "use train.device=cpu or auto")
        index = int(name[5:] or 0)
        if index >= torch.cuda.device_count():
            raise ConfigError(f"train.device={name}, but this machine has {torch.cuda.device_count()} "
                              "CUDA device(s)")
    return name


def learner_device(config: Config) -> torch.device:
    """The learner's device, ``train.device`` resolved on this machine (see :func:`resolve_device`).

    Raises ConfigError for an unknown or unavailable device, before anything is written.
    """
    return torch.device(resolve_device(config.train.device))


def build_agent(config: Config, observation_space: spaces.Space, action_space: spaces.Space,
                device: torch.device | str = "cpu") -> tuple[ActorCritic, SegmentLearner]:
    """The model (on ``device``) and its learner for the spaces of the run's environment:
    :class:`PPOLearner` for ``agent.algorithm=ppo``, else the V-trace :class:`Learner`.
    Raises ValueError for ``agent.algorithm=stream``, whose agent is the stream trainer's: a
    segment learner in its place would train another algorithm under its name."""
    if config.agent.algorithm == "stream":
        raise ValueError("agent.algorithm=stream is trained by the stream trainer "
                         "(rtrl_rl.runtime.train_run picks it), not by a segment learner")
    model = ActorCritic(observation_space, action_space, config.agent).to(device)
    if config.agent.algorithm == "ppo":
        return model, PPOLearner(model, config.train, config.ppo, num_streams=config.env.num_envs)
    return model, Learner(model, config.train, num_streams=config.env.num_envs)


def evaluate_now(config: Config, model: ActorCritic, episodes: int) -> dict:
    """Greedy evaluation on fresh environments with the suite's evaluation protocol."""
    n = max(1, min(episodes, config.env.num_envs))
    with make_env(config, evaluation_seed(config.train.seed), num_envs=n, evaluation=True) as venv:
        return run_episodes(venv, model, episodes, greedy=True)


def evaluate_on_cpu(config: Config, model: ActorCritic, episodes: int) -> dict:
    """:func:`evaluate_now` with a CPU copy of ``model`` (the learner's may live on CUDA)."""
    if model.device.type != "cpu":
        model = copy.deepcopy(model).to("cpu")
    return evaluate_now(config, model, episodes)


def prepare_run(config: Config, resume_from: str | Path | None = None) -> torch.device:
    """Check and fill in ``config.run_dir``, check the learner's device, seed everything and
    set the torch threads. Returns the learner's device. Raises ValueError when ``run_dir``
    holds another run, ConfigError for an unknown or unavailable ``train.device``."""
    run_dir = Path(config.run_dir) if config.run_dir else default_run_dir(config)
    check_run_dir(run_dir, resume_from)
    device = learner_device(config)
    config.run_dir = str(run_dir)
    seed_everything(config.train.seed)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    return device


@dataclass(frozen=True)
class Start:
    """Where a run starts: step 0, or the counters of the checkpoint it resumes from."""

    step: int = 0
    update: int = 0
    wall_s: float = 0.0


@dataclass
class Run:
    """A run ready to train: everything :func:`build_run` made. ``env`` holds the run's
    environments when this process acts itself (``with_env=True``), else None."""

    config: Config
    paths: RunPaths
    device: torch.device
    observation_space: spaces.Space
    action_space: spaces.Space
    model: ActorCritic
    learner: Any
    start: Start
    session: RunSession
    env: WatchedEnv | None = None

    def train(self, advance: Advance, around: Callable[[], AbstractContextManager] | None = None) -> dict:
        """Run :func:`drive` with ``advance`` inside ``around()`` (what the loop needs running,
        e.g. the actors, stopped before the final evaluation and checkpoint), end the run
        however it stops (``RunSession.run``) and return its summary."""
        def loop() -> str:
            with around() if around is not None else nullcontext():
                return drive(self.config, self.session, advance)

        return self.session.run(loop, evaluate_on_cpu)

    def close(self) -> None:
        """Close the run's environments (if it holds any)."""
        if self.env is not None:
            self.env.close()

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def probe_spaces(config: Config) -> tuple[spaces.Space, spaces.Space]:
    """Observation and action space of the run's environment, from a one-stream probe."""
    with make_env(config, config.train.seed, num_envs=1) as venv:
        return venv.single_observation_space, venv.single_action_space


def restore(resume_from: str | Path | None, model: ActorCritic, learner: Any, seed: int,
            payload: dict | None = None) -> Start:
    """A fresh run's start, or the counters of the checkpoint ``resume_from`` stands for (a
    run directory's latest, or a checkpoint file; ``payload``: that checkpoint, already
    loaded) after loading it into ``model`` and ``learner`` (``seed``: the run's ``train.seed``;
    the stored RNG streams continue when it is the stored one, see ``resume.restore_run``).

    Carries are not restored: the environments restart, so every stream's first segment
    starts new episodes (``first = True``) and resets its carry.
    """
    if resume_from is None:
        return Start()
    from rtrl_rl.run.resume import restore_run

    counters = restore_run(resume_from, model, learner, seed=seed, payload=payload)
    return Start(counters["step"], counters["update"], counters["wall_s"])


def build_run(config: Config, resume_from: str | Path | None = None, *, with_env: bool = False,
              agent: AgentBuilder = build_agent) -> Run:
    """The :class:`Run` that ``config`` describes, continued from ``resume_from`` (a run
    directory, or a checkpoint file) when given.

    ``with_env``: open the run's ``env.num_envs`` environments here (the trainers that act
    in this process) and take the spaces from them; else from a one-stream probe. A resumed
    run's environments are seeded by :func:`env_seed` from the checkpoint's step, so they
    start new episodes rather than the run's first ones.
    ``agent`` builds the model and learner (default :func:`build_agent`: V-trace or PPO).
    Raises ConfigError for a config that breaks a rule of ``rtrl_rl.config`` (one built in
    code, too) or an unavailable device, ValueError when ``run_dir`` holds another run,
    CheckpointError when the checkpoint does not fit; nothing is written before these checks.
    """
    check(config)
    device = prepare_run(config, resume_from)
    payload = None
    if resume_from is not None:
        from rtrl_rl.run.checkpoint import load_checkpoint  # loaded first: the env seeds depend on its step

        payload = load_checkpoint(resume_from)
    seed = env_seed(config.train.seed, payload["step"] if payload else 0)
    env = make_env(config, seed) if with_env else None
    try:
        obs_space, act_space = ((env.single_observation_space, env.single_action_space) if env is not None
                                else probe_spaces(config))
        model, learner = agent(config, obs_space, act_space, device)
        start = restore(resume_from, model, learner, config.train.seed, payload)
        session = RunSession(config, model, learner, start_step=start.step, start_updates=start.update,
                             start_time_s=start.wall_s)
    except BaseException:
        if env is not None:
            env.close()
        raise
    if env is not None:
        env.guard = session.signals.interruptible  # a Ctrl-C need not wait for a slow env step
    return Run(config, session.paths, device, obs_space, act_space, model, learner, start, session, env)


def drive(config: Config, session: RunSession, advance: Advance) -> str:
    """Call ``advance()`` until the budget is spent, evaluation reaches the target or a stop
    signal arrives; record, checkpoint and evaluate after each update. Returns why it
    stopped (``budget``, ``target`` or ``interrupted (REASON)``). A stop signal is noticed
    between calls, so the parameters, optimizer and counters always come from the same update."""
    monitor = session.monitor
    while monitor.step < config.train.total_steps:
        if stop := session.stop_requested():
            return stop
        done = advance()
        if done is None:
            continue
        steps, metrics, episodes = done
        monitor.record_episodes(episodes)
        monitor.record_update(steps, metrics)
        if session.after_update(evaluate_on_cpu):
            return "target"
    return "budget"
