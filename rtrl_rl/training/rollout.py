"""Rollout segments: their tensor layout and the loop that fills them from a vectorised env.

One segment holds T steps of B streams, time-major (the layout of ``docs/contracts.md``).
Rows ``0..T`` of the acting inputs (``obs``, ``first``, ``prev_action``, ``prev_reward``)
are stored; row T is the observation after the segment, used only to bootstrap, and it
is also row 0 of the stream's next segment. The synchronous trainer and the actor
processes fill segments with the same :class:`Collector`; actors simply hand it
shared-memory tensors.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
import torch

from rtrl_rl.agents.segment_learner import OBS_PREFIX

Segment = dict[str, torch.Tensor]

#: warned once per collector (and, by Python's default warning filter, once per process)
#: when an env truncates an episode without reporting its final observation
MISSING_FINAL_OBS = ("an episode was truncated without its final observation (final_obs), so its value "
                     "target bootstraps from 0 as if it had terminated; have the env report final_obs "
                     "for truncated episodes")


def action_layout(space: gym.Space) -> tuple[tuple[int, ...], torch.dtype]:
    """Per-stream shape and dtype of an action of ``space`` in a segment."""
    if isinstance(space, gym.spaces.Discrete):
        return (), torch.int64
    if isinstance(space, gym.spaces.MultiDiscrete):
        return tuple(space.shape), torch.int64
    if isinstance(space, gym.spaces.Box):
        return tuple(space.shape), torch.float32
    raise ValueError(f"unsupported action space {space}: use Discrete, MultiDiscrete or Box")


def _obs_layout(space: gym.Space) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """Segment keys for the observation: ``obs`` for a Box, ``obs.<key>`` per Dict entry."""
    if isinstance(space, gym.spaces.Dict):
        return {OBS_PREFIX + k: _obs_layout(s)["obs"] for k, s in space.spaces.items()}
    if isinstance(space, (gym.spaces.Box, gym.spaces.Discrete, gym.spaces.MultiDiscrete, gym.spaces.MultiBinary)):
        dtype = torch.from_numpy(np.zeros(0, dtype=space.dtype)).dtype
        return {"obs": (tuple(space.shape), dtype)}
    raise ValueError(f"unsupported observation space {space}: use Box, Discrete, MultiDiscrete, MultiBinary "
                     "or a Dict of them")


def segment_layout(
    observation_space: gym.Space, action_space: gym.Space, length: int, batch: int
) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """Shape and dtype of every tensor of a segment of ``length`` steps and ``batch`` streams."""
    act_shape, act_dtype = action_layout(action_space)
    rows, steps = (length + 1, batch), (length, batch)
    layout = {k: (rows + s, d) for k, (s, d) in _obs_layout(observation_space).items()}
    layout.update(
        first=(rows, torch.bool),
        prev_action=(rows + act_shape, act_dtype),
        prev_reward=(rows, torch.float32),
        action=(steps + act_shape, act_dtype),
        behaviour_logp=(steps, torch.float32),
        reward=(steps, torch.float32),
        terminated=(steps, torch.bool),
        truncated=(steps, torch.bool),
        life_lost=(steps, torch.bool),
        truncation_value=(steps, torch.float32),
    )
    return layout


def allocate_segment(
    observation_space: gym.Space, action_space: gym.Space, length: int, batch: int, share_memory: bool = False
) -> Segment:
    """Zero tensors for one segment; ``share_memory`` puts them in shared memory for actors."""
    segment = {
        key: torch.zeros(shape, dtype=dtype)
        for key, (shape, dtype) in segment_layout(observation_space, action_space, length, batch).items()
    }
    if share_memory:
        for tensor in segment.values():
            tensor.share_memory_()
    return segment


def _write_obs(segment: Segment, row: int, obs) -> None:
    if isinstance(obs, dict):
        for key, value in obs.items():
            segment[OBS_PREFIX + key][row].copy_(torch.as_tensor(value))
    else:
        segment["obs"][row].copy_(torch.as_tensor(obs))


def _as_tensor_obs(obs):
    if isinstance(obs, dict):
        return {k: torch.as_tensor(v) for k, v in obs.items()}
    return torch.as_tensor(obs)


@dataclass
class EpisodeLog:
    """Finished episodes (``rtrl_rl.envs.EpisodeStats``) since the last :meth:`drain`."""

    items: list = field(default_factory=list)

    def add(self, episodes) -> None:
        """Record finished episodes."""
        self.items.extend(episodes)

    def drain(self) -> list:
        """Return the recorded episodes and start a new record."""
        done, self.items = self.items, []
        return done


class Collector:
    """Steps a vectorised env with a model's acting policy and fills segments in order.

    It keeps, between segments, the current observation, ``first`` flags, previous action
    and reward, and the acting recurrent state, so consecutive segments of a stream join
    up exactly (row T of one segment equals row 0 of the next).
    """

    def __init__(self, venv, model, length: int, greedy: bool = False) -> None:
        self.venv, self.model, self.length, self.greedy = venv, model, length, greedy
        self.episodes = EpisodeLog()
        self.steps = 0
        self.warned_final_obs = False
        batch = venv.reset()
        n = venv.num_envs
        act_shape, act_dtype = action_layout(venv.single_action_space)
        self.obs = _as_tensor_obs(batch.obs)
        self.first = torch.as_tensor(batch.first, dtype=torch.bool)
        self.prev_action = torch.zeros((n,) + act_shape, dtype=act_dtype)
        self.prev_reward = torch.zeros(n)
        self.state = model.initial_state(n)

    def _write_inputs(self, segment: Segment, row: int) -> None:
        _write_obs(segment, row, self.obs)
        segment["first"][row] = self.first
        segment["prev_action"][row] = self.prev_action
        segment["prev_reward"][row] = self.prev_reward

    def collect(self, segment: Segment) -> Segment:
        """Fill ``segment`` in place with the next ``length`` steps of every stream."""
        self._write_inputs(segment, 0)
        for t in range(self.length):
            out = self.model.act(self.obs, self.prev_action, self.prev_reward, self.first, self.state, self.greedy)
            batch = self.venv.step(out.action.numpy())
            segment["action"][t] = out.action
            segment["behaviour_logp"][t] = out.logp
            self._record_outcome(segment, t, batch, out)
            self._advance(batch, out)
            self._write_inputs(segment, t + 1)
        self.steps += self.length * self.venv.num_envs
        return segment

    def _record_outcome(self, segment: Segment, t: int, batch, out) -> None:
        segment["reward"][t] = torch.as_tensor(batch.reward, dtype=torch.float32)
        segment["terminated"][t] = torch.as_tensor(batch.terminated)
        segment["truncated"][t] = torch.as_tensor(batch.truncated)
        segment["life_lost"][t] = torch.as_tensor(batch.life_lost)
        segment["truncation_value"][t] = self._truncation_values(batch, out)
        self.episodes.add(batch.episodes)

    def _truncation_values(self, batch, out) -> torch.Tensor:
        """Acting value of the final observation of each truncated episode (0 elsewhere)."""
        values = torch.zeros(self.venv.num_envs)
        truncated = np.flatnonzero(batch.truncated)
        idx = [i for i in truncated if i in batch.final_obs]
        if len(idx) < len(truncated) and not self.warned_final_obs:
            self.warned_final_obs = True
            warnings.warn(MISSING_FINAL_OBS, RuntimeWarning, stacklevel=2)
        if not idx:
            return values
        final = [batch.final_obs[i] for i in idx]
        if isinstance(final[0], dict):
            obs = {k: torch.as_tensor(np.stack([f[k] for f in final])) for k in final[0]}
        else:
            obs = torch.as_tensor(np.stack(final))
        index = torch.as_tensor(idx)
        reward = torch.as_tensor(batch.reward[idx], dtype=torch.float32)
        values[index] = self.model.bootstrap_value(obs, out.action[index], reward, out.state[index])
        return values

    def _advance(self, batch, out) -> None:
        self.first = torch.as_tensor(batch.first, dtype=torch.bool)
        keep = ~self.first
        self.prev_action = out.action * keep.view((-1,) + (1,) * (out.action.dim() - 1)).to(out.action.dtype)
        self.prev_reward = torch.as_tensor(batch.reward, dtype=torch.float32) * keep
        self.obs = _as_tensor_obs(batch.obs)
        self.state = out.state
