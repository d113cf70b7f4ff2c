"""Observation encoders: IMPALA ResNet for images, MinAtar's network for boolean grids, an MLP
for vectors, identity, and Dict/Tuple.

Every encoder maps a batch of observations (N, ...) — or a dict of such tensors for a Dict
space — to float features (N, output_size) in the encoder's dtype. The learner folds time
into the batch (N = T * B) before calling it. Choose one with :func:`make_encoder`.
"""

from __future__ import annotations

import math

import torch
from gymnasium import spaces
from torch import nn

IMPALA_CHANNELS = (16, 32, 32)
IMPALA_OUTPUT = 256
#: MinAtar's network (Young & Tian 2019): one 3x3 convolution of 16 channels, then 128 units
MINATAR_CHANNELS = 16
MINATAR_OUTPUT = 128
#: the leaf spaces an encoder reads (Dict and Tuple hold these)
FLAT_SPACES = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)


class _DtypeProbe(nn.Module):
    """Base with an empty buffer, so that parameter-free encoders follow ``.double()``/``.to()``."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("_probe", torch.zeros(0), persistent=False)

    def _float(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self._probe.dtype)


class IdentityEncoder(_DtypeProbe):
    """The raw observation as the flat float vector of ``gymnasium.spaces.flatten``.

    (N, ...) -> (N, flatdim(space)): Box and MultiBinary flattened, Discrete one-hot,
    MultiDiscrete the concatenated one-hots of its components (``start`` subtracted), so a
    symbol index is never read as a magnitude. tests/test_agent_encoders.py checks it
    against gymnasium's own ``flatten`` on samples of each space.
    """

    def __init__(self, space: spaces.Space) -> None:
        super().__init__()
        self.kind = type(space).__name__
        self.output_size = int(spaces.flatdim(space))
        if isinstance(space, (spaces.Discrete, spaces.MultiDiscrete)):
            nvec = torch.as_tensor(space.nvec if isinstance(space, spaces.MultiDiscrete) else space.n).reshape(-1)
            offsets = torch.cumsum(nvec, 0) - nvec  # where each component's one-hot begins
            self.register_buffer("start", torch.as_tensor(space.start).reshape(-1), persistent=False)
            self.register_buffer("offsets", offsets, persistent=False)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """(N, ...) -> (N, output_size)."""
        if self.kind not in ("Discrete", "MultiDiscrete"):
            return self._float(obs.reshape(obs.shape[0], -1))
        index = obs.long().reshape(obs.shape[0], -1) - self.start + self.offsets
        hot = torch.zeros(obs.shape[0], self.output_size, dtype=self._probe.dtype, device=obs.device)
        return hot.scatter_(1, index, 1.0)


class MLPEncoder(nn.Module):
    """``layers`` Linear + ReLU layers of ``size`` over the flattened observation.

    One layer by default: on the default recall task (eLSTM n=64, RTRL, 128 streams) a
    one-layer encoder reached 97-99% sampled success in 40-60 s (two seeds), while a
    two-layer one stayed at chance for 90-150 s; the deeper random features make the
    cue harder for the core's gates to pick out before the encoder has learned anything.
    """

    def __init__(self, space: spaces.Space, size: int, layers: int = 1) -> None:
        super().__init__()
        if layers < 1:
            raise ValueError(f"the MLP encoder needs at least one layer, got {layers}")
        self.flat = IdentityEncoder(space)
        stack, width = [], self.flat.output_size
        for _ in range(layers):
            stack += [nn.Linear(width, size), nn.ReLU()]
            width = size
        self.net = nn.Sequential(*stack)
        self.output_size = size

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """(N, ...) -> (N, size)."""
        return self.net(self.flat(obs))


class _ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv1(torch.relu(self.conv0(torch.relu(x))))


def _impala_stage(in_channels: int, out_channels: int) -> nn.Sequential:
    """Conv 3x3, max-pool 3x3 stride 2, two residual blocks (Espeholt et al. 2018, fig. 3)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1),
        nn.MaxPool2d(3, stride=2, padding=1),
        _ResidualBlock(out_channels),
        _ResidualBlock(out_channels),
    )


def image_layout(shape: tuple[int, ...]) -> tuple[tuple[int, int, int], bool]:
    """(C, H, W) of a rank-3 image shape and whether it is channels-last (H, W, C).

    Channels-last is assumed when the last axis is small (<= 4, grey/RGB/RGBA or a few
    stacked frames) and the first is not; e.g. (64, 64, 3) -> HWC, (4, 84, 84) -> CHW.
    """
    if shape[-1] <= 4 and shape[0] > 4:
        return (shape[2], shape[0], shape[1]), True
    return (shape[0], shape[1], shape[2]), False


class ImpalaEncoder(nn.Module):
    """IMPALA ResNet (channels 16, 32, 32) then Linear 256 + ReLU, for rank-3 image Boxes.

    uint8 images are scaled by 1/255; HWC input is permuted to CHW.
    """

    def __init__(self, space: spaces.Box) -> None:
        super().__init__()
        (c, h, w), self.channels_last = image_layout(tuple(space.shape))
        self.scale = 1.0 / 255.0 if space.dtype == "uint8" else 1.0
        stages, in_c = [], c
        for out_c in IMPALA_CHANNELS:
            stages.append(_impala_stage(in_c, out_c))
            in_c = out_c
        self.stages = nn.Sequential(*stages)
        with torch.no_grad():
            flat = self.stages(torch.zeros(1, c, h, w)).numel()
        self.fc = nn.Linear(flat, IMPALA_OUTPUT)
        self.output_size = IMPALA_OUTPUT

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """(N, H, W, C) or (N, C, H, W) -> (N, 256)."""
        x = obs.to(self.fc.weight.dtype) * self.scale
        if self.channels_last:
            x = x.permute(0, 3, 1, 2)
        x = torch.relu(self.stages(x)).flatten(1)
        return torch.relu(self.fc(x))


