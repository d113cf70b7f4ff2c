"""Custom envs by module and file path, spaces passed through, same-step autoreset."""

import os

import numpy as np
import pytest

from rtrl_rl import envs

ASSET = os.path.join(os.path.dirname(__file__), "assets", "custom_env.py")


def _counting_run(workers, steps=40, seed=3):
    venv = envs.make_vector(f"{ASSET}:CountingEnv", 3, seed=seed, workers=workers)
    batches = [venv.reset()]
    batches += [venv.step(np.zeros(3, np.int64)) for _ in range(steps)]
    venv.close()
    return batches


@pytest.mark.parametrize("workers", [0, 2])
def test_first_flag_and_autoreset_never_mix_episodes(workers):
    batches = _counting_run(workers)
    assert batches[0].first.all()
    prev = batches[0].obs
    ended = 0
    for b in batches[1:]:
        assert np.array_equal(b.first, b.terminated | b.truncated)
        for i in range(3):
            episode, t = prev[i]
            k = int(episode) % 1000
            end = t + 1 >= k % 3 + 2
            assert b.first[i] == end
            assert b.reward[i] == t, "the reward belongs to the action just taken"
            if end:
                assert b.terminated[i] == (k % 2 == 0) and b.truncated[i] == (k % 2 == 1)
                assert b.obs[i].tolist() == [episode + 1, 0], "next episode's first obs"
                assert b.final_obs[i].tolist() == [episode, t + 1], "last obs of this one"
                ended += 1
            else:
                assert b.obs[i].tolist() == [episode, t + 1]
        stats = {e.env: e for e in b.episodes}
        assert sorted(stats) == sorted(b.final_obs) == list(np.flatnonzero(b.first))
        for i, e in stats.items():
            assert e.length == prev[i][1] + 1 and e.ret == sum(range(e.length))
            assert e.success is True
        prev = b.obs
    assert ended > 10


def test_seeds_reproduce_and_differ_across_envs_and_workers():
    a, b = _counting_run(0), _counting_run(2)
    for x, y in zip(a, b):
        assert np.array_equal(x.obs, y.obs) and np.array_equal(x.reward, y.reward)
    ids = a[0].obs[:, 0]
    assert len(set(ids.tolist())) == 3, "each sub-env gets its own seed"
    other = _counting_run(0, seed=4)
    assert not np.array_equal(other[0].obs, a[0].obs)


def test_module_path_entry_point():
    venv = envs.make_vector("gymnasium.envs.classic_control.cartpole:CartPoleEnv", 2,
                            seed=0, workers=0)
    b = venv.reset()
    assert b.obs.shape == (2, 4) and b.obs.dtype == np.float32
    venv.step(np.array([0, 1]))
    venv.close()


@pytest.mark.parametrize("action,workers", [("multidiscrete", 0), ("box", 1)])
def test_dict_obs_and_action_spaces_pass_through(action, workers):
    venv = envs.make_vector(f"{ASSET}:RichEnv", 2, seed=0, workers=workers, action=action)
    assert type(venv.single_action_space).__name__ == (
        "MultiDiscrete" if action == "multidiscrete" else "Box")
    b = venv.reset()
    assert set(b.obs) == {"pos", "flag"} and b.obs["pos"].shape == (2, 2)
    acts = (np.array([[2, 3], [1, 0]]) if action == "multidiscrete"
            else np.array([[1.0, -1.0, 0.0], [0.5, 0.5, 0.5]], np.float32))
    for _ in range(5):
        b = venv.step(acts)
    assert b.first.all() and set(b.final_obs) == {0, 1}
    assert b.final_obs[0]["pos"].tolist() == pytest.approx(list(np.clip(acts[0][:2] / 4, -1, 1)))
    assert b.obs["flag"].tolist() == [0, 0]
    venv.close()


def test_gym_id_with_imports_option_and_optional_registries():
    venv = envs.make_vector("gym:CartPole-v1", 2, seed=0, imports="[gymnasium.envs]")
    assert venv.reset().obs.shape == (2, 4)
    venv.close()
    pop = envs.make_vector("popgym:RepeatPreviousEasy", 2, seed=0, workers=0)
    pop.reset()
    pop.step(np.zeros(2, np.int64))
    pop.close()
    grid = envs.make_vector("minigrid:Empty-5x5", 2, seed=0, workers=1)
    assert set(grid.single_observation_space.spaces) == {"direction", "image"}
    assert grid.reset().obs["image"].shape == (2, 7, 7, 3)
    grid.close()


def test_missing_optional_registry_names_the_extra(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "popgym", None)
    with pytest.raises(ImportError, match=r'pip install "rtrl-rl\[popgym\]"'):
        envs.make_vector("popgym:RepeatPreviousEasy", 1)


def test_spec_errors():
    with pytest.raises(ValueError, match="Valid suites"):
        envs.make_vector("nosuchsuite:thing", 1)
    with pytest.raises(envs.SpecError, match="CartPole-v1"):
        envs.make_vector("gym:CartPol-v1", 1)
    with pytest.raises(envs.SpecError, match="recall"):
        envs.make_vector("memory:recal", 1)
