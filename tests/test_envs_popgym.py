"""POPGym as a suite: every installed env by name, every space combination trains one update."""

from __future__ import annotations

import pytest

pytest.importorskip("popgym", reason='popgym is not installed: pip install "rtrl-rl[popgym]"')

from gymnasium import spaces  # noqa: E402

from rtrl_rl import envs  # noqa: E402
from rtrl_rl.config import load_config  # noqa: E402
from rtrl_rl.envs.popgym_suite import popgym_ids, resolve_popgym  # noqa: E402
from rtrl_rl.training.sync_trainer import train  # noqa: E402

#: one env per POPGym family (Easy): together every observation/action space combination
#: of the suite (Discrete, MultiDiscrete, Tuple and Box observations; Discrete,
#: MultiDiscrete and Box actions)
FAMILIES = ["AutoencodeEasy", "RepeatPreviousEasy", "RepeatFirstEasy", "CountRecallEasy",
            "PositionOnlyCartPoleEasy", "PositionOnlyPendulumEasy", "VelocityOnlyCartPoleEasy",
            "NoisyPositionOnlyCartPoleEasy", "NoisyPositionOnlyPendulumEasy", "MultiarmedBanditEasy",
            "HigherLowerEasy", "BattleshipEasy", "ConcentrationEasy", "MineSweeperEasy"]


def test_every_installed_env_resolves_by_class_name_and_id():
    ids = popgym_ids()
    assert len(ids) >= 42 and set(FAMILIES) <= set(ids)
    for name, env_id in ids.items():
        assert resolve_popgym(name) == env_id == resolve_popgym(env_id)
    # popgym registers VelocityOnlyCartpole*, its class is VelocityOnlyCartPole*: both work
    assert resolve_popgym("VelocityOnlyCartpoleEasy") == "popgym-VelocityOnlyCartpoleEasy-v0"


def test_unknown_and_labyrinth_names_are_refused_clearly():
    with pytest.raises(envs.SpecError, match="closest: RepeatPreviousEasy"):
        envs.make_vector("popgym:RepeatPreviusEasy", 1)
    if "LabyrinthEscapeEasy" not in popgym_ids():
        with pytest.raises(envs.SpecError, match="pip install mazelib"):
            envs.make_vector("popgym:LabyrinthEscapeEasy", 1)


def test_spaces_of_the_suite_reach_the_agent():
    seen_obs, seen_act = set(), set()
    for name in FAMILIES:
        with envs.make_vector(f"popgym:{name}", 2, seed=0, workers=0) as venv:
            obs_space = venv.single_observation_space
            seen_obs.add(type(obs_space).__name__)
            seen_act.add(type(venv.single_action_space).__name__)
            obs = venv.reset().obs
            if name.startswith("Autoencode"):  # the Tuple arrives as a Dict keyed by position
                assert isinstance(obs_space, spaces.Dict) and sorted(obs) == ["0", "1"]
    assert seen_obs == {"Discrete", "MultiDiscrete", "Dict", "Box"}
    assert seen_act == {"Discrete", "MultiDiscrete", "Box"}


@pytest.mark.parametrize("name", FAMILIES)
def test_each_family_builds_an_agent_and_runs_one_update(tmp_path, name):
    config = load_config(None, [f"env.id=popgym:{name}", "env.num_envs=4", "agent.hidden_size=8",
                                "agent.encoder_size=8", "train.segment_length=5", "train.total_steps=20",
                                "train.target_success=0", "log.eval_episodes=2", "log.progress=false",
                                "log.tensorboard=false", f"run_dir={tmp_path}"])
    summary = train(config)
    assert summary["updates"] == 1 and summary["steps"] == 20
    assert summary["evaluations"] and summary["evaluations"][-1]["episodes"] == 2