class MinAtarEncoder(nn.Module):
    """MinAtar's network for (H, W, C) grids: Conv 3x3 of 16 channels (stride 1, no padding) +
    ReLU, then Linear 128 + ReLU: the MinAtar paper's DQN network (Young & Tian 2019; its AC(lambda)
    has the same layers with SiLU and dSiLU activations).

    A (10, 10, C) bool MinAtar observation becomes 16 x 8 x 8 = 1,024 conv features, then 128.
    The grid is read as 0/1 (bool) or as it is (other dtypes); channels-last is permuted to CHW.
    """

    def __init__(self, space: spaces.Box) -> None:
        super().__init__()
        h, w, c = space.shape
        self.conv = nn.Conv2d(c, MINATAR_CHANNELS, 3)
        self.fc = nn.Linear(MINATAR_CHANNELS * (h - 2) * (w - 2), MINATAR_OUTPUT)
        self.output_size = MINATAR_OUTPUT

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """(N, H, W, C) -> (N, 128)."""
        x = obs.to(self.fc.weight.dtype).permute(0, 3, 1, 2)
        x = torch.relu(self.conv(x)).flatten(1)
        return torch.relu(self.fc(x))


def _members(space: spaces.Dict | spaces.Tuple) -> dict[str, spaces.Space]:
    """A Dict's entries, or a Tuple's as ``{"0": ..., "1": ...}`` (how the env suites pass a Tuple on)."""
    if isinstance(space, spaces.Tuple):
        return {str(i): s for i, s in enumerate(space.spaces)}
    return dict(space.spaces)


class DictEncoder(nn.Module):
    """Encodes each entry of a Dict (or Tuple) observation with its own encoder and concatenates
    (sorted keys; a Tuple's element i has the key ``"i"``)."""

    def __init__(self, space: spaces.Dict | spaces.Tuple, kind: str, size: int, mlp_layers: int = 1) -> None:
        super().__init__()
        members = _members(space)
        self.keys = sorted(members)
        self.encoders = nn.ModuleDict({k: make_encoder(members[k], kind, size, mlp_layers) for k in self.keys})
        self.output_size = sum(e.output_size for e in self.encoders.values())

    def forward(self, obs: dict[str, torch.Tensor] | tuple[torch.Tensor, ...]) -> torch.Tensor:
        """{key: (N, ...)} (or a tuple, element i for key "i") -> (N, sum of the output sizes)."""
        if isinstance(obs, (tuple, list)):
            obs = {str(i): o for i, o in enumerate(obs)}
        return torch.cat([self.encoders[k](obs[k]) for k in self.keys], dim=-1)


def _is_image(space: spaces.Space) -> bool:
    return isinstance(space, spaces.Box) and len(space.shape) == 3


def _is_grid(space: spaces.Space) -> bool:
    """A boolean (H, W, C) Box with H, W >= 3: MinAtar's observation (10, 10, C)."""
    return _is_image(space) and space.dtype == bool and min(space.shape[:2]) >= 3


def make_encoder(
    observation_space: spaces.Space, kind: str = "auto", size: int = 64, mlp_layers: int = 1
) -> nn.Module:
    """The encoder for ``observation_space``; the module has ``output_size``.

    kind: "auto" (MinAtar's network for boolean (H, W, C) grids, IMPALA for other rank-3
    Boxes, an MLP of ``mlp_layers`` layers of ``size`` for anything else), "minatar"
    (any channels-last (H, W, C) Box), "impala", "mlp" or "identity". Supported spaces: Box, Discrete
    (one-hot), MultiDiscrete (concatenated one-hots), MultiBinary, and a Dict or Tuple of
    those (each entry encoded by the same rule, then concatenated). Others raise ValueError.
    """
    if kind not in ("auto", "mlp", "impala", "minatar", "identity"):
        raise ValueError(f"unknown encoder {kind!r}; choose one of auto, mlp, impala, minatar, identity")
    if isinstance(observation_space, (spaces.Dict, spaces.Tuple)):
        return DictEncoder(observation_space, kind, size, mlp_layers)
    if not isinstance(observation_space, FLAT_SPACES):
        raise ValueError(f"unsupported observation space {observation_space}: use Box, Discrete, MultiDiscrete, "
                         "MultiBinary or a Dict or Tuple of them")
    if kind == "minatar" or (kind == "auto" and _is_grid(observation_space)):
        if not _is_image(observation_space) or min(observation_space.shape[:2]) < 3:
            raise ValueError(f"the minatar encoder needs an (H, W, C) Box with H, W >= 3, got {observation_space}")
        return MinAtarEncoder(observation_space)
    if kind == "impala" or (kind == "auto" and _is_image(observation_space)):
        if not _is_image(observation_space):
            raise ValueError(f"the impala encoder needs a rank-3 image Box, got {observation_space}")
        return ImpalaEncoder(observation_space)
    if kind == "identity":
        return IdentityEncoder(observation_space)
    return MLPEncoder(observation_space, size, mlp_layers)
