"""TEST DOUBLE of the ``deepmind_lab`` module (not DeepMind Lab): just enough of the
``deepmind_lab.Lab`` API for the adapter tests, with recorded calls.

Episodes last ``EPISODE_STEPS`` engine frames; the RGB observation's first pixel holds
the seed (mod 256) of the episode, so tests can see which seed an env used; reward per
``step`` call is the number of frames stepped.
"""

from __future__ import annotations

import numpy as np

EPISODE_STEPS = 40
#: every Lab built in this process, for inspection
INSTANCES: list["Lab"] = []


class Lab:
    """Double of deepmind_lab.Lab(level, observations, config, renderer, level_cache)."""

    def __init__(self, level, observations, config=None, renderer="software",
                 level_cache=None):
        self.level, self.observation_names, self.config = level, observations, config
        self.renderer = renderer
        self.seeds: list[int] = []
        self.actions: list[tuple[np.ndarray, int]] = []
        self.num_steps = 0
        self._frame = 0
        self._running = False
        INSTANCES.append(self)

    def reset(self, episode=-1, seed=None):
        self.seeds.append(seed)
        self._frame, self._running = 0, True
        return True

    def step(self, action, num_steps=1):
        assert action.shape == (7,) and action.dtype == np.intc
        self.actions.append((action.copy(), num_steps))
        frames = min(num_steps, EPISODE_STEPS - self._frame)
        self._frame += frames
        self.num_steps += frames
        if self._frame >= EPISODE_STEPS:
            self._running = False
        return float(frames)

    def is_running(self):
        return self._running

    def observations(self):
        assert self._running, "DMLab has no observations after the episode ended"
        h, w = int(self.config["height"]), int(self.config["width"])
        rgb = np.zeros((h, w, 3), np.uint8)
        rgb[0, 0, 0] = self.seeds[-1] % 256
        rgb[0, 0, 1] = self._frame
        return {"RGB_INTERLEAVED": rgb}

    def action_spec(self):
        names = ["LOOK_LEFT_RIGHT_PIXELS_PER_FRAME", "LOOK_DOWN_UP_PIXELS_PER_FRAME",
                 "STRAFE_LEFT_RIGHT", "MOVE_BACK_FORWARD", "FIRE", "JUMP", "CROUCH"]
        return [{"name": n, "min": -512, "max": 512} for n in names]

    def observation_spec(self):
        h, w = int(self.config["height"]), int(self.config["width"])
        return [{"name": "RGB_INTERLEAVED", "shape": (h, w, 3), "dtype": np.uint8}]

    def close(self):
        self._running = False
