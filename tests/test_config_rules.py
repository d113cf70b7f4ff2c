"""Every config rule lives in the config package (rtrl_rl/config/): each one exits 2 naming its key before
anything is written, whichever trainer the config selects, and a Config changed in code
meets the same rules when a trainer is called with it."""

from __future__ import annotations

import pytest

from rtrl_rl.config import (APPROXIMATE_LEARNING, DENSE_CORES, Config, ConfigError, check, load_config,
                            refuse_changes)

QUIET = ["log.progress=false", "log.tensorboard=false", "env.num_envs=4"]

#: (overrides that break one rule, the key the error names, a fragment of the reason)
BROKEN = [
    (["agent.core_layers=0"], "agent.core_layers", "must be >= 1"),
    (["agent.algorithm=stream", "stream.sparse_init=1"], "stream.sparse_init", "must be < 1"),
    (["agent.algorithm=stream", "stream.lr=0"], "stream.lr", "must be > 0"),
    (["agent.algorithm=stream", "stream.trace_lambda=1.5"], "stream.trace_lambda", "must be <= 1"),
    (["agent.algorithm=stream", "runtime.actors=2"], "runtime.actors", "runs in one process"),
    (["agent.algorithm=stream", "train.device=cuda"], "train.device", "runs on the CPU"),
    (["runtime.backend=ray"], "runtime.actors", "runtime.actors >= 1"),
    (["runtime.backend=ray", "runtime.actors=2", "runtime.ray_learner_resources={num_gpus: -1}"],
     "runtime.ray_learner_resources", "entry num_gpus must be a number >= 0"),
    (["runtime.backend=ray", "runtime.actors=2", "runtime.ray_actor_resources={resources: {node: x}}"],
     "runtime.ray_actor_resources", "entry node must be a number >= 0"),
    (["runtime.actors=3"], "env.num_envs", "multiple of 'runtime.actors'"),
    (["agent.learning=snap1"], "agent.learning", "approximates RTRL for the dense cores"),
    (["agent.core=gru", "agent.learning=kfrtrl"], "agent.learning", "does not apply to agent.core=gru"),
    (["agent.core=lstm", "agent.learning=uoro", "agent.core_layers=2"], "agent.core_layers", "single layer"),
]


@pytest.mark.parametrize("overrides, key, reason", BROKEN)
def test_each_rule_exits_2_naming_its_key_before_anything_is_written(tmp_path, capsys, overrides, key, reason):
    from rtrl_rl.cli import main

    run_dir = tmp_path / "run"
    assert main(["train", f"run_dir={run_dir}", *QUIET, *overrides]) == 2
    err = capsys.readouterr().err
    assert f"'{key}'" in err and reason in err and "Traceback" not in err, err
    assert not run_dir.exists()


def _trainer(config: Config):
    """The trainer ``rtrl-rl train`` picks for ``config``."""
    if config.agent.algorithm == "stream":
        from rtrl_rl.training.stream_trainer import train_stream

        return train_stream
    if config.runtime.actors > 0 or config.runtime.backend == "ray":
        from rtrl_rl.runtime import train_with_actors

        return train_with_actors
    from rtrl_rl.training.sync_trainer import train

    return train


@pytest.mark.parametrize("overrides, change, key", [
    (["agent.algorithm=stream"], lambda c: setattr(c.runtime, "actors", 2), "runtime.actors"),
    (["agent.algorithm=stream"], lambda c: setattr(c.stream, "sparse_init", 1.0), "stream.sparse_init"),
    (["runtime.backend=ray", "runtime.actors=2"], lambda c: setattr(c.runtime, "actors", 0), "runtime.actors"),
    (["runtime.actors=2"], lambda c: setattr(c.env, "num_envs", 3), "env.num_envs"),
    ([], lambda c: setattr(c.agent, "learning", "uoro"), "agent.learning"),
    ([], lambda c: setattr(c.train, "segment_length", 0), "train.segment_length"),
])
def test_a_config_changed_in_code_meets_the_same_rules_in_every_trainer(tmp_path, overrides, change, key):
    config = load_config(None, [f"run_dir={tmp_path / 'run'}", *QUIET, *overrides])
    change(config)
    with pytest.raises(ConfigError, match=f"'{key}'"):
        check(config)
    with pytest.raises(ConfigError, match=f"'{key}'"):
        _trainer(config)(config)
    assert not (tmp_path / "run").exists()


def test_the_dense_cores_and_their_rules_are_those_the_agents_build():
    from rtrl_rl.agents.cores import DENSE_CORES as BUILT, DENSE_LEARNING

    assert set(DENSE_CORES) == set(BUILT)
    assert set(APPROXIMATE_LEARNING) == set(DENSE_LEARNING) - {"tbptt", "rtrl"}


@pytest.mark.parametrize("override, fixed", [
    ("agent.encoder=mlp", True),           # the agent section is fixed on resume by default
    ("agent.input_mixer=true", True),
    ("agent.encoder_grad=segment", False),  # declared changeable
    ("agent.learning=tbptt", False),       # every recurrent rule trains the same parameters
    ("agent.learning=none", True),
    ("env.id=memory:tmaze", True),
    ("train.optimizer=rmsprop", True),
    ("train.lr=0.1", False),
    ("runtime.actors=2", False),
])
def test_which_keys_a_resume_cannot_change_is_declared_beside_the_fields(override, fixed):
    stored, new = load_config(None, QUIET), load_config(None, [*QUIET, override])
    if fixed:
        with pytest.raises(ConfigError, match=f"'{override.split('=')[0]}' cannot change on resume"):
            refuse_changes(stored, new)
    else:
        refuse_changes(stored, new)
