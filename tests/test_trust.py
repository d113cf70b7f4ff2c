"""Untrusted checkpoints: ``evaluate`` and ``train --resume`` import no code that only the
checkpoint's config names; the user names it (``--env``, an override) or trusts the run."""

from __future__ import annotations

import shutil

import pytest

from rtrl_rl.cli import main
from rtrl_rl.config import ConfigError, load_config
from rtrl_rl.run.checkpoint import load_checkpoint, save_checkpoint
from rtrl_rl.run.resume import resume_config
from rtrl_rl.run.trust import code_references
from rtrl_rl.training.sync_trainer import train

QUIET = ["log.progress=false", "log.tensorboard=false", "log.eval_episodes=0"]

EVIL = """
import gymnasium as gym
import numpy as np
open({marker!r}, "w").close()  # what a malicious file would do instead: anything


class Env(gym.Env):
    observation_space = gym.spaces.Box(0, 1, (3,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        return np.zeros(3, np.float32), {{}}

    def step(self, action):
        return np.zeros(3, np.float32), 0.0, True, False, {{}}
"""


@pytest.fixture(scope="module")
def honest_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("honest")
    train(load_config(None, ["env.num_envs=4", "env.options.delay=2", "agent.hidden_size=8",
                             "train.total_steps=400", f"run_dir={path}", *QUIET]))
    return path


