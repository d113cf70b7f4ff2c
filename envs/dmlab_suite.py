"""DeepMind Lab adapter (optional): ``dmlab:<DMLab-30 level>``, run in worker processes.

``deepmind_lab`` is imported only when a DMLab env is built. Settings follow IMPALA
(Espeholt et al. 2018): its 9-action set, action repeat 4, RGB_INTERLEAVED 72x96x3.
Unlike the reference implementation, which gave every actor the same level seed, each
sub-env draws its episode seeds from its own stream (seeded by ``derive_seeds``), so
sub-envs play different episodes. DMLab's episode end is the level's own clock, which
the API does not tell apart from other ends: it is reported as ``terminated``.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from rtrl_rl.envs.spec import closest

_ROOMS = ["rooms_collect_good_objects_train", "rooms_collect_good_objects_test",
          "rooms_exploit_deferred_effects_train", "rooms_exploit_deferred_effects_test",
          "rooms_select_nonmatching_object", "rooms_watermaze", "rooms_keys_doors_puzzle"]
_OTHERS = ["language_select_described_object", "language_select_located_object",
           "language_execute_random_task", "language_answer_quantitative_question",
           "lasertag_one_opponent_small", "lasertag_three_opponents_small",
           "lasertag_one_opponent_large", "lasertag_three_opponents_large",
           "natlab_fixed_large_map", "natlab_varying_map_regrowth",
           "natlab_varying_map_randomized", "skymaze_irreversible_path_hard",
           "skymaze_irreversible_path_varied", "psychlab_arbitrary_visuomotor_mapping",
           "psychlab_continuous_recognition", "psychlab_sequential_comparison",
           "psychlab_visual_search", "explore_object_locations_small",
           "explore_object_locations_large", "explore_obstructed_goals_small",
           "explore_obstructed_goals_large", "explore_goal_locations_small",
           "explore_goal_locations_large", "explore_object_rewards_few",
           "explore_object_rewards_many"]
#: DMLab-30 level names (plus the test variants of the two train/test levels)
LEVELS = tuple(_ROOMS + _OTHERS)

#: IMPALA's action set; columns: look left/right (pixels), look up/down, strafe
#: left/right, move back/forward, fire, jump, crouch.
ACTIONS = np.array([
    [0, 0, 0, 1, 0, 0, 0],     # forward
    [0, 0, 0, -1, 0, 0, 0],    # backward
    [0, 0, -1, 0, 0, 0, 0],    # strafe left
    [0, 0, 1, 0, 0, 0, 0],     # strafe right
    [-20, 0, 0, 0, 0, 0, 0],   # look left
    [20, 0, 0, 0, 0, 0, 0],    # look right
    [-20, 0, 0, 1, 0, 0, 0],   # look left + forward
    [20, 0, 0, 1, 0, 0, 0],    # look right + forward
    [0, 0, 0, 0, 1, 0, 0],     # fire
], dtype=np.intc)

HOW_TO_INSTALL = """DeepMind Lab has no pip package: it is built from source.
  git clone https://github.com/google-deepmind/lab && cd lab
  bazel build -c opt --python_version=PY3 //python/pip_package:build_pip_package
  ./bazel-bin/python/pip_package/build_pip_package /tmp/dmlab_pkg
  pip install /tmp/dmlab_pkg/deepmind_lab-*.whl
or build just the module (bazel build -c opt //:deepmind_lab.so) and point the adapter
at the folder holding it: set RTRL_RL_DMLAB_PATH=/path/to/folder or pass the option
dmlab_path=/path/to/folder (dmlab_module=NAME picks another module name)."""


def check_level(name: str) -> str:
    """A DMLab-30 level name, or a level path containing '/', passed through."""
    if "/" in name or name in LEVELS:
        return name
    raise closest(name, list(LEVELS), "DMLab-30 level")


def import_lab(module: str = "deepmind_lab", path: str | None = None) -> Any:
    """Import the DMLab Python module, from ``path`` (or $RTRL_RL_DMLAB_PATH) if given."""
    path = path or os.environ.get("RTRL_RL_DMLAB_PATH")
    if path and path not in sys.path:
        sys.path.insert(0, path)
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"cannot import {module!r} ({err}).\n{HOW_TO_INSTALL}") from err


def dmlab_spaces(options: dict[str, Any]) -> tuple[gym.Space, gym.Space]:
    """Spaces without starting DMLab: RGB (height, width, 3) uint8 and Discrete(9)."""
    shape = (int(options.get("height", 72)), int(options.get("width", 96)), 3)
    return spaces.Box(0, 255, shape, np.uint8), spaces.Discrete(len(ACTIONS))


class DmLabEnv(gym.Env):
    """One DMLab level as a gymnasium.Env (IMPALA settings; see module doc).

    Options: ``action_repeat`` 4, ``height`` 72, ``width`` 96, ``renderer`` "software",
    ``level_cache`` None, ``config`` (extra Lab config strings), ``dmlab_module``
    "deepmind_lab", ``dmlab_path`` None.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, level: str, action_repeat: int = 4, height: int = 72, width: int = 96,
                 renderer: str = "software", level_cache: Any = None,
                 config: dict[str, str] | None = None, dmlab_module: str = "deepmind_lab",
                 dmlab_path: str | None = None):
        lab_module = import_lab(dmlab_module, dmlab_path)
        level = check_level(level)
        path = level if "/" in level else f"contributed/dmlab30/{level}"
        cfg = {"width": str(width), "height": str(height), "logLevel": "WARN",
               **(config or {})}
        self.observation_space, self.action_space = dmlab_spaces(
            {"height": height, "width": width})
        self._repeat = int(action_repeat)
        self._lab = lab_module.Lab(path, ["RGB_INTERLEAVED"], config=cfg,
                                   renderer=renderer, level_cache=level_cache)
        self._check_specs()
        self._rng = np.random.default_rng()
        self._last = np.zeros(self.observation_space.shape, np.uint8)

    def _check_specs(self) -> None:
        """Refuse a Lab whose action or RGB specs do not fit IMPALA's table (fail early)."""
        if len(self._lab.action_spec()) != ACTIONS.shape[1]:
            raise ValueError(f"DMLab action spec has {len(self._lab.action_spec())} "
                             f"entries; IMPALA's action set needs {ACTIONS.shape[1]}")
        rgb = [o for o in self._lab.observation_spec() if o["name"] == "RGB_INTERLEAVED"]
        if not rgb or tuple(rgb[0]["shape"]) != self.observation_space.shape:
            raise ValueError(f"DMLab does not offer RGB_INTERLEAVED of shape "
                             f"{self.observation_space.shape}")

    def _observe(self) -> np.ndarray:
        self._last = np.asarray(self._lab.observations()["RGB_INTERLEAVED"], np.uint8)
        return self._last

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """New episode with a level seed drawn from this env's own stream."""
        super().reset(seed=seed)
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._lab.reset(seed=int(self._rng.integers(2**31 - 1)))
        return self._observe(), {}

    def step(self, action):
        """Repeat IMPALA action ``action`` ``action_repeat`` times; sum the rewards."""
        reward = float(self._lab.step(ACTIONS[int(action)], num_steps=self._repeat))
        if not self._lab.is_running():
            return self._last.copy(), reward, True, False, {}
        return self._observe(), reward, False, False, {}

    def close(self) -> None:
        """Close the Lab."""
        if self._lab is not None:
            self._lab.close()
            self._lab = None
