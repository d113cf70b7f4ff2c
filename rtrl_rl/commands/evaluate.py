"""``rtrl-rl evaluate PATH``: play fresh episodes with a trained agent and report returns.

PATH is a run directory (its ``model.pt``, the latest checkpoint) or a checkpoint file.
The suite's evaluation protocol applies (``rtrl_rl.envs.evaluation_options``): Atari full
episodes with sticky actions and the raw score, ProcGen's test levels, success rates
for memory tasks. The recurrent state is carried through each episode and reset at
its start, exactly as in training.

The environment comes from the checkpoint's stored config. Where that config names code
(an entry point ``file.py:Env`` or ``module:Env``, ``env.imports``), nothing is imported
unless the user names the environment with ``--env SPEC`` or passes ``--trust-config``
(see ``rtrl_rl.run.trust``).
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch

from rtrl_rl.config import ConfigError, build_config
from rtrl_rl.run.checkpoint import CheckpointError, load_checkpoint, resolve_checkpoint
from rtrl_rl.run.resume import check_spaces
from rtrl_rl.run.trust import require_trust


def register(subparsers) -> None:
    """Add the ``evaluate`` parser."""
    parser = subparsers.add_parser("evaluate", help="evaluate a checkpoint on fresh episodes")
    parser.add_argument("path", help="run directory or checkpoint file")
    parser.add_argument("--episodes", type=int, default=100, help="episodes to play (default 100)")
    parser.add_argument("--env", help="environment spec to evaluate on (default: the training env); "
                        "naming it here also allows an entry point the checkpoint names")
    parser.add_argument("--trust-config", action="store_true",
                        help="import the code that the checkpoint's config names (env.id entry point, "
                        "env.imports); only for checkpoints you trust")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--greedy", dest="greedy", action="store_true", default=True, help="most likely action (default)")
    mode.add_argument("--sample", dest="greedy", action="store_false", help="sample actions from the policy")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the evaluation environments and of --sample's actions")
    parser.add_argument("--num-envs", type=int, default=16, help="parallel evaluation environments")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--video", metavar="FILE.mp4", help="record the first environment's frames")
    parser.set_defaults(func=run)


def fail(message: str) -> int:
    """Report bad input and return exit code 2."""
    print(f"rtrl-rl evaluate: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    """Load, check compatibility, evaluate, print."""
    if args.episodes < 1:
        return fail("--episodes must be at least 1")
    try:
        source = resolve_checkpoint(args.path)
        payload = load_checkpoint(source)
        config = build_config(payload["config"])
        if args.env and args.env != config.env.id:
            config.env.id, config.env.options = args.env, {}
        require_trust(config, str(source), {"env.id"} if args.env else set(), args.trust_config,
                      how=", or name the environment yourself with --env SPEC")
    except (CheckpointError, ConfigError, KeyError, TypeError) as err:
        return fail(str(err))
    from rtrl_rl.envs.values import NonFiniteValue

    try:
        result = evaluate_payload(payload, config, args)
    except (ValueError, ImportError) as err:
        return fail(str(err))
    except NonFiniteValue as err:  # the environment failed, not the input
        print(f"rtrl-rl evaluate: stopped: {err}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({k: v for k, v in result.items() if k != "per_episode"}))
    else:
        print_table(result, args.greedy)
    return 0


def evaluate_payload(payload: dict, config, args) -> dict:
    """Build env and model from a checkpoint and play the episodes; ValueError on mismatch."""
    from rtrl_rl.training.episodes import evaluation_seed, run_episodes
    from rtrl_rl.training.run_builder import make_env

    seed = evaluation_seed(config.train.seed) if args.seed is None else args.seed
    n = max(1, min(args.num_envs, args.episodes))
    with make_env(config, seed, num_envs=n, evaluation=True) as venv:
        check_spaces(payload, venv.single_observation_space, venv.single_action_space)
        model = evaluation_model(payload, config, venv.single_observation_space, venv.single_action_space)
        recorder = FrameRecorder(venv) if args.video else None
        with torch.random.fork_rng(devices=[]):  # --sample draws from a generator seeded by --seed
            torch.manual_seed(seed)
            result = run_episodes(recorder or venv, model, args.episodes, greedy=args.greedy)
    if recorder is not None:
        recorder.write(args.video)
    return result


def evaluation_model(payload: dict, config, observation_space, action_space):
    """The checkpoint's model, in eval mode, as its run used it.

    A stream run's model (``agent.algorithm=stream``) normalises its observations by the running
    statistics its learner kept and puts LayerNorm on the encoder and core outputs, both by hooks
    outside the state dict: they are rebuilt here from the config and the saved learner state.
    """
    from rtrl_rl.agents import ActorCritic

    if getattr(config.agent, "algorithm", "segment") == "stream":
        from rtrl_rl.training.stream_trainer import build_stream_agent

        model, learner = build_stream_agent(config, observation_space, action_space)
        if learner.obs_stats is not None and (payload.get("learner") or {}).get("obs_stats") is not None:
            learner.obs_stats.load_state_dict(payload["learner"]["obs_stats"])
        model.stream_learner = learner  # the normalising hook belongs to the learner: keep it alive with the model
    else:
        model = ActorCritic(observation_space, action_space, config.agent)
    model.load_state_dict(payload["model"])
    return model.eval()


class FrameRecorder:
    """A vectorised env wrapper that keeps the first sub-environment's observations."""

    def __init__(self, venv) -> None:
        self.venv, self.frames = venv, []
        self.num_envs = venv.num_envs
        self.single_observation_space = venv.single_observation_space
        self.single_action_space = venv.single_action_space

    def _keep(self, batch):
        obs = batch.obs
        if isinstance(obs, np.ndarray) and obs.ndim >= 3:
            self.frames.append(np.array(obs[0]))
        return batch

    def reset(self):
        """Reset and record."""
        return self._keep(self.venv.reset())

    def step(self, actions):
        """Step and record."""
        return self._keep(self.venv.step(actions))

    def write(self, path: str) -> None:
        """Write the frames as an H.264 video (needs the ``video`` extra: imageio and av)."""
        if not self.frames:
            raise ValueError("--video needs an image observation space; this environment has none")
        try:
            import imageio.v3 as iio
        except ImportError as err:
            raise ImportError('--video needs imageio and av: pip install "rtrl-rl[video]"') from err
        frames = np.stack([_to_rgb(f) for f in self.frames])
        iio.imwrite(path, frames, plugin="pyav", fps=30, codec="libx264")


