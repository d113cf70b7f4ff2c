"""``rtrl-rl train``: train an agent from a config file and dotted overrides.

With no arguments it trains the embedded default (``configs/default.yaml``: recall with
distractors, RTRL eLSTM) and stops once greedy success reaches the target.

Exit codes: 0 done, 2 bad input (found before anything is written or trained), 130
stopped by a signal, 1 stopped by a failure during training (the environment raised,
hung or returned a NaN, an actor died, an update diverged); the run directory then still
holds a final checkpoint (when the state allowed one) and ``summary.json`` saying why.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

from rtrl_rl.config import ConfigError, load_config, resolve_config_path


def register(subparsers) -> None:
    """Add the ``train`` parser."""
    parser = subparsers.add_parser(
        "train",
        help="train an agent (default: the embedded memory task)",
        description="Train an agent. Overrides are dotted key=value pairs, e.g. "
        "agent.learning=tbptt env.num_envs=64 train.total_steps=1000000",
    )
    parser.add_argument("--config", help="YAML config file, or a name under configs/ such as atari/pong")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its latest "
                        "checkpoint (the newest readable one, with a warning, when that one is damaged), "
                        "or from a checkpoint file RUN_DIR/checkpoints/ckpt-N.pt (add run_dir=NEW to "
                        "branch into a new run); a run that stopped before its first checkpoint starts "
                        "again from step 0 with its config.yaml")
    parser.add_argument("--overwrite", action="store_true", help="start a new run in run_dir even if it "
                        "holds one: the earlier run's files (config, checkpoints, logs, summary) are deleted")
    parser.add_argument("--trust-config", action="store_true",
                        help="with --resume: import the code that the checkpoint's config names "
                        "(env.id entry point, env.imports); only for runs you trust")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    parser.set_defaults(func=run)


def _resolve(name: str | None):
    if name is None:
        return None
    return resolve_config_path(name)


def preflight(config) -> None:
    """The checks ``train`` makes on a config before it writes or builds anything, beyond the
    rules of ``rtrl_rl.config`` (which every loaded config obeys): the device exists on this
    machine, and the environment spec names a suite or an entry point (nothing is imported).
    Raises ConfigError or ValueError (exit 2). ``rtrl-rl config`` makes the same checks."""
    from rtrl_rl.envs.spec import parse_spec

    if config.runtime.backend != "ray":  # with Ray the learner may run on another node: checked there
        from rtrl_rl.training.run_builder import resolve_device

        resolve_device(config.train.device)
    parse_spec(config.env.id)


def fresh_config(config_name: str | None, overrides: list[str]):
    """The config a new run trains with: defaults, the file (a path or a ready config's name),
    then the overrides, each key checked by its rules (:func:`preflight` comes next)."""
    return load_config(_resolve(config_name), overrides)


def _say(text: str) -> None:
    print(f"rtrl-rl train: {text}", file=sys.stderr)


def _prepare(args: argparse.Namespace):
    """The validated config and the run directory to resume from (None: a fresh run).

    Deletes an earlier run only once the new config is known to be valid: with
    ``--overwrite``, or for ``--resume`` of a run that holds no checkpoint yet.
    """
    from rtrl_rl.run.session import clear_run_dir, has_config_only

    if args.overwrite and args.resume:
        raise ConfigError("--overwrite starts a new run and --resume continues one: pass only one")
    resume, restart, point = args.resume, False, None
    if resume and has_config_only(Path(resume)):
        from rtrl_rl.run.resume import restart_config

        config = restart_config(resume, args.overrides, trust_config=args.trust_config)
        resume, restart = None, True
    elif resume:
        from rtrl_rl.run.resume import resume_plan

        config, point = resume_plan(resume, args.overrides, trust_config=args.trust_config)
        resume = str(point.checkpoint)
    else:
        config = fresh_config(args.config, args.overrides)
    preflight(config)
    if point is not None:
        _settle(point, config)
    if restart:
        clear_run_dir(Path(config.run_dir))
        _say(f"{args.resume} holds a config but no checkpoint (the run stopped before its first one): "
             "starting it again from step 0 with its config.yaml")
    elif args.overwrite and config.run_dir:
        deleted = clear_run_dir(Path(config.run_dir))
        if deleted:
            _say(f"--overwrite: deleted the earlier run in {config.run_dir} ({', '.join(deleted)})")
    return config, resume


def _settle(point, config) -> None:
    """Warn about the damaged checkpoints a resume passed over (set aside when the run goes on
    in their directory, see ``rtrl_rl.run.resume_point``)."""
    from rtrl_rl.run.resume_point import settle

    in_place = point.run_dir is not None and Path(config.run_dir).resolve() == point.run_dir.resolve()
    for note in settle(point, in_place):
        _say(f"warning: {note}")


def run(args: argparse.Namespace) -> int:
    """Parse the config, train (or resume), print the summary; exit 2 on bad input."""
    try:
        config, resume = _prepare(args)
    except (ValueError, FileNotFoundError) as err:  # ConfigError, CheckpointError, an unknown env suite
        _say(str(err))
        return 2
    from rtrl_rl.run.session import interrupted
    from rtrl_rl.run.stopping import exit_quietly, quiet_after_stop
    from rtrl_rl.runtime import train_run

    exit_quietly()
    try:
        summary = train_run(config, resume)
    except KeyboardInterrupt:  # a Ctrl-C before the run had started: nothing was trained
        _say("interrupted before training started")
        return 130
    except Exception as err:
        if not hasattr(err, "run_summary"):  # it happened before training: bad input
            if isinstance(err, (ValueError, ImportError)):
                _say(str(err))
                return 2
            raise
        # A failure that names its reason (an env hang or bad value, an actor failure, whose
        # traceback is in the log already, a diverged update) says all in its message.
        if getattr(err, "reason", None) is None:
            traceback.print_exception(err)
        _say(f"stopped: {_failure_line(err)}")
        return 1
    finally:
        quiet_after_stop()  # a late Ctrl-C must not kill the exit that follows
    print_summary(summary)
    return 130 if interrupted(summary) else 0


def _failure_line(err: Exception) -> str:
    """The first line of ``err`` and what the run directory now holds."""
    summary = err.run_summary
    saved = summary.get("final_checkpoint")
    where = (f"final checkpoint at step {saved:,}" if saved is not None
             else "no final checkpoint (the latest periodic one is kept)")
    first = (str(err).strip().splitlines() or [type(err).__name__])[0]
    return f"{first} ({where}; summary.json in {summary['run_dir']})"


def print_summary(summary: dict) -> None:
    """Print the run's headline figures, then where its files are."""
    from rtrl_rl.run.layout import RunPaths

    paths = RunPaths(summary["run_dir"])
    keys = ("steps", "wall_s", "sps", "mean_return", "success_rate", "time_to_target_s", "stopped")
    width = max(len(k) for k in keys)
    print("summary")
    for key in keys:
        if key in summary:
            value = summary[key]
            text = f"{value:.4g}" if isinstance(value, float) else str(value)
            print(f"  {key:<{width}}  {text}")
    files = ", ".join(path.name for path in (paths.summary, paths.config, paths.latest))
    print(f"  run_dir{' ' * (width - 7)}  {summary['run_dir']} ({files})")
    sys.stdout.flush()
