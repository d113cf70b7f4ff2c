"""Custom and registered gymnasium envs: ``gym:<id>``, ``popgym:``, ``minigrid:``, ``minatar:``, entry points.

Every env is described by a picklable :class:`EnvFactory` (strings and plain options
only), so worker processes rebuild it under any start method, file-path classes included.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
from gymnasium import spaces

from rtrl_rl.envs.spec import SpaceError, SpecError, closest, missing_extra
from rtrl_rl.envs.third_party import ThirdPartyEnv, quiet_import

ARRAY_SPACES = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)
OPTIONAL = {"popgym": ("popgym", "popgym-{}-v0"), "minigrid": ("minigrid", "MiniGrid-{}-v0")}


def load_class(target: str) -> type:
    """Resolve ``package.module:Class`` or ``path/to/file.py:Class`` to the class."""
    where, _, name = target.rpartition(":")
    if where.endswith(".py"):
        path = os.path.abspath(where)
        if not os.path.exists(path):
            raise SpecError(f"no such file {path!r} in entry point {target!r}")
        # A stable module name per file, registered in sys.modules, keeps classes picklable.
        mod_name = "_rtrl_env_" + hashlib.sha1(path.encode()).hexdigest()[:12]
        module = sys.modules.get(mod_name)
        if module is None:
            spec = importlib.util.spec_from_file_location(mod_name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[mod_name] = module
            spec.loader.exec_module(module)
    else:
        module = importlib.import_module(where)
    cls = getattr(module, name, None)
    if cls is None:
        raise SpecError(f"{where!r} has no attribute {name!r}")
    if not (isinstance(cls, type) and issubclass(cls, gym.Env)):
        raise SpecError(f"{target!r} is not a gymnasium.Env subclass")
    return cls


def _imports(value: Any) -> list[str]:
    """The ``imports=`` option as a list: a list, or a string like "a,b" or "[a, b]"."""
    if value is None:
        return []
    if isinstance(value, str):
        value = value.strip("[]() ").split(",")
    return [str(v).strip(" '\"") for v in value if str(v).strip(" '\"")]


def resolve_id(suite: str, name: str, imports: list[str]) -> str:
    """Import what registers the id, then return the registered id (closest names if not)."""
    for module in imports:
        importlib.import_module(module)
    if suite == "popgym":  # its own names, and a clear refusal of the Labyrinths without mazelib
        from rtrl_rl.envs.popgym_suite import resolve_popgym
        return resolve_popgym(name)
    if suite in OPTIONAL:
        package, pattern = OPTIONAL[suite]
        try:
            quiet_import(package)
        except ImportError as err:
            raise missing_extra(suite, suite, err) from err
        if name not in gym.registry and pattern.format(name) in gym.registry:
            name = pattern.format(name)
    if name not in gym.registry:
        raise closest(name, list(gym.registry), "gymnasium id")
    return name


def tuple_as_dict(space: spaces.Tuple) -> spaces.Dict:
    """A Tuple space as the Dict the pipeline carries: element i under the key ``"i"``."""
    return spaces.Dict({str(i): s for i, s in enumerate(space.spaces)})


class TupleToDict(gym.ObservationWrapper):
    """Tuple observations as dicts keyed ``"0"``, ``"1"``...: buffers, segments and the
    agent's DictEncoder handle flat Dicts of arrays, and a Tuple is one with ordered keys."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.observation_space = tuple_as_dict(env.observation_space)

    def observation(self, observation: tuple) -> dict:
        """(a, b, ...) -> {"0": a, "1": b, ...}."""
        return {str(i): v for i, v in enumerate(observation)}


def array_space(space: gym.Space) -> gym.Space:
    """The observation space we pass on: array leaves only (a Dict's other leaves, such as
    minigrid's mission text, dropped); a Tuple of array spaces becomes a Dict keyed by
    position (see :class:`TupleToDict`). Raises SpaceError for anything else (Text, Graph,
    Sequence, a Dict or Tuple inside one, nothing left to observe)."""
    if isinstance(space, ARRAY_SPACES):
        return space
    if isinstance(space, spaces.Tuple) and all(isinstance(s, ARRAY_SPACES) for s in space.spaces):
        return tuple_as_dict(space)
    if isinstance(space, spaces.Dict):
        kept = {k: s for k, s in space.spaces.items() if isinstance(s, ARRAY_SPACES)}
        nested = any(isinstance(s, (spaces.Dict, spaces.Tuple)) for s in space.spaces.values())
        if kept and not nested:
            return spaces.Dict(kept)
    raise SpaceError(f"observation space {space} is not supported: use Box, Discrete, MultiDiscrete, "
                     "MultiBinary, or a flat Dict or Tuple of those (a Dict's other entries, such as text, "
                     "are dropped)")


