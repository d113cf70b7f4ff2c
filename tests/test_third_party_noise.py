"""Quiet by default, loud where it matters: the optional suites' notices and warnings show
once per kind, on one line; the user's own environments keep every warning."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from rtrl_rl.cli import main
from rtrl_rl.envs import third_party

ASSETS = Path(__file__).parent / "assets"
ROOT = Path(__file__).parent.parent
SHARE_RESET = ("\x1b[33mWARN: The infos returned by `reset` and the following `step` share an object, therefore, "
               "modifying one will modify the other.\x1b[0m")
SHARE_STEP = SHARE_RESET.replace("`reset`", "`step`")


@pytest.fixture
def fresh(monkeypatch):
    """This process as if it had shown no note yet."""
    monkeypatch.setattr(third_party, "_shown", set())
    monkeypatch.setattr(third_party, "_quiet", False)


def test_the_passive_checkers_variants_are_one_kind_shown_once_on_one_line(fresh, capsys):
    assert third_party.kind_of(SHARE_RESET) == third_party.kind_of(SHARE_STEP)
    third_party.note("popgym", SHARE_RESET)
    third_party.note("popgym", SHARE_STEP)
    third_party.note("popgym", SHARE_RESET.replace("infos", "observations"))  # another kind
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["note: popgym says (shown once): The infos returned by reset and the following step share "
                     "an object", "note: popgym says (shown once): The observations returned by reset and the "
                     "following step share an object"]


def test_a_child_process_shows_no_notes(fresh, capsys):
    third_party.quiet_here()
    third_party.note("popgym", SHARE_RESET)
    assert capsys.readouterr().err == ""


def test_a_noisy_package_import_prints_one_line_per_kind_once(fresh, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(ASSETS))
    monkeypatch.delitem(sys.modules, "noisy_package", raising=False)
    third_party.quiet_import("noisy_package")
    third_party.quiet_import("noisy_package")
    assert capsys.readouterr().err.splitlines() == [
        "note: noisy_package says (shown once): Noisy has been unmaintained since 2022.",
        "note: noisy_package says (shown once): noisy_package is deprecated, use something else"]


@pytest.mark.skipif(importlib.util.find_spec("gym") is None, reason="the old gym package is not installed")
def test_the_old_gym_notice_becomes_one_line():
    code = "from rtrl_rl.envs.third_party import quiet_import; quiet_import('gym')"
    err = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stderr
    assert err.splitlines() == ["note: gym says (shown once): Gym has been unmaintained since 2022 and does not "
                                "support NumPy 2.0 amongst other critical functionality."]


@pytest.mark.skipif(importlib.util.find_spec("popgym") is None, reason='popgym is not installed ("rtrl-rl[popgym]")')
@pytest.mark.parametrize("extra", ["runtime.actors=2", "env.options={workers: 2}"])
def test_a_popgym_run_shows_each_warning_kind_at_most_once(tmp_path, extra):
    # CountRecallEasy's infos share an object between calls: gymnasium's passive checker
    # warns at the first reset and steps of every env, in every process
    args = [sys.executable, "-m", "rtrl_rl", "train", "env.id=popgym:CountRecallEasy", "env.num_envs=4", extra,
            "agent.hidden_size=8", "train.segment_length=5", "train.total_steps=100", "log.eval_episodes=4",
            "log.progress=false", "log.tensorboard=false", f"run_dir={tmp_path}"]
    run = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    shares = [line for line in run.stderr.splitlines() if "share an object" in line]
    assert len(shares) <= 1 and "UserWarning" not in run.stderr and "logger.warn" not in run.stderr, run.stderr
    assert all(line.startswith("note: popgym says (shown once):") for line in shares)


def test_warnings_from_the_users_own_env_are_never_hidden(tmp_path):
    args = ["train", f"env.id={ASSETS / 'value_envs.py'}:WarningEnv", "env.num_envs=2", "agent.hidden_size=8",
            "train.segment_length=4", "train.total_steps=16", "log.eval_episodes=0", "log.progress=false",
            "log.tensorboard=false", f"run_dir={tmp_path}"]
    with pytest.warns(UserWarning, match="a warning from the user's own env"):
        assert main(args) == 0