def _to_rgb(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 3 and frame.shape[0] in (1, 3) and frame.shape[-1] not in (1, 3):
        frame = np.moveaxis(frame, 0, -1)
    if frame.ndim == 3 and frame.shape[-1] == 1:
        frame = frame[..., 0]
    if frame.ndim == 2:
        frame = np.repeat(frame[..., None], 3, axis=-1)
    # H.264 needs even sizes: pad one row/column where needed.
    pad = ((0, frame.shape[0] % 2), (0, frame.shape[1] % 2), (0, 0))
    return np.pad(frame, pad).astype(np.uint8)


def print_table(result: dict, greedy: bool) -> None:
    """Per-episode returns, then mean, median, std, min, max and success rate."""
    from rich.console import Console
    from rich.table import Table

    episodes = Table(title=f"episodes ({'greedy' if greedy else 'sampled'} actions)")
    for column in ("episode", "return", "length", "success"):
        episodes.add_column(column, justify="right")
    successes = result.get("successes") or [None] * len(result["returns"])
    for i, (ret, length, ok) in enumerate(zip(result["returns"], result["lengths"], successes)):
        episodes.add_row(str(i), f"{ret:.4g}", str(length), "" if ok is None else str(bool(ok)))
    stats = Table(title="summary")
    stats.add_column("statistic")
    stats.add_column("value", justify="right")
    for key in ("episodes", "mean_return", "median_return", "std_return", "min_return", "max_return", "success_rate"):
        if key in result:
            value = result[key]
            stats.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    console = Console()
    console.print(episodes)
    console.print(stats)