def array_action_space(space: gym.Space) -> gym.Space:
    """``space`` if actions of it travel as one array per step (the array spaces), else SpaceError."""
    if isinstance(space, ARRAY_SPACES):
        return space
    raise SpaceError(f"action space {space} is not supported: use Discrete, MultiDiscrete or Box")


@dataclass
class EnvFactory:
    """Picklable recipe for one env: ``kind`` in gym/entry/memory/dmlab/minatar, a target, kwargs."""

    kind: str
    target: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    imports: list[str] = field(default_factory=list)
    #: the optional suite's package (popgym, minigrid): imported first, its noise noted once
    suite_package: str = ""

    def __call__(self) -> gym.Env:
        """Build the env (in whichever process calls it; ``imports`` register ids first)."""
        if self.suite_package:
            quiet_import(self.suite_package)
        for module in self.imports:
            importlib.import_module(module)
        if self.kind == "minatar":  # registers MinAtar's ids in this process first
            from rtrl_rl.envs.minatar_suite import make_game
            return make_game(self.target, self.kwargs)
        if self.kind == "memory":
            from rtrl_rl.envs.memory_suite import MemoryEnv
            return MemoryEnv(self.target, **self.kwargs)
        if self.kind == "dmlab":
            from rtrl_rl.envs.dmlab_suite import DmLabEnv
            return DmLabEnv(self.target, **self.kwargs)
        env = gym.make(self.target, **self.kwargs) if self.kind == "gym" else load_class(self.target)(**self.kwargs)
        if self.suite_package:  # the suite's code, not the user's: its warnings are noted once
            env = ThirdPartyEnv(env, self.suite_package)
        # registered ids and entry points alike: the pipeline carries a Tuple as its Dict
        return TupleToDict(env) if isinstance(env.observation_space, spaces.Tuple) else env

    def probe(self, steps: int = 20) -> tuple[gym.Space, gym.Space, float]:
        """(observation space, action space, seconds per step) from a probe env.

        The probe env is built here, stepped ``steps`` times with random actions (to
        choose between in-process and worker stepping) and closed. DMLab is not probed
        (its spaces are static and its steps are known to be slow).
        """
        if self.kind == "dmlab":
            from rtrl_rl.envs.dmlab_suite import dmlab_spaces
            return (*dmlab_spaces(self.kwargs), float("inf"))
        env = self()
        try:
            obs_space, act_space = array_space(env.observation_space), array_action_space(env.action_space)
            if steps <= 0:
                return obs_space, act_space, float("nan")
            act_space.seed(0)
            actions = [_sample(act_space) for _ in range(steps)]
            env.reset(seed=0)
            start = time.perf_counter()
            for action in actions:
                _, _, term, trunc, _ = env.step(action)
                if term or trunc:
                    env.reset()
            cost = (time.perf_counter() - start) / steps
            return obs_space, act_space, cost
        finally:
            env.close()


def _sample(space: gym.Space) -> Any:
    """A random action of ``space``; SpaceError where it has none (an empty Discrete)."""
    try:
        return space.sample()
    except ValueError as err:
        raise SpaceError(f"action space {space} is not supported: it has no action to take ({err}); "
                         "use Discrete (n >= 1), MultiDiscrete or Box") from None


def gym_factory(suite: str, name: str, options: dict[str, Any]) -> EnvFactory:
    """Factory for ``gym:``/``popgym:``/``minigrid:`` ids (``imports=`` consumed here) and
    ``minatar:`` games (MinAtar's options and defaults: :mod:`rtrl_rl.envs.minatar_suite`)."""
    if suite == "minatar":
        from rtrl_rl.envs.minatar_suite import game_options, register, resolve_game
        game = resolve_game(name)
        register()  # fail here with the extra's name, not later inside every worker
        return EnvFactory("minatar", game, game_options(options))
    options = dict(options)
    imports = _imports(options.pop("imports", None))
    env_id = resolve_id(suite, name, imports)
    # workers must import the suite's package too, or the id is unknown
    return EnvFactory("gym", env_id, options, imports, OPTIONAL[suite][0] if suite in OPTIONAL else "")