@pytest.fixture
def crafted(honest_run, tmp_path, monkeypatch):
    """A copy of a real run whose checkpoint's config (plain data) names code writing a marker."""
    marker = tmp_path / "marker"
    (tmp_path / "evil_env.py").write_text(EVIL.format(marker=str(marker)))
    (tmp_path / "evil_module.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    def make(**env) -> tuple:
        run_dir = tmp_path / "run"
        shutil.copytree(honest_run, run_dir)
        shutil.rmtree(run_dir / "checkpoints")
        payload = load_checkpoint(run_dir)
        payload["config"]["env"].update(env)
        (run_dir / "model.pt").unlink()
        save_checkpoint(run_dir, payload, payload["step"])
        return run_dir, marker

    make.entry = f"{tmp_path / 'evil_env.py'}:Env"
    return make


def test_evaluate_refuses_an_entry_point_named_only_by_the_checkpoint(crafted, capsys):
    run_dir, marker = crafted(id=crafted.entry, options={})
    assert main(["evaluate", str(run_dir), "--episodes", "2"]) == 2
    err = capsys.readouterr().err
    assert not marker.exists()
    assert "env.id=" in err and "nothing was imported" in err and "--trust-config" in err and "--env SPEC" in err
    # the same file runs when the user trusts the run: the refusal is what kept it out
    assert main(["evaluate", str(run_dir), "--episodes", "2", "--trust-config"]) == 2  # other spaces
    assert marker.exists() and "observation space" in capsys.readouterr().err


def test_evaluate_refuses_imports_named_only_by_the_checkpoint(crafted, capsys):
    run_dir, marker = crafted(imports=["evil_module"])
    assert main(["evaluate", str(run_dir), "--episodes", "2"]) == 2
    assert "env.imports=['evil_module']" in capsys.readouterr().err and not marker.exists()
    assert main(["evaluate", str(run_dir), "--episodes", "2", "--env", "memory:recall"]) == 2
    assert "env.imports" in capsys.readouterr().err and not marker.exists()  # --env names only the env


def test_evaluate_runs_an_entry_point_the_user_names(crafted, capsys):
    run_dir, marker = crafted(id=crafted.entry, options={})
    assert main(["evaluate", str(run_dir), "--episodes", "2", "--env", crafted.entry]) == 2
    assert marker.exists() and "observation space" in capsys.readouterr().err  # imported, then checked


@pytest.mark.parametrize("env", [{"id": "ENTRY", "options": {}}, {"options": {"imports": ["evil_module"]}}])
def test_resume_refuses_code_named_only_by_the_checkpoint(crafted, capsys, env):
    env = {k: crafted.entry if v == "ENTRY" else v for k, v in env.items()}
    run_dir, marker = crafted(**env)
    config_yaml = (run_dir / "config.yaml").read_bytes()
    assert main(["train", "--resume", str(run_dir), "train.total_steps=800", *QUIET]) == 2
    err = capsys.readouterr().err
    assert not marker.exists() and (run_dir / "config.yaml").read_bytes() == config_yaml
    assert "nothing was imported" in err and "--trust-config" in err and "key=value" in err


def test_resume_accepts_code_the_user_names_or_trusts(crafted):
    run_dir, marker = crafted(id=crafted.entry, options={})
    with pytest.raises(ConfigError, match="env.id"):
        resume_config(run_dir)
    assert resume_config(run_dir, [f"env.id={crafted.entry}"]).env.id == crafted.entry
    assert resume_config(run_dir, trust_config=True).env.id == crafted.entry
    assert not marker.exists()  # deciding imports nothing; building the env would


@pytest.mark.parametrize("spec", ["memory:recall", "atari:Pong", "procgen:coinrun", "gym:CartPole-v1",
                                  "popgym:RepeatPreviousEasy", "minigrid:Empty-5x5", "dmlab:rooms_watermaze",
                                  "minatar:Breakout"])
def test_built_in_suites_need_no_trust(spec):
    assert code_references(load_config(None, [f"env.id={spec}"])) == {}


@pytest.mark.parametrize("override, key", [
    ("env.id=some/file.py:Env", "env.id"), ("env.id=package.module:Env", "env.id"),
    ("env.imports=[my_envs]", "env.imports"), ("env.options.imports=[my_envs]", "env.options.imports"),
    ("env.options.dmlab_path=/somewhere", "env.options.dmlab_path"),
])
def test_code_references_name_every_way_a_config_imports_code(override, key):
    assert key in code_references(load_config(None, ["env.id=gym:CartPole-v1", override]))


# Only an override naming the very key (env.id=..., env.imports=...) counts as the user naming
# that code: any other env.* override used to switch the check off for the whole env section.
ENV_OVERRIDES = ["env.num_envs=8", "env.options.delay=3", "env.options.num_symbols=4",
                 "env.options={delay: 3}"]
CODE_IN_CHECKPOINT = [pytest.param({"id": "ENTRY", "options": {}}, id="entry-point"),
                      pytest.param({"imports": ["evil_module"]}, id="imports"),
                      pytest.param({"options": {"imports": ["evil_module"]}}, id="options-imports")]


def _code(crafted, env: dict) -> dict:
    return {k: crafted.entry if v == "ENTRY" else v for k, v in env.items()}


@pytest.mark.parametrize("override", ENV_OVERRIDES)
@pytest.mark.parametrize("env", CODE_IN_CHECKPOINT)
def test_resume_with_any_other_env_override_still_refuses(crafted, capsys, env, override):
    run_dir, marker = crafted(**_code(crafted, env))
    assert main(["train", "--resume", str(run_dir), override, "train.total_steps=800", *QUIET]) == 2
    err = capsys.readouterr().err
    assert not marker.exists(), f"{override} let the checkpoint's code run"
    assert "nothing was imported" in err and "--trust-config" in err


@pytest.mark.parametrize("override", [[], *([o] for o in ENV_OVERRIDES)])
def test_config_only_restart_refuses_code_it_names(crafted, capsys, override):
    """A run that stopped before its first checkpoint restarts from its config.yaml: the
    same rule holds, since that file came from the run directory, not from the user, and
    no other env.* override switches it off."""
    import yaml

    run_dir, marker = crafted(id=crafted.entry, options={})
    shutil.rmtree(run_dir / "checkpoints")
    (run_dir / "model.pt").unlink(missing_ok=True)
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    config["env"].update(id=crafted.entry, options={})
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    assert main(["train", "--resume", str(run_dir), *override, *QUIET]) == 2
    assert not marker.exists(), f"{override} let the config's code run"
    assert "env.id=" in capsys.readouterr().err


@pytest.mark.parametrize("env", CODE_IN_CHECKPOINT)
def test_evaluate_with_a_built_in_env_imports_nothing_the_checkpoint_names(crafted, capsys, env):
    run_dir, marker = crafted(**_code(crafted, env))
    code = main(["evaluate", str(run_dir), "--episodes", "2", "--env", "memory:recall"])
    assert not marker.exists()
    # --env replaces an entry point (and its options); imports still need naming or trust
    assert code == (0 if "id" in env else 2)


def test_only_the_very_key_counts_as_named(crafted):
    run_dir, marker = crafted(imports=["evil_module"], options={"imports": ["evil_module"]})
    with pytest.raises(ConfigError, match="env.options.imports"):
        resume_config(run_dir, ["env.imports=[evil_module]"])
    config = resume_config(run_dir, ["env.imports=[evil_module]", "env.options.imports=[evil_module]"])
    assert config.env.imports == ["evil_module"] and not marker.exists()
