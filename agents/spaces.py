"""The observation and action spaces the agents can learn, checked before anything is built.

:func:`require_learnable` raises :class:`UnsupportedSpace` (a ValueError: ``rtrl-rl train``
and ``rtrl-rl check-env`` exit 2) naming the space and listing :data:`SUPPORTED`. The
encoders (``agents/encoders.py``) and policy heads (``agents/heads.py``) implement these
spaces; this module is the one list of them.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

#: what the agents learn from and act in (docs/envs.md, "Spaces")
SUPPORTED = (
    "observations: Box (numeric), Discrete (n >= 1), MultiDiscrete (every count >= 1), MultiBinary, "
    "or a non-empty Dict or Tuple of those; "
    "actions: Discrete (n >= 1, start 0), MultiDiscrete (1-D, non-empty, every count >= 1, start 0), "
    "or Box (float, rank >= 1, non-empty; finite or infinite bounds: an unbounded Gaussian)"
)


class UnsupportedSpace(ValueError):
    """A space the agents cannot learn (the message lists what they can)."""


def _refuse(kind: str, space: spaces.Space, why: str) -> UnsupportedSpace:
    return UnsupportedSpace(f"unsupported {kind} space {space}: {why}. Supported {SUPPORTED}")


def _observation_problem(space: spaces.Space) -> str | None:
    """Why a leaf observation space cannot be learned from, or None."""
    if isinstance(space, spaces.Box):
        return None if np.dtype(space.dtype).kind in "biuf" else f"a Box of dtype {space.dtype} is not numeric"
    if isinstance(space, spaces.Discrete):
        return None if int(space.n) >= 1 else "a Discrete space needs n >= 1 (it has no values)"
    if isinstance(space, spaces.MultiDiscrete):
        return None if (np.asarray(space.nvec) >= 1).all() else "every count of a MultiDiscrete must be >= 1"
    if isinstance(space, spaces.MultiBinary):
        return None
    return f"{type(space).__name__} observations have no encoder"


def check_observation_space(space: spaces.Space) -> None:
    """Raise :class:`UnsupportedSpace` unless the encoders can read ``space``."""
    if isinstance(space, (spaces.Dict, spaces.Tuple)):
        members = list(space.spaces.values()) if isinstance(space, spaces.Dict) else list(space.spaces)
        if not members:
            raise _refuse("observation", space, f"an empty {type(space).__name__} holds nothing to observe")
        for member in members:
            if isinstance(member, (spaces.Dict, spaces.Tuple)):
                raise _refuse("observation", space, "a Dict or Tuple inside a Dict or Tuple is not read")
            if problem := _observation_problem(member):
                raise _refuse("observation", space, problem)
        return
    if problem := _observation_problem(space):
        raise _refuse("observation", space, problem)


def check_action_space(space: spaces.Space) -> None:
    """Raise :class:`UnsupportedSpace` unless a policy head can act in ``space``."""
    if isinstance(space, spaces.Discrete):
        if int(space.n) < 1:
            raise _refuse("action", space, "a Discrete space needs n >= 1 (it has no actions)")
        if int(space.start) != 0:
            raise _refuse("action", space, "Discrete actions must start at 0")
        return
    if isinstance(space, (spaces.MultiDiscrete, spaces.Box)) and len(space.shape) >= 1 and not np.prod(space.shape):
        raise _refuse("action", space, "it has no components (nothing to act with)")
    if isinstance(space, spaces.MultiDiscrete):
        if len(space.shape) != 1:
            raise _refuse("action", space, "MultiDiscrete actions must be 1-D")
        if not (np.asarray(space.nvec) >= 1).all():
            raise _refuse("action", space, "every count of a MultiDiscrete must be >= 1")
        if (np.asarray(space.start) != 0).any():
            raise _refuse("action", space, "MultiDiscrete actions must start at 0")
        return
    if isinstance(space, spaces.Box):
        if len(space.shape) < 1:
            raise _refuse("action", space, "a scalar Box (shape ()) has no action dimension; use shape (1,)")
        if np.dtype(space.dtype).kind != "f":
            raise _refuse("action", space, "Box actions must be float (the Gaussian samples real numbers)")
        return
    raise _refuse("action", space, f"{type(space).__name__} actions have no policy head")


def require_learnable(observation_space: spaces.Space, action_space: spaces.Space) -> None:
    """Raise :class:`UnsupportedSpace` unless the agents can learn in these spaces."""
    check_observation_space(observation_space)
    check_action_space(action_space)
