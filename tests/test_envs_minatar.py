"""MinAtar as a suite: spaces, MinAtar's defaults, seeding, sticky actions (measured), check-env,
one update on every game, and the error naming the extra when the package is missing."""

from __future__ import annotations

import sys

import numpy as np
import pytest

pytest.importorskip("minatar", reason='minatar is not installed: pip install "rtrl-rl[minatar]"')

from gymnasium import spaces  # noqa: E402

from rtrl_rl import envs  # noqa: E402
from rtrl_rl.agents import ActorCritic  # noqa: E402
from rtrl_rl.agents.encoders import MinAtarEncoder  # noqa: E402
from rtrl_rl.config import load_config  # noqa: E402
from rtrl_rl.envs.check import run_check  # noqa: E402
from rtrl_rl.training.sync_trainer import train  # noqa: E402

#: game -> channels of its (10, 10, C) observation and the size of its minimal action set
GAMES = {"Asterix": (4, 5), "Breakout": (4, 3), "Freeway": (7, 3), "Seaquest": (10, 6),
         "SpaceInvaders": (6, 4)}
LEFT, RIGHT = 1, 3  # MinAtar's action indices of the full set ('n', 'l', 'u', 'r', 'd', 'f')


@pytest.mark.parametrize("game", GAMES)
def test_spaces_and_minatar_defaults(game):
    channels, minimal = GAMES[game]
    with envs.make_vector(f"minatar:{game}", 2, seed=0) as venv:
        assert venv.single_observation_space == spaces.Box(0, 1, (10, 10, channels), bool)
        assert venv.single_action_space == spaces.Discrete(6)  # the full set by default
        assert venv.options["sticky_action_prob"] == 0.1 and venv.options["difficulty_ramping"] is True
        assert venv.options["use_minimal_action_set"] is False
        assert venv.options["workers"] == 0  # cheaper than the in-process threshold per step
        obs = venv.reset().obs
        assert obs.shape == (2, 10, 10, channels) and obs.dtype == bool and obs.any()
    with envs.make_vector(f"minatar:{game}", 1, seed=0, use_minimal_action_set=True) as venv:
        assert venv.single_action_space == spaces.Discrete(minimal)


def test_game_names_and_refusals():
    with envs.make_vector("minatar:space_invaders", 1) as venv:  # MinAtar's own spelling
        assert venv.single_observation_space.shape == (10, 10, 6)
    with pytest.raises(envs.SpecError, match="closest: Breakout"):
        envs.make_vector("minatar:Breakot", 1)
    with pytest.raises(envs.SpecError, match="valid: sticky_action_prob"):
        envs.make_vector("minatar:Breakout", 1, sticky=0.0)


def _rollout(seed: int, steps: int = 300, **options) -> list[tuple]:
    actions = np.random.default_rng(123).integers(0, 6, size=(steps, 3))
    with envs.make_vector("minatar:Seaquest", 3, seed=seed, **options) as venv:
        first = venv.reset()
        out = [(first.obs.copy(),)]
        for a in actions:
            b = venv.step(a)
            out.append((b.obs.copy(), b.reward.copy(), b.terminated.copy(), b.first.copy()))
    return out


def _same(a: list[tuple], b: list[tuple]) -> bool:
    return all(np.array_equal(x, y) for sa, sb in zip(a, b) for x, y in zip(sa, sb))


def test_same_seed_same_trajectory_other_seed_another():
    # Seaquest draws enemies and divers at random, and sticky actions draw every step
    assert _same(_rollout(0), _rollout(0))
    assert not _same(_rollout(0), _rollout(1))
    # with in-process stepping and with a worker process alike
    assert _same(_rollout(0), _rollout(0, workers=1))


