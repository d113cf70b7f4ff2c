"""Continue a run from a checkpoint (``rtrl-rl train --resume RUN_DIR key=value ...``).

Which checkpoint, and in which run directory, is :mod:`rtrl_rl.run.resume_point`'s: the run's
newest readable one, or a checkpoint file named on the command line.

What comes back: parameters, optimizer moments, the scheduler's and the step and update
counters, the RNG states and the config. Overrides on the command line win, and every one
takes effect: optimizer hyperparameters (lr, eps, alpha), the schedule (``lr_decay``,
``total_steps``), reward clipping (core input and loss), budgets, logging, runtime. Those a
resume cannot honour are refused before anything is written (the keys declared ``fixed``
in :mod:`rtrl_rl.config`): the optimizer kind, the model's architecture and sizes, the
environment and its spaces. A new ``train.seed`` reseeds the run instead of continuing
the stored RNG streams.

What does not come back: the environments, which restart with new episodes (seeded from
the run seed and the start step: ``run_builder.env_seed``), and therefore the per-stream RTRL
carries. Every stream's first segment after a resume starts with
``first = True``, which resets its state and sensitivities exactly as at a fresh episode
start; continuing the old carries would pair them with episodes they never saw.
"""

from __future__ import annotations

from pathlib import Path

from rtrl_rl.config import REMOVED_KEYS, Config, ConfigError, build_config, load_config, parse_override, refuse_changes
from rtrl_rl.run.checkpoint import CheckpointError, load_checkpoint, restore_rng
from rtrl_rl.run.layout import RunPaths
from rtrl_rl.run.resume_point import ResumePoint, find_resume_point, refuse_mixing
from rtrl_rl.run.trust import require_trust


def _named_keys(overrides: list[dict], prefix: str = "") -> set[str]:
    """The dotted leaf keys that parsed overrides set (``{"env": {"id": ..}}`` -> ``env.id``).

    Only the leaves count: ``env.num_envs=8`` names ``env.num_envs``, not ``env``, so it
    does not stand for the code that ``env.id`` or ``env.imports`` of a stored config name.
    """
    keys: set[str] = set()
    for data in overrides:
        for key, value in data.items():
            if isinstance(value, dict) and value:
                keys |= _named_keys([value], f"{prefix}{key}.")
            else:
                keys.add(prefix + key)
    return keys


def _replacements(parsed: list[dict]) -> list[dict]:
    """The parts of ``parsed`` overrides that set a key replacing a removed one (for example
    ``train.device`` for ``runtime.device``): an old run's stored config needs them to load."""
    found = []
    for data in parsed:
        for dotted in REMOVED_KEYS.values():
            node, parts = data, dotted.split(".")
            for part in parts:
                node = node.get(part) if isinstance(node, dict) else None
            if node is not None:
                nested: dict = {parts[-1]: node}
                for part in reversed(parts[:-1]):
                    nested = {part: nested}
                found.append(nested)
    return found


def resume_config(path: str | Path, overrides: list[str] = (), trust_config: bool = False) -> Config:
    """The config that ``--resume path key=value ...`` trains with (:func:`resume_plan`)."""
    return resume_plan(path, overrides, trust_config)[0]


