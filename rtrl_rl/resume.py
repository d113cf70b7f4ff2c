"""Continue a run from its latest checkpoint (``rtrl-rl train --resume RUN_DIR``).

What comes back: parameters, optimizer and scheduler state, the step and update
counters, the RNG states and the config (overrides on the command line win). What does
not: the environments, which restart their episodes, and therefore the per-stream RTRL
carries. Every stream's first segment after a resume starts with ``first = True``, which
resets its state and sensitivities exactly as at a fresh episode start; continuing the
old carries would pair them with episodes they never saw.
"""

from __future__ import annotations

from pathlib import Path

from rtrl_rl.checkpoint import CheckpointError, load_checkpoint, restore_rng
from rtrl_rl.config import Config, build_config, parse_override


def resume_config(run_dir: str | Path, overrides: list[str] = ()) -> Config:
    """The config stored in the run's latest checkpoint, with ``overrides`` applied."""
    payload = load_checkpoint(run_dir)
    stored = payload.get("config")
    if not isinstance(stored, dict):
        raise CheckpointError(f"checkpoint in {run_dir} holds no config; it cannot be resumed")
    config = build_config(stored, *[parse_override(o) for o in overrides])
    if not any(o.startswith("run_dir=") for o in overrides):
        config.run_dir = str(run_dir)
    return config


def restore_run(run_dir: str | Path, model, learner) -> dict:
    """Load the latest checkpoint of ``run_dir`` into ``model`` and ``learner``.

    Returns the counters to continue from: ``step``, ``update`` and ``wall_s``.
    """
    payload = load_checkpoint(run_dir)
    try:
        model.load_state_dict(payload["model"])
    except (RuntimeError, KeyError) as err:
        raise CheckpointError(f"checkpoint in {run_dir} does not fit this model: {err}") from err
    learner.load_state_dict(payload["learner"])
    restore_rng(payload)
    extra = payload.get("extra", {})
    return {"step": int(payload["step"]), "update": int(payload["update"]), "wall_s": float(extra.get("wall_s", 0.0))}