def _repeat_rate(sticky: float, steps: int = 4000) -> float:
    """Fraction of Breakout paddle moves against the commanded direction, commands alternating.

    MinAtar repeats the previous *executed* action with probability p = ``sticky_action_prob``.
    Under alternating left/right commands a move goes against its command when the step
    repeats (p) and the previous step went the commanded way (1 - q): q = p (1 - q), so the
    rate is q = p / (1 + p).
    """
    against = moved = 0
    with envs.make_vector("minatar:Breakout", 1, seed=3, sticky_action_prob=sticky) as venv:
        paddle = np.flatnonzero(venv.reset().obs[0, 9, :, 0])[0]
        for t in range(steps):
            command = LEFT if t % 2 else RIGHT
            batch = venv.step(np.array([command]))
            new = np.flatnonzero(batch.obs[0, 9, :, 0])[0]
            if not batch.first[0] and new != paddle:
                moved += 1
                against += (new > paddle) != (command == RIGHT)
            paddle = new
    return against / moved


def test_sticky_actions_repeat_the_previous_action_at_their_rate():
    # about 3,900 moves counted: the standard error of the rate is below 0.008
    assert _repeat_rate(0.0) == 0.0
    assert _repeat_rate(0.1) == pytest.approx(0.1 / 1.1, abs=0.02)  # MinAtar's default
    assert _repeat_rate(0.5) == pytest.approx(0.5 / 1.5, abs=0.04)


def test_no_time_limit_by_default_and_max_episode_steps_truncates():
    # a Seaquest submarine that stays at the surface never runs out of oxygen: MinAtar has no
    # time limit, so the episode never ends (which is why a greedy evaluation needs one)
    with envs.make_vector("minatar:Seaquest", 2, seed=0) as venv:
        venv.reset()
        assert not any(venv.step(np.zeros(2, np.int64)).first.any() for _ in range(3000))
    with envs.make_vector("minatar:Seaquest", 1, seed=0, max_episode_steps=50) as venv:
        venv.reset()
        ends = [t for t in range(1, 101) if venv.step(np.zeros(1, np.int64)).truncated[0]]
    assert ends == [50, 100]


def test_check_env_passes(capsys):
    assert run_check("minatar:Seaquest", num_envs=2, steps=200) == 0
    out = capsys.readouterr().out
    assert "gymnasium checker: passed" in out and "sticky_action_prob=0.1" in out


@pytest.mark.parametrize("game", GAMES)
def test_each_game_builds_the_minatar_encoder_and_runs_one_update(tmp_path, game):
    config = load_config(None, [f"env.id=minatar:{game}", "env.num_envs=2", "agent.hidden_size=8",
                                "train.segment_length=5", "train.total_steps=10", "train.target_success=0",
                                "env.options.max_episode_steps=300", "log.eval_episodes=1", "log.progress=false",
                                "log.tensorboard=false", f"run_dir={tmp_path}"])
    with envs.make_vector(config.env.id, 1) as venv:
        model = ActorCritic(venv.single_observation_space, venv.single_action_space, config.agent)
    assert isinstance(model.encoder, MinAtarEncoder)  # agent.encoder=auto picks it
    summary = train(config)
    assert summary["updates"] == 1 and summary["steps"] == 10
    evaluation = summary["evaluations"][-1]
    assert evaluation["episodes"] == 1 and evaluation["mean_length"] <= 300


def test_missing_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "minatar", None)
    monkeypatch.setitem(sys.modules, "minatar.gym", None)
    with pytest.raises(ImportError, match=r'pip install "rtrl-rl\[minatar\]"'):
        envs.make_vector("minatar:Breakout", 1)


@pytest.mark.parametrize("name, steps", [("minatar/segment", 1280), ("minatar/stream", 20)])
def test_the_ready_configs_train_on_minatar(tmp_path, name, steps):
    from rtrl_rl.config import resolve_config_path
    from rtrl_rl.training.stream_trainer import train_stream

    config = load_config(resolve_config_path(name), [f"train.total_steps={steps}", "log.progress=false",
                                                     "log.tensorboard=false", f"run_dir={tmp_path}"])
    assert config.env.id.startswith("minatar:") and config.env.options == {}  # MinAtar's defaults
    assert (config.agent.core, config.agent.learning, config.agent.encoder) == ("elstm", "rtrl", "minatar")
    summary = (train_stream if config.agent.algorithm == "stream" else train)(config)
    assert summary["steps"] == steps and summary["updates"] >= 1
