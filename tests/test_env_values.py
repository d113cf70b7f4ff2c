"""Values from environments: a NaN, an inf or an extreme reward stops the run where it enters.

Each runtime meets the same check (``rtrl_rl.envs.values.CheckedValues``, applied by
``run_builder.make_env``): the synchronous trainer, ``runtime.actors=2`` processes and the
streaming learner here, the Ray actors in ``test_env_values_ray.py``. The run exits 1 with
a message that names the env spec, the stream, the step and the field; its last
checkpoint holds only finite parameters from before the bad value, and ``summary.json``
says why. Checkpoints with non-finite parameters are refused both ways.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from rtrl_rl.agents.divergence import Diverged
from rtrl_rl.cli import main
from rtrl_rl.config import build_config
from rtrl_rl.envs import derive_seeds
from rtrl_rl.envs.values import MAX_ABS_REWARD, CheckedValues, NonFiniteValue
from rtrl_rl.envs.vector_env import StepBatch, reset_batch
from rtrl_rl.run import checkpoint as ck
from rtrl_rl.run.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from rtrl_rl.runtime.actor import actor_seed

ENV = f"{Path(__file__).parent / 'assets' / 'value_envs.py'}:BadValueEnv"
STREAMS = 4


def run_args(run_dir: Path, *more: str) -> list[str]:
    """A small run on BadValueEnv that checkpoints after every update; no evaluation."""
    return ["train", f"env.id={ENV}", f"env.num_envs={STREAMS}", "agent.hidden_size=8", "agent.encoder_size=8",
            "train.segment_length=5", "train.total_steps=100000", "train.target_success=0",
            "runtime.checkpoint_every_s=0", "log.progress=false", "log.tensorboard=false", "log.eval_episodes=0",
            f"run_dir={run_dir}", *more]


def bad_seed(stream: int, actors: int = 0, run_seed: int = 0) -> int:
    """The env seed that stream ``stream`` of a run seeded ``run_seed`` gets (see value_envs.py)."""
    if actors == 0:
        return derive_seeds(run_seed, STREAMS)[stream]
    per_actor = STREAMS // actors
    return derive_seeds(actor_seed(run_seed, stream // per_actor, 0, 0), per_actor)[stream % per_actor]


def options(stream: int, field: str, value: str, at: int, actors: int = 0) -> str:
    return f"env.options={{bad_seed: {bad_seed(stream, actors)}, field: {field}, value: {value}, at: {at}}}"


def assert_stopped_before_it(run_dir: Path, err: str, stream: int, at: int, what: str,
                             reason: str = "non-finite env value") -> dict:
    """The message, summary.json and the finite last checkpoint of a run stopped by a bad value."""
    assert f"env {ENV!r} at step {at} of stream {stream} (" in err and what in err, err
    assert "Traceback" not in err
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stopped"] == reason and summary["error"].startswith("NonFiniteValue: env")
    assert summary["final_checkpoint"] == summary["steps"]
    payload = load_checkpoint(run_dir)  # refuses non-finite parameters: loading is the finiteness check
    assert payload["step"] == summary["steps"] < at * STREAMS  # the bad step never reached the learner
    return summary


# ----------------------------------------------------------------------------- the check itself


class StubVector:
    """Three sub-envs that return the batches given to it, one per step."""

    num_envs, spec = 3, "stub:bad"

    def __init__(self, obs, steps: list[StepBatch]) -> None:
        self.first_obs, self.steps = obs, iter(steps)

    def reset(self) -> StepBatch:
        return reset_batch(self.first_obs, 3)

    def step(self, actions) -> StepBatch:
        return next(self.steps)


def batch(obs, reward=(1.0, 1.0, 1.0), final=None) -> StepBatch:
    done = np.array([i in (final or {}) for i in range(3)])
    return StepBatch(obs, np.asarray(reward, np.float32), done, np.zeros(3, bool), done, np.zeros(3, bool),
                     final or {})


GOOD = np.zeros((3, 2), np.float32)


@pytest.mark.parametrize("reward, what", [((1.0, math.nan, 1.0), "non-finite reward (nan)"),
                                          ((1.0, -math.inf, 1.0), "non-finite reward (-inf)")])
def test_a_non_finite_reward_names_spec_stream_step_and_field(reward, what):
    venv = CheckedValues(StubVector(GOOD, [batch(GOOD), batch(GOOD, reward)]), streams=[4, 5, 6], where="actor 1")
    venv.reset()
    venv.step(None)
    with pytest.raises(NonFiniteValue) as caught:
        venv.step(None)
    assert str(caught.value).startswith(f"env 'stub:bad' at step 2 of stream 5 (actor 1, step 2 of its episode) "
                                        f"returned a {what}")
    assert caught.value.reason == "non-finite env value"


def test_observations_are_checked_at_reset_after_steps_and_at_episode_ends():
    nan_row = GOOD.copy()
    nan_row[2, 1] = math.nan
    with pytest.raises(NonFiniteValue, match=r"at step 0 of stream 2 .* non-finite reset observation \(it holds "
                                             r"1 NaN of 2 values\)"):
        CheckedValues(StubVector(nan_row, [])).reset()
    inf_dict = {"pos": GOOD.copy(), "flag": np.zeros(3, np.int64)}
    inf_dict["pos"][0, 0] = math.inf
    venv = CheckedValues(StubVector({"pos": GOOD, "flag": np.zeros(3, np.int64)}, [batch(inf_dict)]))
    venv.reset()
    with pytest.raises(NonFiniteValue, match=r"stream 0 .* non-finite observation\['pos'\] \(it holds 1 inf"):
        venv.step(None)
    venv = CheckedValues(StubVector(GOOD, [batch(GOOD, final={1: np.array([0.0, math.nan], np.float32)})]))
    venv.reset()
    with pytest.raises(NonFiniteValue, match=r"at step 1 of stream 1 \(step 1 of its episode\) returned a "
                                             r"non-finite final observation"):
        venv.step(None)


def test_extreme_rewards_are_refused_beyond_the_limit_unless_the_learner_clips():
    huge = batch(GOOD, (1.0, 1.0, 1e30))
    venv = CheckedValues(StubVector(GOOD, [huge]))
    venv.reset()
    with pytest.raises(NonFiniteValue, match=r"stream 2 .* a reward of 1e\+30, beyond ±1e\+15") as caught:
        venv.step(None)
    assert caught.value.reason == "extreme env reward" and "train.reward_clip" in str(caught.value)
    clipping = CheckedValues(StubVector(GOOD, [huge, batch(GOOD, (1.0, math.inf, 1.0))]), reward_limit=math.inf)
    clipping.reset()
    clipping.step(None)  # any finite reward passes where the learner clips
    with pytest.raises(NonFiniteValue, match="non-finite reward"):
        clipping.step(None)
    assert MAX_ABS_REWARD == 1e15


def test_the_error_survives_pickling_with_its_reason():
    import pickle

    err = pickle.loads(pickle.dumps(NonFiniteValue("env x", reason="extreme env reward")))
    assert str(err) == "env x" and err.reason == "extreme env reward"


# ----------------------------------------------------------------------------- every runtime


@pytest.mark.parametrize("field, value, at, what", [
    ("reward", ".nan", 13, "returned a non-finite reward (nan)"),
    ("obs", ".inf", 13, "returned a non-finite observation (it holds 2 inf of 2 values)"),
    ("final_obs", ".nan", 10, "returned a non-finite final observation"),
])
def test_the_synchronous_trainer_stops_with_the_last_good_checkpoint(tmp_path, capsys, field, value, at, what):
    code = main(run_args(tmp_path, options(2, field, value, at)))
    err = capsys.readouterr().err
    assert code == 1
    assert_stopped_before_it(tmp_path, err, 2, at, what)
    assert "final checkpoint at step" in err


def test_an_extreme_reward_stops_the_run_without_clipping_and_trains_through_with_it(tmp_path, capsys):
    assert main(run_args(tmp_path / "off", options(1, "reward", "1.0e+30", 13))) == 1
    assert_stopped_before_it(tmp_path / "off", capsys.readouterr().err, 1, 13, "a reward of 1e+30",
                             reason="extreme env reward")
    clipped = run_args(tmp_path / "on", options(1, "reward", "1.0e+30", 13), "train.reward_clip=1",
                       "train.total_steps=200")
    assert main(clipped) == 0
    assert load_checkpoint(tmp_path / "on")["step"] == 200  # clipped to 1: the run never noticed


@pytest.mark.parametrize("field, restart", [("reward", "false"), ("obs", "true")])
def test_actor_processes_stop_the_run_and_are_not_restarted(tmp_path, capsys, field, restart):
    # stream 3 is actor 1's second stream: the message names the run's stream and the actor
    more = ("runtime.actors=2", f"runtime.restart_actors={restart}", options(3, field, ".nan", 13, actors=2))
    assert main(run_args(tmp_path, *more)) == 1
    err = capsys.readouterr().err
    assert_stopped_before_it(tmp_path, err, 3, 13, f"returned a non-finite {'reward' if field == 'reward' else 'obs'}")
    assert "(actor 1, step 3 of its episode)" in err and "restarted actor" not in err


@pytest.mark.parametrize("field, value, what, reason", [
    ("reward", ".nan", "non-finite reward", "non-finite env value"),
    ("obs", ".nan", "non-finite observation", "non-finite env value"),
    ("reward", "1.0e+30", "a reward of 1e+30", "extreme env reward"),
])
def test_the_streaming_learner_stops_before_a_bad_value_reaches_its_parameters(tmp_path, capsys, field, value,
                                                                              what, reason):
    # train.reward_clip does not apply to the streaming learner: 1e30 is refused even so
    more = ("agent.algorithm=stream", "train.reward_clip=1", options(1, field, value, 13))
    assert main(run_args(tmp_path, *more)) == 1
    assert_stopped_before_it(tmp_path, capsys.readouterr().err, 1, 13, what, reason=reason)
    # the final checkpoint is a good one (the evaluation streams are seeded apart): evaluate reports on it
    assert main(["evaluate", str(tmp_path), "--episodes", "2", "--trust-config"]) == 0


def test_evaluation_stops_with_the_same_message_naming_its_own_streams(tmp_path, capsys):
    seed = 11  # the evaluation's: only its stream 1 misbehaves, never a training stream
    bad = f"env.options={{bad_seed: {derive_seeds(seed, 2)[1]}, at: 3}}"
    assert main(run_args(tmp_path, bad, "train.total_steps=40")) == 0
    assert main(["evaluate", str(tmp_path), "--episodes", "2", "--num-envs", "2", "--seed", str(seed),
                 "--trust-config"]) == 1
    err = capsys.readouterr().err
    assert "at step 3 of stream 1 (evaluation, step 3 of its episode) returned a non-finite reward" in err


# ----------------------------------------------------------------------------- no non-finite checkpoint


def poisoned(run_dir: Path, monkeypatch) -> Path:
    """Rewrite the latest checkpoint of ``run_dir`` with NaN in one parameter, as a version
    without the save-time refusal would have; returns its path."""
    payload = load_checkpoint(run_dir)
    name = next(k for k, v in payload["model"].items() if v.is_floating_point())
    payload["model"][name] = torch.full_like(payload["model"][name], math.nan)
    with monkeypatch.context() as patch:
        patch.setattr(ck, "non_finite_entries", lambda state: [])
        return save_checkpoint(run_dir, payload, payload["step"])


def test_a_checkpoint_with_non_finite_parameters_is_neither_saved_nor_evaluated_nor_resumed(tmp_path, capsys,
                                                                                           monkeypatch):
    assert main(run_args(tmp_path, "train.total_steps=40")) == 0
    payload = load_checkpoint(tmp_path)
    name = next(iter(payload["model"]))
    payload["model"][name] = payload["model"][name] * math.inf
    with pytest.raises(CheckpointError, match="refused to save the checkpoint of step 40: its parameters are not "
                                              f"finite \\({name}"):
        save_checkpoint(tmp_path / "other", payload, 40)
    assert not (tmp_path / "other").exists()
    poisoned(tmp_path, monkeypatch)
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path), "--episodes", "2", "--trust-config"]) == 2
    err = capsys.readouterr().err
    assert "holds parameters that are not finite" in err and "neither evaluated nor resumed" in err
    assert main(["train", "--resume", str(tmp_path), "--trust-config"]) == 2
    err = capsys.readouterr().err
    # --resume RUN names the run's newest checkpoint file (model.pt is a hard link to it)
    assert "ckpt-000000040.pt holds parameters that are not finite" in err and "pass an earlier checkpoint" in err


def test_the_stream_learner_refuses_a_step_that_is_not_finite():
    from rtrl_rl.training.stream_trainer import build_stream_agent
    from gymnasium import spaces

    config = build_config({"agent": {"algorithm": "stream", "hidden_size": 8, "encoder_size": 8},
                           "env": {"num_envs": 2}})
    model, learner = build_stream_agent(config, spaces.Box(-1, 1, (3,)), spaces.Discrete(2))
    before = [p.detach().clone() for p in model.parameters()]
    obs, zeros = torch.zeros(2, 3), torch.zeros(2, dtype=torch.long)
    no = torch.zeros(2, dtype=torch.bool)
    learner.act(obs, zeros, torch.zeros(2), ~no)
    with pytest.raises(Diverged, match=r"diverged at update 1: the reward or the next value is not finite "
                                       r"\(stream 1: reward nan"):
        learner.learn(torch.tensor([0.0, math.nan]), no, no, obs)
    assert learner.return_stats.count == 0  # the reward scaler never saw it
    learner.act(obs, zeros, torch.zeros(2), ~no)
    learner.traces_value.flat.fill_(math.inf)  # an overflowed trace
    with pytest.raises(Diverged, match="the value update is not finite"):
        learner.learn(torch.ones(2), no, no, obs)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert torch.isfinite(learner.traces_value.flat).all()  # the overflow is gone with the episodes
