"""Built-in memory tasks, natively vectorised in numpy: ``memory:recall``, ``memory:tmaze``.

One object steps all N sub-envs with array operations (no worker, no per-env Python
loop), which is why they run at hundreds of thousands of steps/s on one core. Each
sub-env draws its randomness from its own stream (seeded by ``derive_seeds``), exactly
one uniform number per step, so env ``i``'s trajectory depends only on its seed and its
actions, whatever ``num_envs`` is and whether it runs here or in a worker.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from rtrl_rl.envs.vector_env import EpisodeTracker, StepBatch, VectorEnv, derive_seeds, reset_batch


class _Streams:
    """Per-env uniform [0, 1) streams, drawn in blocks to keep the per-step cost vectorised."""

    def __init__(self, seeds: list[int], block: int = 512):
        self._gens = [np.random.default_rng(s) for s in seeds]
        self._buf = np.empty((block, len(seeds)))
        self._pos = block

    def next(self) -> np.ndarray:
        """One fresh uniform number per env, shape (N,)."""
        if self._pos == len(self._buf):
            for i, g in enumerate(self._gens):
                self._buf[:, i] = g.random(len(self._buf))
            self._pos = 0
        self._pos += 1
        return self._buf[self._pos - 1]


class _MemoryVector(VectorEnv):
    """Shared plumbing of the memory tasks: streams, episode tracking, StepBatch."""

    def __init__(self, num_envs: int, seed: int | None, stream_seeds: list[int] | None):
        self.num_envs = num_envs
        seeds = stream_seeds if stream_seeds is not None else derive_seeds(seed, num_envs)
        self._streams = _Streams(list(seeds))
        self._tracker = EpisodeTracker(num_envs)
        self._rows = np.arange(num_envs)

    def _actions(self, actions: np.ndarray) -> np.ndarray:
        a = np.asarray(actions).reshape(self.num_envs)
        n = self.single_action_space.n
        if a.dtype.kind not in "iu" or (a < 0).any() or (a >= n).any():
            raise ValueError(f"actions must be integers in [0, {n}), got {a!r}")
        return a

    def _batch(self, obs, reward, terminated, truncated, final, success) -> StepBatch:
        done = terminated | truncated
        episodes = self._tracker.update(reward, done, success)
        final_obs = {int(i): final[i].copy() for i in np.flatnonzero(done)} if episodes else {}
        return StepBatch(obs, reward, terminated, truncated, done.copy(),
                         np.zeros(self.num_envs, dtype=bool), final_obs, episodes)


class RecallVector(_MemoryVector):
    """Delayed recall with distractors, the project's default scientific task.

    Options: ``num_symbols`` K (default 4), ``delay`` D (default 40), ``distractors``
    (default True). Observation Box(0, 1, (K+2,), float32) = [one-hot symbol (K), cue
    flag, query flag]; action Discrete(K). Time steps of an episode, t = 0 .. D+1:

    * t = 0, cue: one-hot of the cue c (uniform over K symbols), cue flag 1.
    * t = 1 .. D, delay: with distractors, one-hot of a symbol drawn uniformly from the
      same K symbols (it may equal c), no flag; without distractors, all zeros.
    * t = D+1, query: query flag 1, no symbol.

    The action taken at the query is judged: reward 1 if it equals c, else 0, and the
    episode terminates (``terminated``; it is never truncated). Actions before the query
    have no effect and earn 0. Length D+2 steps; return 1 or 0; ``success`` = answered
    correctly; chance = 1/K. The final observation (``final_obs``) is all zeros.
    """

    def __init__(self, num_envs: int, seed: int | None = 0, num_symbols: int = 4,
                 delay: int = 40, distractors: bool = True,
                 stream_seeds: list[int] | None = None):
        if num_symbols < 2 or delay < 0:
            raise ValueError(f"recall needs num_symbols >= 2 and delay >= 0, got "
                             f"{num_symbols}, {delay}")
        super().__init__(num_envs, seed, stream_seeds)
        self.K, self.D, self.distractors = int(num_symbols), int(delay), bool(distractors)
        self.spec = "memory:recall"
        self.options = dict(num_symbols=self.K, delay=self.D, distractors=self.distractors)
        self.single_observation_space = spaces.Box(0.0, 1.0, (self.K + 2,), np.float32)
        self.single_action_space = spaces.Discrete(self.K)
        self._t = np.zeros(num_envs, dtype=np.int64)
        self._cue = np.zeros(num_envs, dtype=np.int64)
        self._final = np.zeros((num_envs, self.K + 2), np.float32)

    def _observe(self, symbol: np.ndarray) -> np.ndarray:
        """Observation of the current step ``self._t``; ``symbol`` is this step's draw."""
        t = self._t
        obs = np.zeros((self.num_envs, self.K + 2), np.float32)
        start = t == 0
        show = start | (t <= self.D) if self.distractors else start
        col = np.where(start, self._cue, symbol)[show]
        obs[self._rows[show], col] = 1.0
        obs[:, self.K] = start
        obs[:, self.K + 1] = t == self.D + 1
        return obs

    def reset(self) -> StepBatch:
        """New episodes everywhere: each env shows a freshly drawn cue."""
        self._cue = (self._streams.next() * self.K).astype(np.int64)
        self._t[:] = 0
        self._tracker.restart()
        return reset_batch(self._observe(self._cue), self.num_envs)

    def step(self, actions: np.ndarray) -> StepBatch:
        """Judge actions at query steps, advance time, start new episodes where ended."""
        a = self._actions(actions)
        terminated = self._t == self.D + 1
        reward = (terminated & (a == self._cue)).astype(np.float32)
        symbol = (self._streams.next() * self.K).astype(np.int64)
        self._t += 1
        self._t[terminated] = 0
        self._cue = np.where(terminated, symbol, self._cue)
        obs = self._observe(symbol)
        success = reward.astype(np.int8)
        return self._batch(obs, reward, terminated, np.zeros_like(terminated),
                           self._final, success)


