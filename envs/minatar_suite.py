"""MinAtar (Young & Tian 2019) as a suite: ``minatar:<Game>`` through the package's gymnasium ids.

The five games (Asterix, Breakout, Freeway, Seaquest, SpaceInvaders) run on a 10x10 grid;
an observation is a (10, 10, C) bool Box, one channel per kind of object (C = 4, 4, 7, 10
and 6), and an action is Discrete(6), or the game's minimal set with
``use_minimal_action_set=True``. The options are MinAtar's own constructor arguments, with
MinAtar's own defaults (:data:`DEFAULTS`): sticky actions with probability 0.1 (the
previous action repeats), difficulty ramping on, the full action set. ``max_episode_steps``
(gymnasium's time limit, reported as ``truncated``) is off: MinAtar has none, and only
Freeway ends by time (2,500 steps). There is no frame skip, so an agent step is a frame.
"""

from __future__ import annotations

import importlib
from typing import Any

import gymnasium as gym

from rtrl_rl.envs.spec import SpecError, closest, missing_extra

#: the games, by the lower-case name without separators that a spec may use
GAMES = {name.lower(): name for name in ("Asterix", "Breakout", "Freeway", "Seaquest", "SpaceInvaders")}
#: MinAtar's own defaults (minatar.Environment and minatar.gym.BaseEnv), stated so that
#: check-env and the run's stored options show them
DEFAULTS: dict[str, Any] = {"sticky_action_prob": 0.1, "difficulty_ramping": True,
                            "use_minimal_action_set": False}
#: options beyond MinAtar's: gymnasium's time limit (None: no limit, as MinAtar)
EXTRA_OPTIONS = ("max_episode_steps",)


def registered_id(game: str) -> str:
    """The gymnasium id of ``game`` (a value of :data:`GAMES`).

    MinAtar registers ``MinAtar/<Game>-v0`` (full action set) and ``-v1`` (minimal set);
    we build the ``-v1`` entry and pass ``use_minimal_action_set`` ourselves, because
    gymnasium calls ``-v0`` out of date and would warn on every env.
    """
    return f"MinAtar/{game}-v1"


def register() -> None:
    """Register MinAtar's gymnasium ids (once per process; workers call it too).

    Raises ImportError naming the ``minatar`` extra when the package is missing.
    """
    try:
        minatar_gym = importlib.import_module("minatar.gym")
    except ImportError as err:
        raise missing_extra("MinAtar", "minatar", err) from err
    if registered_id("Breakout") not in gym.registry:
        minatar_gym.register_envs()


def resolve_game(name: str) -> str:
    """The game ``name`` means, in any capitalisation, ``_`` ignored: ``Breakout``, ``space_invaders``.

    MinAtar's gymnasium ids are not accepted as names: ``-v1`` means the minimal action set
    there, which is the option ``use_minimal_action_set`` here. Raises SpecError with the
    closest game names when unknown.
    """
    key = name.replace("_", "").lower()
    if key not in GAMES:
        raise closest(name, list(GAMES.values()), "MinAtar game")
    return GAMES[key]


def game_options(options: dict[str, Any]) -> dict[str, Any]:
    """MinAtar's defaults updated by ``options``; SpecError for an option MinAtar has not."""
    unknown = sorted(set(options) - set(DEFAULTS) - set(EXTRA_OPTIONS))
    if unknown:
        raise SpecError(f"unknown MinAtar option(s) {unknown}; valid: "
                        f"{', '.join([*DEFAULTS, *EXTRA_OPTIONS])}")
    return {**DEFAULTS, **options}


class GymnasiumSeeding(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """MinAtar's ``reset(seed=s)`` seeds the game's own generator (actions' stickiness and
    the game's randomness) but never calls ``gymnasium.Env.reset``, so the env's
    ``np_random`` stays unseeded and gymnasium's env checker refuses it. This wrapper also
    seeds ``np_random`` from ``s``; the game's trajectories are MinAtar's unchanged."""

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)  # so gymnasium can rebuild the env from its spec
        gym.Wrapper.__init__(self, env)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Seed gymnasium's generator as ``gymnasium.Env.reset`` does, then MinAtar's reset."""
        if seed is not None:
            gym.Env.reset(self.unwrapped, seed=seed)
        return self.env.reset(seed=seed, options=options)


def make_game(game: str, options: dict[str, Any]) -> gym.Env:
    """One MinAtar env of ``game`` built by ``gym.make`` with ``options`` (see :func:`game_options`)."""
    register()
    return GymnasiumSeeding(gym.make(registered_id(game), **options))
