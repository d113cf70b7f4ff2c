"""Policy heads (one per action-space kind) and the value head.

A policy head maps features (..., input_size) to distribution parameters
(..., param_size) — logits for the categorical heads, the mean for the Gaussian — and then
works on those parameters only, so the learner can keep them as one tensor:
``sample``, ``greedy``, ``log_prob``, ``entropy`` and ``encode_action`` (the previous
action as core input). Leading dimensions are arbitrary ((B,) when acting, (T, B) when
learning). Use :func:`make_policy_head`; unsupported spaces raise ValueError.
"""

from __future__ import annotations

import math

import torch
from gymnasium import spaces
from torch import nn
from torch.nn import functional as F


class PolicyHead(nn.Module):
    """Linear map to distribution parameters plus the distribution's operations."""

    param_size: int
    action_input_size: int

    def __init__(self, input_size: int, param_size: int) -> None:
        super().__init__()
        self.linear = nn.Linear(input_size, param_size)
        self.param_size = param_size

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(..., input_size) -> (..., param_size) distribution parameters."""
        return self.linear(features)


def _categorical_log_prob(logits: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    return F.log_softmax(logits, -1).gather(-1, action.long().unsqueeze(-1)).squeeze(-1)


def _categorical_entropy(logits: torch.Tensor) -> torch.Tensor:
    logp = F.log_softmax(logits, -1)
    return -(logp.exp() * logp).sum(-1)


def _categorical_sample(logits: torch.Tensor) -> torch.Tensor:
    probs = F.softmax(logits, -1).reshape(-1, logits.shape[-1])
    return torch.multinomial(probs, 1).reshape(logits.shape[:-1])


class CategoricalHead(PolicyHead):
    """Discrete(n): a softmax over n logits; actions are int64 of shape (...)."""

    def __init__(self, input_size: int, n: int) -> None:
        super().__init__(input_size, n)
        self.action_input_size = n

    def sample(self, logits: torch.Tensor) -> torch.Tensor:
        """A sampled action (...,) int64."""
        return _categorical_sample(logits)

    def greedy(self, logits: torch.Tensor) -> torch.Tensor:
        """The most probable action (...,)."""
        return logits.argmax(-1)

    def log_prob(self, logits: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """log pi(action), (...,)."""
        return _categorical_log_prob(logits, action)

    def entropy(self, logits: torch.Tensor) -> torch.Tensor:
        """Entropy of the distribution, (...,)."""
        return _categorical_entropy(logits)

    def encode_action(self, action: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """One-hot (..., n)."""
        return F.one_hot(action.long(), self.param_size).to(dtype)


class MultiCategoricalHead(PolicyHead):
    """MultiDiscrete(nvec): independent categoricals; logits concatenated, actions (..., k)."""

    def __init__(self, input_size: int, nvec: list[int]) -> None:
        super().__init__(input_size, sum(nvec))
        self.nvec = list(nvec)
        self.action_input_size = sum(nvec)

    def _split(self, logits: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return torch.split(logits, self.nvec, dim=-1)

    def sample(self, logits: torch.Tensor) -> torch.Tensor:
        """A sampled action (..., k) int64."""
        return torch.stack([_categorical_sample(l) for l in self._split(logits)], -1)

    def greedy(self, logits: torch.Tensor) -> torch.Tensor:
        """The most probable value of each component, (..., k)."""
        return torch.stack([l.argmax(-1) for l in self._split(logits)], -1)

    def log_prob(self, logits: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Sum of the components' log-probabilities, (...,)."""
        parts = self._split(logits)
        return sum(_categorical_log_prob(l, action[..., i]) for i, l in enumerate(parts))

    def entropy(self, logits: torch.Tensor) -> torch.Tensor:
        """Sum of the components' entropies (they are independent), (...,)."""
        return sum(_categorical_entropy(l) for l in self._split(logits))

    def encode_action(self, action: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """Concatenated one-hots (..., sum(nvec))."""
        hots = [F.one_hot(action[..., i].long(), n) for i, n in enumerate(self.nvec)]
        return torch.cat(hots, -1).to(dtype)


class GaussianHead(PolicyHead):
    """Box: a diagonal Gaussian; mean from the features, state-independent log-std parameter.

    Actions (..., *shape) are unbounded samples; clipping to the Box bounds is the
    environment's job, so that ``log_prob`` stays the density of what was sampled. As core
    input (:meth:`encode_action`) an action is clipped to the bounds ``low``/``high`` (None
    or ±inf: unbounded), i.e. what a clipping environment executed: the raw sample is
    unbounded, and fed back through the core it closes a loop (action -> core -> mean ->
    action) that, once its gain passes 1, grows the action geometrically within an episode
    at nearly fixed parameters (docs/agent.md, "Core input").
    """

    def __init__(self, input_size: int, shape: tuple[int, ...], low=None, high=None) -> None:
        dim = int(math.prod(shape))
        super().__init__(input_size, dim)
        self.shape = tuple(shape)
        self.log_std = nn.Parameter(torch.zeros(dim))
        self.action_input_size = dim
        # not persistent: they follow from the action space, and older state dicts lack them
        for name, bound, fill in (("action_low", low, -math.inf), ("action_high", high, math.inf)):
            values = torch.full((dim,), fill) if bound is None else torch.as_tensor(bound, dtype=torch.float32)
            self.register_buffer(name, values.reshape(dim), persistent=False)

    def _flat(self, action: torch.Tensor) -> torch.Tensor:
        return action.reshape(action.shape[: action.dim() - len(self.shape)] + (self.param_size,))

    def _unflat(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[:-1] + self.shape)

    def sample(self, mean: torch.Tensor) -> torch.Tensor:
        """mean + std * noise, (..., *shape)."""
        return self._unflat(mean + self.log_std.exp() * torch.randn_like(mean))

    def greedy(self, mean: torch.Tensor) -> torch.Tensor:
        """The mean, (..., *shape)."""
        return self._unflat(mean)

    def log_prob(self, mean: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Diagonal Gaussian log-density summed over dimensions, (...,)."""
        z = (self._flat(action).to(mean.dtype) - mean) * torch.exp(-self.log_std)
        return (-0.5 * z.pow(2) - self.log_std - 0.5 * math.log(2 * math.pi)).sum(-1)

    def entropy(self, mean: torch.Tensor) -> torch.Tensor:
        """sum(log_std + 0.5 log(2 pi e)), broadcast to (...,)."""
        h = (self.log_std + 0.5 * math.log(2 * math.pi * math.e)).sum()
        return h.expand(mean.shape[:-1])

    def encode_action(self, action: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """The action clipped to the Box bounds, flattened to (..., dim)."""
        flat = self._flat(action).to(dtype)
        return torch.maximum(torch.minimum(flat, self.action_high.to(dtype)), self.action_low.to(dtype))


class ValueHead(nn.Module):
    """Linear features -> scalar state value, (..., input_size) -> (...,)."""

    def __init__(self, input_size: int) -> None:
        super().__init__()
        self.linear = nn.Linear(input_size, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """State values (...,)."""
        return self.linear(features).squeeze(-1)


def make_policy_head(action_space: spaces.Space, input_size: int) -> PolicyHead:
    """The policy head for ``action_space``: Discrete, MultiDiscrete (1-D) or Box."""
    if isinstance(action_space, spaces.Discrete):
        if action_space.start != 0:
            raise ValueError(f"unsupported action space {action_space}: Discrete must start at 0")
        return CategoricalHead(input_size, int(action_space.n))
    if isinstance(action_space, spaces.MultiDiscrete) and len(action_space.shape) == 1:
        if (action_space.start != 0).any():
            raise ValueError(f"unsupported action space {action_space}: MultiDiscrete must start at 0")
        return MultiCategoricalHead(input_size, [int(n) for n in action_space.nvec])
    if isinstance(action_space, spaces.Box) and len(action_space.shape) >= 1:
        return GaussianHead(input_size, tuple(action_space.shape), action_space.low, action_space.high)
    raise ValueError(
        f"unsupported action space {action_space}: use Discrete, MultiDiscrete (1-D) or Box"
    )
