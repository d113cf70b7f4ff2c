"""Encoders: the choice by observation space, output shapes and dtypes, Dict spaces, refusals."""

import numpy as np
import pytest
import torch
from gymnasium import spaces

from rtrl_rl.agents.encoders import IMPALA_OUTPUT, DictEncoder, IdentityEncoder, ImpalaEncoder, MLPEncoder, make_encoder


def _batch(space, n=2):
    return torch.as_tensor(np.stack([space.sample() for _ in range(n)]))


@pytest.mark.parametrize("shape", [(64, 64, 3), (4, 84, 84), (1, 12, 10)])
def test_impala_for_images_in_either_layout(shape):
    space = spaces.Box(0, 255, shape, np.uint8)
    enc = make_encoder(space)
    assert isinstance(enc, ImpalaEncoder) and enc.output_size == IMPALA_OUTPUT
    assert enc(_batch(space)).shape == (2, IMPALA_OUTPUT)


def test_impala_scales_uint8_and_follows_dtype():
    space = spaces.Box(0, 255, (8, 8, 3), np.uint8)
    enc = make_encoder(space).double()
    x = _batch(space)
    out = enc(x)
    assert out.dtype == torch.float64
    # The same image as floats in [0, 1] through the stages gives the same features.
    manual = torch.relu(enc.fc(torch.relu(enc.stages(x.double().permute(0, 3, 1, 2) / 255)).flatten(1)))
    torch.testing.assert_close(out, manual)


def test_impala_has_three_stages_of_conv_pool_and_two_residual_blocks():
    enc = make_encoder(spaces.Box(0, 255, (3, 16, 16), np.uint8))
    assert [stage[0].out_channels for stage in enc.stages] == [16, 32, 32]
    for stage in enc.stages:
        assert isinstance(stage[1], torch.nn.MaxPool2d) and stage[1].stride == 2
        assert len(stage) == 4  # conv, pool, two residual blocks


def test_mlp_for_vectors_and_flattened_others():
    vec = spaces.Box(-1, 1, (7,), np.float32)
    enc = make_encoder(vec, size=16)
    assert isinstance(enc, MLPEncoder) and enc(_batch(vec)).shape == (2, 16)
    grid = spaces.Box(-1, 1, (3, 5), np.float32)
    assert make_encoder(grid, size=16)(_batch(grid)).shape == (2, 16)
    assert make_encoder(spaces.Discrete(5), size=16)(torch.tensor([0, 4])).shape == (2, 16)
    assert len(enc.net) == 2  # one Linear + ReLU by default (see MLPEncoder)
    deep = make_encoder(vec, size=16, mlp_layers=2)
    assert len(deep.net) == 4 and deep(_batch(vec)).shape == (2, 16)


def test_identity_encoder_is_the_flat_observation():
    space = spaces.Box(-1, 1, (2, 3), np.float32)
    enc = make_encoder(space, "identity").double()
    x = _batch(space)
    assert isinstance(enc, IdentityEncoder)
    torch.testing.assert_close(enc(x), x.double().reshape(2, 6))
    onehot = make_encoder(spaces.Discrete(3), "identity")(torch.tensor([2, 0]))
    assert onehot.tolist() == [[0, 0, 1], [1, 0, 0]]


@pytest.mark.parametrize("space", [
    spaces.Discrete(4), spaces.Discrete(3, start=-1), spaces.MultiDiscrete([2, 2]), spaces.MultiDiscrete([3] * 52),
    spaces.MultiDiscrete([[2, 3], [4, 1]], start=[[0, 1], [-2, 0]]), spaces.MultiBinary(5),
    spaces.Box(-4.8, 4.8, (2,), np.float32)])
def test_identity_encoder_equals_gymnasium_flatten(space):
    space.seed(0)
    samples = [space.sample() for _ in range(6)]
    enc = make_encoder(space, "identity").double()
    assert enc.output_size == spaces.flatdim(space)
    got = enc(torch.as_tensor(np.stack(samples)))
    want = torch.as_tensor(np.stack([spaces.flatten(space, x) for x in samples]), dtype=torch.float64)
    torch.testing.assert_close(got, want)


def test_tuple_is_encoded_like_the_dict_of_its_positions():
    space = spaces.Tuple([spaces.Discrete(2), spaces.Discrete(4)])  # POPGym Autoencode
    space.seed(1)
    samples = [space.sample() for _ in range(5)]
    enc = make_encoder(space, "identity").double()
    assert isinstance(enc, DictEncoder) and enc.output_size == spaces.flatdim(space) == 6
    as_tuple = tuple(torch.as_tensor(np.stack([x[i] for x in samples])) for i in range(2))
    want = torch.as_tensor(np.stack([spaces.flatten(space, x) for x in samples]), dtype=torch.float64)
    torch.testing.assert_close(enc(as_tuple), want)
    torch.testing.assert_close(enc({"0": as_tuple[0], "1": as_tuple[1]}), want)


def test_dict_encodes_each_key_and_concatenates():
    space = spaces.Dict({"image": spaces.Box(0, 255, (8, 8, 3), np.uint8), "vec": spaces.Box(-1, 1, (4,))})
    enc = make_encoder(space, size=16)
    assert isinstance(enc, DictEncoder)
    assert isinstance(enc.encoders["image"], ImpalaEncoder) and isinstance(enc.encoders["vec"], MLPEncoder)
    obs = {k: _batch(s) for k, s in space.spaces.items()}
    assert enc(obs).shape == (2, IMPALA_OUTPUT + 16)


@pytest.mark.parametrize("space", [spaces.Tuple([spaces.Text(3)]), spaces.Text(5), spaces.Graph(spaces.Box(0, 1, (2,)), None)])
def test_unsupported_observation_spaces_are_refused(space):
    with pytest.raises(ValueError, match="unsupported observation space"):
        make_encoder(space)


def test_bad_encoder_kind_and_impala_on_vectors():
    with pytest.raises(ValueError, match="unknown encoder"):
        make_encoder(spaces.Box(-1, 1, (3,)), "cnn")
    with pytest.raises(ValueError, match="rank-3 image"):
        make_encoder(spaces.Box(-1, 1, (3,)), "impala")
