"""Atari through ale-py's native vector env (C++ stepping and preprocessing).

Defaults follow Machado et al. (2018): sticky actions 0.25, minimal action set, frame
skip 4 with a max over the last two frames, 84x84 greyscale, full episodes (game over,
no life-loss terminals), a 108,000-frame cap (= 27,000 agent steps; hitting it is
``truncated``), no no-op starts, no FIRE on reset (a game-specific trick Machado et al.
leave out; ``fire_reset=True`` turns it on) and no frame stacking (the agent is
recurrent). Rewards are the raw game score; clipping is the learner's business.
``life_lost`` is True on steps where the lives counter drops without the game ending.
Observations are (H, W, C) uint8: C = frame_stack (greyscale) or 3 x frame_stack (RGB).
"""

from __future__ import annotations

import re

import numpy as np
from gymnasium import spaces

from rtrl_rl.envs.spec import closest
from rtrl_rl.envs.vector_env import EpisodeTracker, StepBatch, VectorEnv, derive_seeds, reset_batch


def _ale():
    try:
        import ale_py
        from ale_py import roms
        from ale_py.vector_env import AtariVectorEnv
    except ImportError as err:
        raise ImportError(f"Atari needs ale-py ({err}); install it with "
                          'pip install "rtrl-rl[atari]"') from err
    return ale_py, roms, AtariVectorEnv


def rom_id(name: str) -> str:
    """``Pong``, ``pong``, ``MsPacman``, ``ALE/MsPacman-v5`` -> ale-py's ``ms_pacman``."""
    _, roms, _ = _ale()
    base = re.sub(r"^ALE/", "", name)
    base = re.sub(r"(NoFrameskip)?-v\d+$", "", base)
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", base).lower()
    valid = list(roms.get_all_rom_ids())
    if snake not in valid:
        titled = [v.title().replace("_", "") for v in valid]
        raise closest(name, valid if name.islower() else titled, "Atari game")
    return snake


class AtariVector(VectorEnv):
    """N Atari games in ale-py's AtariVectorEnv (SameStep autoreset), our StepBatch out.

    Options (defaults): ``sticky`` 0.25, ``full_action_space`` False, ``frameskip`` 4,
    ``noop_max`` 0, ``fire_reset`` False, ``frame_stack`` 1, ``grayscale`` True,
    ``height``/``width`` 84, ``max_frames`` 108000, ``num_threads`` 0 (ale-py's choice).
    """

    def __init__(self, game: str, num_envs: int, seed: int | None = 0, sticky: float = 0.25,
                 full_action_space: bool = False, frameskip: int = 4, noop_max: int = 0,
                 fire_reset: bool = False, frame_stack: int = 1, grayscale: bool = True,
                 height: int = 84, width: int = 84, max_frames: int = 108_000,
                 num_threads: int = 0):
        _, _, AtariVectorEnv = _ale()
        self.game = rom_id(game)
        self.num_envs = num_envs
        self.options = dict(sticky=sticky, full_action_space=full_action_space,
                            frameskip=frameskip, noop_max=noop_max, fire_reset=fire_reset,
                            frame_stack=frame_stack, grayscale=grayscale, height=height,
                            width=width, max_frames=max_frames, num_threads=num_threads)
        self._env = AtariVectorEnv(
            self.game, num_envs, repeat_action_probability=sticky,
            full_action_space=full_action_space, frameskip=int(frameskip),
            noop_max=noop_max, use_fire_reset=fire_reset, stack_num=frame_stack,
            grayscale=grayscale, img_height=height, img_width=width,
            max_num_frames_per_episode=max_frames, num_threads=num_threads,
            autoreset_mode="SameStep", reward_clipping=False, episodic_life=False,
            life_loss_info=False, maxpool=True)
        channels = frame_stack * (1 if grayscale else 3)
        self.single_observation_space = spaces.Box(0, 255, (height, width, channels), np.uint8)
        self.single_action_space = self._env.single_action_space
        self._seeds = np.array(derive_seeds(seed, num_envs), dtype=np.int64)
        self._tracker = EpisodeTracker(num_envs)
        self._lives = np.zeros(num_envs, dtype=np.int64)

    def _hwc(self, obs: np.ndarray) -> np.ndarray:
        """(N, stack, H, W[, 3]) -> (N, H, W, C); a free reshape when stack is 1."""
        n, stack = obs.shape[:2]
        h, w, c = self.single_observation_space.shape
        if stack == 1:
            return obs.reshape(n, h, w, c)
        return np.ascontiguousarray(np.moveaxis(obs, 1, 3)).reshape(n, h, w, c)

    def reset(self) -> StepBatch:
        """Reset all games; the first reset seeds env i with its derived seed."""
        seeds, self._seeds = self._seeds, None
        obs, info = self._env.reset(seed=seeds)
        self._lives = np.asarray(info["lives"], dtype=np.int64)
        self._tracker.restart()
        return reset_batch(self._hwc(obs), self.num_envs)

    def step(self, actions: np.ndarray) -> StepBatch:
        """One agent step (``frameskip`` frames) in every game."""
        a = np.asarray(actions, dtype=np.int64).reshape(self.num_envs)
        obs, reward, term, trunc, info = self._env.step(a)
        if not np.array_equal(info["env_id"], np.arange(self.num_envs)):
            raise RuntimeError("ale-py returned envs out of order; expected batch_size = N")
        reward = np.asarray(reward, dtype=np.float32)
        term, trunc = np.asarray(term, bool), np.asarray(trunc, bool)
        done = term | trunc
        lives = np.asarray(info["lives"], dtype=np.int64)
        life_lost = (lives < self._lives) & ~done
        self._lives = lives
        episodes = self._tracker.update(reward, done)
        final = {}
        if episodes:
            last = self._hwc(info["final_obs"])
            final = {int(i): last[i].copy() for i in np.flatnonzero(done)}
        return StepBatch(self._hwc(obs), reward, term, trunc, done, life_lost, final,
                         episodes)

    def close(self) -> None:
        """Close the native vector env."""
        if self._env is not None:
            self._env.close()
            self._env = None
