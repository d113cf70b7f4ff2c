"""Atari through ale-py's vector env: real Pong and Breakout ROMs, short episodes."""

import numpy as np
import pytest

from rtrl_rl import envs
from env_rollouts import rollout_frames

pytest.importorskip("ale_py")


def test_pong_short_episode_truncated_at_frame_cap_raw_score():
    # 400 frames = 100 agent steps at frame skip 4: the cap truncates the episode
    venv = envs.make_vector("atari:Pong", 2, seed=0, max_frames=400)
    assert venv.single_observation_space.shape == (84, 84, 1)
    assert venv.single_action_space.n == 6  # minimal action set
    b = venv.reset()
    assert b.obs.shape == (2, 84, 84, 1) and b.obs.dtype == np.uint8 and b.first.all()
    rng = np.random.default_rng(0)
    total = np.zeros(2)
    for t in range(100):
        b = venv.step(rng.integers(0, 6, 2))
        total += b.reward
        if t < 99:
            assert not b.first.any()
    assert b.truncated.all() and not b.terminated.any() and b.first.all()
    assert set(b.final_obs) == {0, 1} and b.final_obs[0].shape == (84, 84, 1)
    assert [e.ret for e in b.episodes] == total.tolist()
    assert all(e.length == 100 for e in b.episodes)
    assert total.min() < 0, "Pong's raw score (-1 per point lost), never clipped away"
    venv.close()


def test_breakout_life_loss_signal_and_game_over():
    venv = envs.make_vector("atari:ALE/Breakout-v5", 2, seed=1)
    venv.reset()
    rng = np.random.default_rng(0)
    lost, ended = 0, []
    for _ in range(1500):
        b = venv.step(rng.integers(0, 4, 2))
        lost += int(b.life_lost.sum())
        assert not (b.life_lost & b.first).any()
        ended += b.episodes
        if ended:
            break
    assert lost >= 4, "life losses are signalled while the game goes on"
    assert ended and ended[0].length > 0 and ended[0].env in (0, 1)
    venv.close()


def test_same_seed_same_frames_and_unknown_game():
    a = rollout_frames("atari:Breakout", 5, [1, 3], 30)
    assert np.array_equal(a, rollout_frames("atari:Breakout", 5, [1, 3], 30))
    with pytest.raises(envs.SpecError, match="Pong"):
        envs.make_vector("atari:Ponng", 1)
