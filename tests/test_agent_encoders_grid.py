"""The MinAtar encoder: its shapes, its layers (the MinAtar paper's network), and when auto picks it."""

import numpy as np
import pytest
import torch
from gymnasium import spaces

from rtrl_rl.agents.encoders import MINATAR_OUTPUT, ImpalaEncoder, MinAtarEncoder, make_encoder
from rtrl_rl.config import ConfigError, load_config


def _grid(channels: int) -> spaces.Box:
    return spaces.Box(0, 1, (10, 10, channels), bool)


@pytest.mark.parametrize("channels", [4, 6, 7, 10])  # Asterix/Breakout, SpaceInvaders, Freeway, Seaquest
def test_auto_picks_the_minatar_network_for_boolean_grids(channels):
    space = _grid(channels)
    enc = make_encoder(space)
    assert isinstance(enc, MinAtarEncoder) and enc.output_size == MINATAR_OUTPUT == 128
    # one 3x3 conv of 16 channels without padding (10x10 -> 8x8), then 128 units
    assert (enc.conv.in_channels, enc.conv.out_channels, enc.conv.kernel_size, enc.conv.padding) == (
        channels, 16, (3, 3), (0, 0))
    assert (enc.fc.in_features, enc.fc.out_features) == (16 * 8 * 8, 128)
    space.seed(0)
    batch = torch.as_tensor(np.stack([space.sample() for _ in range(5)]))
    out = enc(batch)
    assert out.shape == (5, 128) and out.dtype == torch.float32 and (out >= 0).all()


def test_the_grid_is_read_channels_last():
    space = _grid(4)
    enc = make_encoder(space).double()
    x = torch.zeros(1, 10, 10, 4, dtype=torch.bool)
    x[0, 2, 3, 1] = True  # one object of channel 1 at row 2, column 3
    manual = torch.relu(enc.fc(torch.relu(enc.conv(x.double().permute(0, 3, 1, 2))).flatten(1)))
    torch.testing.assert_close(enc(x), manual)
    assert enc(x).dtype == torch.float64


def test_other_images_keep_impala_and_the_minatar_choice_is_explicit_too():
    assert isinstance(make_encoder(spaces.Box(0, 255, (64, 64, 3), np.uint8)), ImpalaEncoder)
    floats = spaces.Box(0, 1, (10, 10, 3), np.float32)
    assert isinstance(make_encoder(floats, "minatar"), MinAtarEncoder)
    with pytest.raises(ValueError, match="minatar encoder needs"):
        make_encoder(spaces.Box(0, 1, (7,), np.float32), "minatar")


def test_the_config_names_the_choice():
    assert load_config(None, ["agent.encoder=minatar"]).agent.encoder == "minatar"
    with pytest.raises(ConfigError, match="minatar"):
        load_config(None, ["agent.encoder=minatr"])
