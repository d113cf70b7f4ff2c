"""ProcGen through procgen-mirror's gym3 env: a coinrun episode, level options respected."""

import numpy as np
import pytest

from rtrl_rl import envs
from env_rollouts import rollout_frames

pytest.importorskip("procgen")


def test_coinrun_episode_with_num_levels_and_start_level():
    venv = envs.make_vector("procgen:coinrun", 4, seed=0, num_levels=1, start_level=42)
    assert venv.single_observation_space.shape == (64, 64, 3)
    assert venv.single_action_space.n == 15
    b = venv.reset()
    assert b.obs.shape == (4, 64, 64, 3) and b.obs.dtype == np.uint8 and b.first.all()
    assert venv.level_seeds() == [42] * 4
    rng = np.random.default_rng(0)
    episodes = []
    for _ in range(1200):
        b = venv.step(rng.integers(0, 15, 4))
        assert np.array_equal(b.first, b.terminated) and not b.truncated.any()
        assert b.final_obs == {}, "gym3 gives no final observation"
        episodes += b.episodes
        if episodes:
            break
    assert episodes and episodes[0].success in (True, False)
    assert episodes[0].ret == (10.0 if episodes[0].success else 0.0)
    assert venv.level_seeds() == [42] * 4, "still level 42 after the episode"
    venv.close()


def test_train_test_split_helper():
    train, test = envs.procgen_split()
    assert train == dict(num_levels=200, start_level=0, distribution_mode="easy")
    assert test["num_levels"] == 0
    venv = envs.make_vector("procgen:starpilot", 2, seed=1, **train)
    venv.reset()
    assert all(0 <= s < 200 for s in venv.level_seeds())
    venv.close()


def test_unknown_game():
    with pytest.raises(envs.SpecError, match="coinrun"):
        envs.make_vector("procgen:coinrunn", 1)


def test_same_seed_same_frames():
    a = rollout_frames("procgen:coinrun", 2, [1, 5], 20)
    assert np.array_equal(a, rollout_frames("procgen:coinrun", 2, [1, 5], 20))
    assert not np.array_equal(a, rollout_frames("procgen:coinrun", 3, [1, 5], 20))