class TMazeVector(_MemoryVector):
    """Bakker's (2001) T-maze with corridor length L, natively vectorised.

    Positions x = 0 .. L along the corridor; the T-junction is x = L, with arms up and
    down. Each episode draws the goal arm (up or down, 1/2 each). Actions Discrete(4):
    0 up, 1 right, 2 down, 3 left. Right moves x+1 (not past L), left x-1 (not below 0);
    up/down at the junction enter that arm and terminate the episode; up/down in the
    corridor and right at the junction bump (no move).

    Observation Box(0, 1, (3,), float32), Bakker's three bits: at t = 0 only, the cue
    [0, 1, 1] (goal up) or [1, 1, 0] (goal down); corridor (x < L, t > 0) [1, 0, 1];
    junction [0, 1, 0]. The cue is never shown again, so it has to be remembered for at
    least L steps.

    Rewards: +4 for entering the goal arm (``success``), -0.1 for entering the other arm,
    -0.1 for a step that does not move (bump); 0 otherwise. Entering an arm terminates;
    after ``max_steps`` (default 4 (L+1)) steps the episode is truncated (success False).
    The optimum takes L+1 steps for a return of 4. ``final_obs`` is the observation of
    the position reached (all zeros after entering an arm).
    """

    def __init__(self, num_envs: int, seed: int | None = 0, length: int = 10,
                 max_steps: int | None = None, stream_seeds: list[int] | None = None):
        if length < 1:
            raise ValueError(f"tmaze needs length >= 1, got {length}")
        super().__init__(num_envs, seed, stream_seeds)
        self.L = int(length)
        self.max_steps = int(max_steps) if max_steps is not None else 4 * (self.L + 1)
        self.spec = "memory:tmaze"
        self.options = dict(length=self.L, max_steps=self.max_steps)
        self.single_observation_space = spaces.Box(0.0, 1.0, (3,), np.float32)
        self.single_action_space = spaces.Discrete(4)
        self._x = np.zeros(num_envs, dtype=np.int64)
        self._t = np.zeros(num_envs, dtype=np.int64)
        self._goal = np.zeros(num_envs, dtype=np.int64)
        self._table = np.array([[1, 0, 1], [0, 1, 0], [0, 1, 1], [1, 1, 0]], np.float32)

    def _observe(self) -> np.ndarray:
        """Row of the bit table: 0 corridor, 1 junction, 2 cue up, 3 cue down."""
        kind = np.where(self._x == self.L, 1, 0)
        kind = np.where(self._t == 0, 2 + self._goal, kind)
        return self._table[kind]

    def reset(self) -> StepBatch:
        """New episodes everywhere at x = 0 with a freshly drawn goal arm."""
        self._goal = (self._streams.next() * 2).astype(np.int64)
        self._x[:] = 0
        self._t[:] = 0
        self._tracker.restart()
        return reset_batch(self._observe(), self.num_envs)

    def step(self, actions: np.ndarray) -> StepBatch:
        """Move, score, and restart the envs whose episode ended."""
        a = self._actions(actions)
        junction = self._x == self.L
        arm = junction & ((a == 0) | (a == 2))
        correct = arm & (np.where(a == 0, 0, 1) == self._goal)
        new_x = self._x + ((a == 1) & ~junction) - ((a == 3) & (self._x > 0))
        bump = (new_x == self._x) & ~arm
        reward = (4.0 * correct - 0.1 * (arm & ~correct) - 0.1 * bump).astype(np.float32)
        self._x, self._t = new_x, self._t + 1
        truncated = (self._t >= self.max_steps) & ~arm
        done = arm | truncated
        draw = self._streams.next()
        final = self._observe() if done.any() else None
        if final is not None:
            final[arm] = 0.0
        self._x[done] = 0
        self._t[done] = 0
        self._goal = np.where(done, (draw * 2).astype(np.int64), self._goal)
        return self._batch(self._observe(), reward, arm, truncated, final,
                           correct.astype(np.int8))


