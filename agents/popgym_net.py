"""POPGym's network shape (Morad et al., ICLR 2023, ``popgym/baselines``): its encoder and heads.

- :class:`PopgymEncoder` (``agent.encoder=popgym``): the flattened step input -> Linear(size)
  -> LayerNorm without learned parameters -> Linear(size, size) -> LeakyReLU. The step input
  is the observation *and* the extras (previous reward, previous action, start flag, those
  the agent feeds), because POPGym's ``PreviousAction`` and ``Antialias`` wrappers put the
  previous action and the first-step flag into the observation that its encoder reads.
- :class:`MLPTrunk` (``agent.heads=popgym``): the separate actor and critic MLPs between the
  core and the final layers, two Linear + LeakyReLU layers each.

Linear weights are orthogonal (POPGym's ``weight_init``), biases PyTorch's default; the final
policy and value layers get N(0, 0.01²) weights (:func:`init_final`).
"""

from __future__ import annotations

import torch
from gymnasium import spaces
from torch import nn

from rtrl_rl.agents.encoders import make_encoder

#: hidden layers of each head MLP, and the std of the final layers' weights
HEAD_LAYERS, FINAL_STD = 2, 0.01


def _orthogonal(layer: nn.Linear) -> nn.Linear:
    nn.init.orthogonal_(layer.weight)
    return layer


def init_final(layer: nn.Linear, std: float = FINAL_STD) -> None:
    """POPGym's final-layer init: weights N(0, std²), the bias left at PyTorch's default."""
    with torch.no_grad():
        layer.weight.normal_(0.0, std)


class PopgymEncoder(nn.Module):
    """Linear -> non-affine LayerNorm -> Linear -> LeakyReLU over [flat obs ; extras].

    ``flat`` is the identity encoder of the whole observation space (one-hots for discrete
    parts, a Dict or Tuple flattened entry by entry); ``extra_inputs`` more features are
    concatenated after it. (N, ...) observations and extras (N, extra_inputs) -> (N, size).
    """

    def __init__(self, space: spaces.Space, size: int, extra_inputs: int = 0) -> None:
        super().__init__()
        self.flat = make_encoder(space, "identity")
        self.extra_inputs = extra_inputs
        self.net = nn.Sequential(
            _orthogonal(nn.Linear(self.flat.output_size + extra_inputs, size)),
            nn.LayerNorm(size, elementwise_affine=False),
            _orthogonal(nn.Linear(size, size)),
            nn.LeakyReLU(),
        )
        self.output_size = size

    def forward(self, obs, extras: torch.Tensor | None = None) -> torch.Tensor:
        """obs (N, ...) (or a dict/tuple of such), extras (N, extra_inputs) or None -> (N, size)."""
        x = self.flat(obs)
        if extras is not None:
            x = torch.cat([x, extras.to(x.dtype)], dim=-1)
        if x.shape[-1] != self.net[0].in_features:
            raise ValueError(f"the popgym encoder expects {self.net[0].in_features} input features "
                             f"({self.flat.output_size} of the observation, {self.extra_inputs} extra), "
                             f"got {x.shape[-1]}")
        return self.net(x)


class MLPTrunk(nn.Module):
    """``layers`` Linear(width) + LeakyReLU layers: (..., input_size) -> (..., width)."""

    def __init__(self, input_size: int, width: int, layers: int = HEAD_LAYERS) -> None:
        super().__init__()
        stack, size = [], input_size
        for _ in range(layers):
            stack += [_orthogonal(nn.Linear(size, width)), nn.LeakyReLU()]
            size = width
        self.net = nn.Sequential(*stack)
        self.output_size = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., input_size) -> (..., width)."""
        return self.net(x)