def resume_plan(path: str | Path, overrides: list[str] = (), trust_config: bool = False
                ) -> tuple[Config, ResumePoint]:
    """The config stored in the checkpoint that ``path`` (a run directory or a checkpoint
    file) resumes from, with ``overrides`` applied, and that checkpoint
    (:func:`rtrl_rl.run.resume_point.find_resume_point`).

    The run goes on in the checkpoint's run directory unless ``run_dir=`` names another.
    Raises :class:`CheckpointError` when there is no readable checkpoint, and
    :class:`ConfigError` for an override that cannot be honoured (:func:`refuse_changes`),
    for code the stored config names and the user did not (``rtrl_rl.run.trust``; allowed by
    ``trust_config``), or for a file that cannot go on in its run (``refuse_mixing``).
    Nothing is written either way.
    """
    point = find_resume_point(path)
    path, payload = point.checkpoint, point.payload
    stored = payload.get("config")
    if not isinstance(stored, dict):
        raise CheckpointError(f"checkpoint {path} holds no config; it cannot be resumed")
    parsed = [parse_override(o) for o in overrides]
    try:  # the stored config as it was, but for the keys that replace removed ones
        before = build_config(stored, *_replacements(parsed))
    except ConfigError as err:
        raise CheckpointError(f"the config stored in {path} does not fit this version of rtrl-rl: {err}") from None
    config = build_config(stored, *parsed)
    refuse_changes(before, config)
    require_trust(config, str(path), _named_keys(parsed), trust_config,
                  how=", or repeat each entry as key=value after --resume RUN_DIR")
    if not any(o.startswith("run_dir=") for o in overrides):
        config.run_dir = str(refuse_mixing(point))
    return config, point


def restart_config(run_dir: str | Path, overrides: list[str] = (), trust_config: bool = False) -> Config:
    """The ``config.yaml`` of a run that stopped before its first checkpoint, with ``overrides``.

    Such a run starts again from step 0. Its config file came from the run directory,
    not from the user's command line, so the same trust rule as for a checkpoint applies:
    code it names is imported only when the user repeats the entry or trusts the config.
    """
    path = RunPaths(run_dir).config
    parsed = [parse_override(o) for o in overrides]
    config = load_config(path, [f"run_dir={run_dir}", *overrides])
    require_trust(config, str(path), _named_keys(parsed), trust_config,
                  how=", or repeat each entry as key=value after --resume RUN_DIR")
    return config


def check_spaces(payload: dict, observation_space, action_space) -> None:
    """Refuse spaces that differ from those the checkpoint's agent was trained on.

    The trainer stores their printed form in ``payload["extra"]``; a checkpoint without
    them passes (the parameter shapes are checked when they are loaded).
    """
    extra = payload.get("extra") or {}
    for key, space in (("observation_space", observation_space), ("action_space", action_space)):
        trained = extra.get(key)
        if trained is not None and trained != repr(space):
            raise CheckpointError(f"the checkpoint's {key.replace('_', ' ')} is {trained}, "
                                  f"the environment's is {space!r}")


def restore_run(run_dir: str | Path, model, learner, seed: int | None = None, payload: dict | None = None) -> dict:
    """Load the latest checkpoint of ``run_dir`` (or the checkpoint file it names, or the
    ``payload`` already loaded from it) into ``model`` and ``learner``.

    The learner's current config is applied over the restored optimizer and schedule
    (``Learner.load_state_dict``). The RNG states are restored unless ``train.seed``
    (``seed``, by default the learner's ``config.seed``) differs from the stored one: a
    new seed means new random streams. Raises
    :class:`CheckpointError` when the checkpoint does not fit. Returns the counters to
    continue from: ``step``, ``update`` and ``wall_s``.
    """
    payload = load_checkpoint(run_dir) if payload is None else payload
    check_spaces(payload, model.observation_space, model.action_space)
    try:
        model.load_state_dict(payload["model"])
    except (RuntimeError, KeyError, TypeError) as err:
        raise CheckpointError(f"checkpoint in {run_dir} does not fit this model: {err}") from None
    try:
        learner.load_state_dict(payload["learner"])
    except (ValueError, KeyError, TypeError, IndexError, RuntimeError) as err:
        raise CheckpointError(f"checkpoint in {run_dir} has a learner state that does not fit: {err}") from None
    stored_seed = ((payload.get("config") or {}).get("train") or {}).get("seed")
    seed = getattr(learner.config, "seed", stored_seed) if seed is None else seed
    if seed == stored_seed:
        restore_rng(payload)
    extra = payload.get("extra", {})
    return {"step": int(payload["step"]), "update": int(payload["update"]), "wall_s": float(extra.get("wall_s", 0.0))}