TASKS: dict[str, type[_MemoryVector]] = {"recall": RecallVector, "tmaze": TMazeVector}


class MemoryEnv(gym.Env):
    """A single memory task as a plain gymnasium.Env (a 1-env vector underneath).

    Used for ``workers=N``, for gymnasium's checker and for the Sync/Async benchmarks.
    ``reset(seed=s)`` seeds the task's stream with ``s`` directly, so env ``i`` of a
    worker-backed vector (seeded with ``derive_seeds(seed, N)[i]``) replays the
    native vector's env ``i`` exactly.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, task: str = "recall", **options: Any):
        self._task, self._options = task, options
        self._vec = TASKS[task](1, seed=None, **options)
        self.observation_space = self._vec.single_observation_space
        self.action_space = self._vec.single_action_space
        self._next: np.ndarray | None = None  # first obs of the episode the vector began

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Start an episode; a seed restarts the task's random stream.

        After an episode end the 1-env vector has already begun the next episode (same
        step autoreset); an unseeded reset returns that episode rather than drawing
        again, so the stream stays in step with the native vector.
        """
        super().reset(seed=seed)
        if seed is not None:
            self._vec = TASKS[self._task](1, stream_seeds=[seed], seed=None, **self._options)
        elif self._next is not None:
            obs, self._next = self._next, None
            return obs, {}
        self._next = None
        return self._vec.reset().obs[0], {}

    def step(self, action):
        """One step; at an episode end returns the final observation and ``success``."""
        b = self._vec.step(np.asarray([action]))
        done = bool(b.terminated[0] or b.truncated[0])
        info = {"success": b.episodes[0].success} if done else {}
        obs = b.final_obs[0] if done else b.obs[0]
        self._next = b.obs[0] if done else None
        return obs, float(b.reward[0]), bool(b.terminated[0]), bool(b.truncated[0]), info
