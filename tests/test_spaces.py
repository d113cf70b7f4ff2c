"""Spaces refused up front: ``check-env`` and ``train`` exit 2, listing what is supported, before
anything is written; the spaces that are supported (Tuple observations from any env, Box
actions with infinite bounds) train."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from gymnasium import spaces

from rtrl_rl.agents.spaces import SUPPORTED, UnsupportedSpace, require_learnable
from rtrl_rl.cli import main
from rtrl_rl.run.checkpoint import load_checkpoint

ASSET = Path(__file__).parent / "assets" / "space_envs.py"
BOX = spaces.Box(-1.0, 1.0, (2,), np.float32)
QUIET = ["log.progress=false", "log.tensorboard=false"]


def train_args(cls: str, run_dir: Path, *more: str) -> list[str]:
    return ["train", f"env.id={ASSET}:{cls}", "env.num_envs=4", "agent.hidden_size=8", "agent.encoder_size=8",
            "train.segment_length=4", "train.total_steps=64", "log.eval_episodes=4", f"run_dir={run_dir}",
            *QUIET, *more]


REFUSED = [  # (env class, what the message must say)
    ("TextObsEnv", "observation space Text("),
    ("GraphObsEnv", "observation space Graph("),
    ("SequenceObsEnv", "observation space Sequence("),
    ("NestedDictObsEnv", "a flat Dict or Tuple"),
    ("EmptyDictObsEnv", "observation space Dict()"),
    ("EmptyDiscreteObsEnv", "a Discrete space needs n >= 1"),
    ("EmptyDiscreteActionEnv", "action space Discrete(0) is not supported: it has no action to take"),
    ("EmptyMultiDiscreteActionEnv", "it has no components"),
    ("TextActionEnv", "action space Text("),
    ("IntegerBoxActionEnv", "Box actions must be float"),
]


@pytest.mark.parametrize("cls, fragment", REFUSED)
def test_check_env_and_train_refuse_before_anything_is_written(cls, fragment, tmp_path, capsys):
    assert main(["check-env", f"{ASSET}:{cls}", "--steps", "5"]) == 2
    out = capsys.readouterr().out
    assert fragment in out and ("use " in out or "Supported observations" in out), out
    run_dir = tmp_path / "run"
    assert main(train_args(cls, run_dir)) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err
    assert not run_dir.exists()


@pytest.mark.parametrize("extra", [[], ["runtime.actors=2"], ["agent.algorithm=stream"]])
def test_every_trainer_refuses_before_anything_is_written(extra, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(train_args("IntegerBoxActionEnv", run_dir, *extra)) == 2
    assert "Supported observations" in capsys.readouterr().err and not run_dir.exists()


@pytest.mark.parametrize("space", [
    spaces.Text(4), spaces.Graph(BOX, None), spaces.Sequence(spaces.Discrete(2)), spaces.Dict({}),
    spaces.Tuple(()), spaces.Dict({"a": spaces.Dict({"b": BOX})}),
])
def test_the_agents_list_what_they_learn_from(space):
    with pytest.raises(UnsupportedSpace, match="unsupported observation space") as caught:
        require_learnable(space, spaces.Discrete(2))
    assert str(caught.value).endswith(SUPPORTED)


@pytest.mark.parametrize("space", [
    spaces.MultiBinary(3), spaces.Discrete(3, start=1), spaces.MultiDiscrete([]), spaces.Box(0, 1, (0,)),
    spaces.Box(0, 1, ()), spaces.Box(0, 3, (2,), np.int64), spaces.MultiDiscrete([[2, 2]]), spaces.Text(3),
])
def test_the_agents_list_what_they_act_in(space):
    with pytest.raises(UnsupportedSpace, match="unsupported action space"):
        require_learnable(BOX, space)


def test_supported_spaces_pass():
    for obs in (BOX, spaces.Discrete(3), spaces.MultiDiscrete([2, 3]), spaces.MultiBinary(4),
                spaces.Dict({"a": BOX, "b": spaces.Discrete(2)}), spaces.Tuple((BOX, spaces.Discrete(2))),
                spaces.Box(0, 1, (0,))):
        require_learnable(obs, spaces.Discrete(2))
    for act in (spaces.Discrete(1), spaces.MultiDiscrete([2, 3]), spaces.Box(-np.inf, np.inf, (2,)),
                spaces.Box(-1, 1, (2, 2), np.float64)):
        require_learnable(BOX, act)


def test_tuple_observations_of_a_custom_env_arrive_as_a_dict_and_train(tmp_path, capsys):
    assert main(["check-env", f"{ASSET}:TupleObsEnv", "--steps", "20"]) == 0
    assert "observation space: Dict('0': Box" in capsys.readouterr().out
    assert main(train_args("TupleObsEnv", tmp_path)) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["stopped"] == "budget" and summary["steps"] == 64
    assert "Dict('0'" in load_checkpoint(tmp_path)["extra"]["observation_space"]


def test_env_imports_with_a_suite_that_takes_none_exits_2(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["train", "env.imports=[json]", f"run_dir={run_dir}", *QUIET]) == 2
    err = capsys.readouterr().err
    assert "config key 'env.imports'" in err and "env.id=memory:recall takes none" in err
    assert "Traceback" not in err and not run_dir.exists()


def test_box_actions_with_infinite_bounds_train_an_unbounded_gaussian_pushed_far_out(tmp_path, capsys):
    # The reward is the action itself: greedy actions (the Gaussian's mean) must travel far
    # beyond where they start (0, with std 1) and beyond any [-1, 1] bounds, with every
    # parameter finite and the checkpoint evaluable.
    more = ["train.total_steps=3200", "train.lr=0.01", "log.eval_episodes=8"]
    assert main(train_args("PushedOutActionEnv", tmp_path, *more)) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    greedy_mean_action = summary["mean_return"] / 4  # episodes of 4 steps; reward = mean of the action
    assert greedy_mean_action > 5.0, summary
    model = load_checkpoint(tmp_path)["model"]  # refuses non-finite parameters
    assert model["policy.log_std"].abs().max() < 2  # the spread stays sane while the mean runs off
    assert main(["evaluate", str(tmp_path), "--episodes", "4", "--trust-config", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["mean_return"] / 4 > 5.0
