"""ProcGen through procgen-mirror's native gym3 vector env, adapted to our StepBatch.

gym3 semantics already match our same-step autoreset: after ``act``, ``observe`` gives
the reward of that action and an observation whose ``first`` flag says it starts a new
episode. Two honest limits of the backend: (1) it gives no final observation, so
``final_obs`` is always empty; (2) it does not say whether an episode ended by the
game's own time limit, so every episode end is reported as ``terminated`` (never
``truncated``). ``success`` is the game's ``prev_level_complete``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from rtrl_rl.envs.spec import closest
from rtrl_rl.envs.vector_env import EpisodeTracker, StepBatch, VectorEnv, derive_seeds, reset_batch

GAMES = ("bigfish", "bossfight", "caveflyer", "chaser", "climber", "coinrun", "dodgeball",
         "fruitbot", "heist", "jumper", "leaper", "maze", "miner", "ninja", "plunder",
         "starpilot")


def procgen_split(distribution_mode: str = "easy") -> tuple[dict[str, Any], dict[str, Any]]:
    """(train options, test options) per Cobbe et al. (2020).

    Train on the 200 levels 0..199; test on the full distribution (``num_levels=0``).
    Pass them as ``make_vector("procgen:coinrun", n, seed, **train)``.
    """
    train = dict(num_levels=200, start_level=0, distribution_mode=distribution_mode)
    test = dict(num_levels=0, start_level=0, distribution_mode=distribution_mode)
    return train, test


class ProcgenVector(VectorEnv):
    """N ProcGen games in one ProcgenGym3Env; observations (64, 64, 3) uint8, Discrete(15).

    Options (defaults): ``distribution_mode`` "easy", ``num_levels`` 0 (unbounded),
    ``start_level`` 0, ``use_backgrounds`` True, ``restrict_themes`` False. The gym3
    env's ``rand_seed`` is derived from ``seed``; it seeds each sub-env differently.
    """

    def __init__(self, game: str, num_envs: int, seed: int | None = 0,
                 distribution_mode: str = "easy", num_levels: int = 0, start_level: int = 0,
                 use_backgrounds: bool = True, restrict_themes: bool = False):
        if game not in GAMES:
            raise closest(game, list(GAMES), "ProcGen game")
        try:
            from procgen import ProcgenGym3Env
        except ImportError as err:
            raise ImportError(f"ProcGen needs procgen-mirror ({err}); install it with "
                              'pip install "rtrl-rl[procgen]"') from err
        self._make = ProcgenGym3Env
        self.game, self.num_envs = game, num_envs
        self.options = dict(distribution_mode=distribution_mode, num_levels=num_levels,
                            start_level=start_level, use_backgrounds=use_backgrounds,
                            restrict_themes=restrict_themes)
        self._seed = derive_seeds(seed, 1)[0]
        self._env = self._build()
        self._fresh = True
        self.single_observation_space = spaces.Box(0, 255, (64, 64, 3), np.uint8)
        self.single_action_space = spaces.Discrete(self._env.ac_space.eltype.n)
        self._tracker = EpisodeTracker(num_envs)

    def _build(self):
        return self._make(num=self.num_envs, env_name=self.game, rand_seed=self._seed,
                          **self.options)

    def reset(self) -> StepBatch:
        """First observations; gym3 cannot reset, so a used env is rebuilt (new rand_seed)."""
        if not self._fresh:
            self.close()
            self._seed = (self._seed * 1_000_003 + 1) & 0x7FFFFFFF
            self._env = self._build()
        self._fresh = False
        self._tracker.restart()
        _, ob, _ = self._env.observe()
        return reset_batch(ob["rgb"], self.num_envs)

    def step(self, actions: np.ndarray) -> StepBatch:
        """Act in every game; ``first`` from gym3 marks both the end and the new start."""
        self._fresh = False
        self._env.act(np.asarray(actions, dtype=np.int32).reshape(self.num_envs))
        rew, ob, first = self._env.observe()  # fresh arrays: gym3's reuse_arrays is off
        reward = np.asarray(rew, dtype=np.float32)
        terminated = np.asarray(first, dtype=bool)
        success = None
        if terminated.any():
            info = self._env.get_info()
            success = np.array([int(d.get("prev_level_complete", -1)) for d in info], np.int8)
        episodes = self._tracker.update(reward, terminated, success)
        return StepBatch(ob["rgb"], reward, terminated, np.zeros_like(terminated),
                         terminated.copy(), np.zeros_like(terminated), {}, episodes)

    def level_seeds(self) -> list[int]:
        """The level seed each sub-env is playing now (to check num_levels/start_level)."""
        return [int(d["level_seed"]) for d in self._env.get_info()]

    def close(self) -> None:
        """Drop the gym3 env (it has no close of its own in every version)."""
        env, self._env = self._env, None
        if env is not None and hasattr(env, "close"):
            env.close()
