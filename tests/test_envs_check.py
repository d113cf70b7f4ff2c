"""check-env: exit 0 on a good env, 1 on a broken one, 2 on unknown suites or names."""

import os
import subprocess
import sys

import pytest

from rtrl_rl.envs.check import run_check

ASSET = os.path.join(os.path.dirname(__file__), "assets", "custom_env.py")


def _run(spec, **kw):
    lines = []
    code = run_check(spec, kw.pop("num_envs", 2), kw.pop("steps", 100), 0, kw, lines.append)
    return code, "\n".join(lines)


@pytest.mark.parametrize("spec", ["memory:recall", "memory:tmaze", f"{ASSET}:CountingEnv"])
def test_good_envs_pass(spec):
    code, text = _run(spec)
    assert code == 0, text
    assert text.rstrip().endswith("OK") and "steps/s" in text and "action space" in text
    assert "gymnasium checker: passed" in text


def test_broken_env_lists_problems():
    code, text = _run(f"{ASSET}:BrokenEnv")
    assert code == 1
    assert "observation outside the observation space" in text
    assert "rewards must be finite" in text


def test_crashing_env_is_a_problem_not_a_crash():
    code, text = _run(f"{ASSET}:CrashingEnv", workers=1, crash_at=5)
    assert code == 1 and "boom in CrashingEnv.step" in text


def test_unknown_suite_and_game_exit_2():
    code, text = _run("nosuch:thing")
    assert code == 2 and "Valid suites" in text and "memory" in text
    code, text = _run("atari:Pongg")
    assert code == 2 and "Pong" in text


def test_cli_exit_codes():
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "rtrl_rl", "check-env", *args],
                              capture_output=True, text=True, timeout=120)

    good = cli("memory:recall", "--steps", "50", "--option", "delay=5")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "delay=5" in good.stdout and good.stdout.rstrip().endswith("OK")
    assert cli("nosuch:thing").returncode == 2
    assert cli(f"{ASSET}:BrokenEnv", "--steps", "20").returncode == 1
