"""Memory tasks: exact reward logic, success flags, chance level, seeds.

Their speed is measured by ``rtrl-rl bench envs memory:recall``, not asserted here."""

import numpy as np
import pytest

from rtrl_rl import envs
from rtrl_rl.envs.memory_suite import MemoryEnv, RecallVector, TMazeVector


def _answer(obs, k):
    return obs[:, :k].argmax(1)


def test_recall_observation_sequence_and_reward():
    k, d = 3, 5
    venv = envs.make_vector("memory:recall", 4, seed=1, num_symbols=k, delay=d)
    b = venv.reset()
    cue = _answer(b.obs, k)
    assert (b.obs[:, k] == 1).all() and (b.obs[:, k + 1] == 0).all()
    assert (b.obs[:, :k].sum(1) == 1).all()
    for t in range(1, d + 1):
        b = venv.step(np.zeros(4, np.int64))
        assert (b.reward == 0).all() and not b.first.any()
        assert (b.obs[:, k:] == 0).all(), "delay steps carry no flag"
        assert (b.obs[:, :k].sum(1) == 1).all(), "distractors: one symbol per delay step"
    b = venv.step(np.zeros(4, np.int64))
    assert (b.obs[:, k + 1] == 1).all() and (b.obs[:, :k] == 0).all(), "query step"
    answers = cue.copy()
    answers[:2] = (cue[:2] + 1) % k  # envs 0, 1 answer wrongly
    b = venv.step(answers)
    assert b.reward.tolist() == [0, 0, 1, 1]
    assert b.terminated.all() and not b.truncated.any() and b.first.all()
    assert [(e.env, e.ret, e.length, e.success) for e in b.episodes] == [
        (0, 0.0, d + 2, False), (1, 0.0, d + 2, False), (2, 1.0, d + 2, True),
        (3, 1.0, d + 2, True)]
    assert (b.obs[:, k] == 1).all(), "next episode starts with its cue"
    assert all((f == 0).all() for f in b.final_obs.values()) and len(b.final_obs) == 4


def test_recall_without_distractors_is_blank():
    venv = RecallVector(2, seed=0, num_symbols=4, delay=3, distractors=False)
    venv.reset()
    for _ in range(3):
        assert (venv.step(np.zeros(2, np.int64)).obs == 0).all()


def test_recall_chance_level_is_one_over_k():
    venv = RecallVector(64, seed=3, num_symbols=4, delay=2)
    venv.reset()
    rng = np.random.default_rng(0)
    succ = []
    for _ in range(400):
        succ += [e.success for e in venv.step(rng.integers(0, 4, 64)).episodes]
    assert len(succ) == 64 * 100
    assert abs(np.mean(succ) - 0.25) < 0.03


def _tmaze_rollout(venv, policy, steps):
    b = venv.reset()
    goals = np.where(b.obs[:, 0] == 0, 0, 2)  # cue [0,1,1] -> up (0), [1,1,0] -> down (2)
    out = []
    for t in range(steps):
        b = venv.step(policy(t, goals))
        out.append(b)
    return out


def test_tmaze_optimal_wrong_and_bump():
    L = 4
    venv = TMazeVector(3, seed=0, length=L)
    first = venv.reset().obs
    assert {tuple(r) for r in first} <= {(0, 1, 1), (1, 1, 0)}
    goals = np.where(first[:, 0] == 0, 0, 2)
    for t in range(L):
        b = venv.step(np.ones(3, np.int64))
        expect = [0, 1, 0] if t == L - 1 else [1, 0, 1]
        assert (b.obs == expect).all() and (b.reward == 0).all()
    b = venv.step(np.array([1, 3, 1]))  # env0 bumps right at the junction, env1 goes back
    assert b.reward.tolist() == pytest.approx([-0.1, 0.0, -0.1])
    b = venv.step(np.array([goals[0], 1, 2 - goals[2]]))  # env0 right arm, env2 wrong arm
    assert b.reward.tolist() == pytest.approx([4.0, 0.0, -0.1])
    assert b.terminated.tolist() == [True, False, True]
    ends = {e.env: e for e in b.episodes}
    assert ends[0].success is True and ends[2].success is False and ends[0].length == L + 2


def test_tmaze_truncates_at_max_steps():
    venv = TMazeVector(2, seed=0, length=3, max_steps=7)
    venv.reset()
    for t in range(7):
        b = venv.step(np.full(2, 3))  # always bump left at x=0
    assert b.truncated.all() and not b.terminated.any() and b.first.all()
    assert all(e.success is False and e.length == 7 for e in b.episodes)
    assert all((f == [1, 0, 1]).all() for f in b.final_obs.values())


@pytest.mark.parametrize("task", ["recall", "tmaze"])
def test_same_seed_same_trajectory_and_workers_replay(task):
    def run(**kw):
        venv = envs.make_vector(f"memory:{task}", 3, seed=7, **kw)
        rng = np.random.default_rng(1)
        obs = [venv.reset().obs]
        obs += [venv.step(rng.integers(0, 4 if task == "tmaze" else 4, 3)).obs
                for _ in range(60)]
        venv.close()
        return np.stack(obs)

    a, b = run(), run()
    assert np.array_equal(a, b)
    assert not np.array_equal(a[:, 0], a[:, 1]), "sub-envs get different seeds"
    assert np.array_equal(a, run(workers=1)), "worker-backed copy replays the native one"


def test_memory_env_single_passes_through():
    env = MemoryEnv("recall", num_symbols=2, delay=0)
    obs, _ = env.reset(seed=0)
    obs, r, term, trunc, _ = env.step(0)
    assert obs[-1] == 1  # query
    obs, r, term, trunc, info = env.step(0)
    assert term and info["success"] == (r == 1.0)
