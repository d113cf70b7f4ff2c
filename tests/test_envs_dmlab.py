"""The DMLab adapter against a test double of deepmind_lab.Lab, and its missing-package error."""

import os
import sys

import numpy as np
import pytest

from rtrl_rl import envs
from rtrl_rl.envs.dmlab_suite import ACTIONS

DOUBLES = os.path.join(os.path.dirname(__file__), "doubles")
DOUBLE = dict(dmlab_module="fake_deepmind_lab", dmlab_path=DOUBLES)


def test_adapter_settings_seeds_and_episodes_in_process():
    venv = envs.make_vector("dmlab:rooms_watermaze", 3, seed=0, workers=0, **DOUBLE)
    import fake_deepmind_lab as fake  # the double, put on sys.path by dmlab_path

    labs = fake.INSTANCES[-3:]
    assert [lab.level for lab in labs] == ["contributed/dmlab30/rooms_watermaze"] * 3
    assert labs[0].config["width"] == "96" and labs[0].config["height"] == "72"
    assert labs[0].observation_names == ["RGB_INTERLEAVED"]
    assert venv.single_observation_space.shape == (72, 96, 3)
    assert venv.single_action_space.n == 9 and len(ACTIONS) == 9
    b = venv.reset()
    assert b.obs.shape == (3, 72, 96, 3) and b.first.all()
    seeds = [lab.seeds[0] for lab in labs]
    assert len(set(seeds)) == 3, "each env gets its own level seed (unlike the reference)"
    steps = fake.EPISODE_STEPS // 4
    for t in range(steps):
        b = venv.step(np.array([0, 4, 8]))
    assert labs[1].actions[0][0].tolist() == [-20, 0, 0, 0, 0, 0, 0]  # look left
    assert labs[2].actions[0][0].tolist() == [0, 0, 0, 0, 1, 0, 0]  # fire
    assert all(n == 4 for lab in labs for _, n in lab.actions), "action repeat 4"
    assert b.terminated.all() and b.first.all()
    assert [e.ret for e in b.episodes] == [float(fake.EPISODE_STEPS)] * 3
    assert [e.length for e in b.episodes] == [steps] * 3
    assert all(len(lab.seeds) == 2 and lab.seeds[1] != lab.seeds[0] for lab in labs)
    venv.close()


def test_adapter_in_workers_and_same_seed_same_level_seeds():
    def first_pixels(seed):
        venv = envs.make_vector("dmlab:rooms_select_nonmatching_object", 2, seed=seed,
                                workers=2, **DOUBLE)
        b = venv.reset()
        venv.close()
        return b.obs[:, 0, 0, 0].tolist()

    assert first_pixels(3) == first_pixels(3)


def test_error_without_deepmind_lab(monkeypatch):
    monkeypatch.setitem(sys.modules, "deepmind_lab", None)
    monkeypatch.delenv("RTRL_RL_DMLAB_PATH", raising=False)
    with pytest.raises(ImportError) as info:
        envs.make_vector("dmlab:rooms_watermaze", 1)
    text = str(info.value)
    assert "no pip package" in text and "bazel build" in text
    assert "RTRL_RL_DMLAB_PATH" in text and "dmlab_path=" in text


def test_unknown_level_lists_closest():
    with pytest.raises(envs.SpecError, match="rooms_watermaze"):
        envs.make_vector("dmlab:rooms_watermase", 1, **DOUBLE)
