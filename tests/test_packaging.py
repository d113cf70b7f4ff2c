"""The distribution installs one import namespace, ``rtrl_rl``, and nothing else.

The repository's top-level ``agents/`` and ``envs/`` install as ``rtrl_rl.agents`` and
``rtrl_rl.envs``. A user whose own project has packages named ``agents`` or ``envs`` (most
RL projects do) must be able to run rtrl-rl from inside it: these tests run the CLI and
the README's example from a directory whose ``agents/`` and ``envs/`` raise on import.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHADOW = "raise ImportError('the user\\'s own {name} package was imported by rtrl-rl')\n"


def _setuptools_config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def _source_packages() -> set[str]:
    """Every package directory of the source tree, named as it installs."""
    mapping = {v: k for k, v in _setuptools_config()["package-dir"].items()}
    names = {"rtrl_rl.config.ready_yaml"}  # the link to configs/, a namespace package of YAML files
    for top, installed in mapping.items():
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / top).parts
            names.add(".".join((installed, *rel)))
    return names


def test_every_package_directory_is_listed_in_pyproject():
    assert set(_setuptools_config()["packages"]) == _source_packages()


@pytest.fixture()
def user_project(tmp_path: Path) -> Path:
    """A directory like a user's RL project: its own ``agents`` and ``envs`` packages."""
    for name in ("agents", "envs"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(SHADOW.format(name=name))
    return tmp_path


def _run(args: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(cwd)  # the user's packages come first on the path
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_readme_example_runs_beside_user_packages(user_project: Path):
    readme = (ROOT / "README.md").read_text()
    blocks = [part.split("```", 1)[0] for part in readme.split("```python\n")[1:]]
    example = next((block for block in blocks if "make_core" in block), "")
    assert "make_core" in example
    done = _run([sys.executable, "-c", example + "\nprint('example ran')"], user_project, 120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "example ran" in done.stdout


def test_cli_trains_beside_user_packages(user_project: Path):
    run_dir = user_project / "run"
    done = _run([sys.executable, "-m", "rtrl_rl", "train", "train.total_steps=20000",
                 f"run_dir={run_dir}", "log.eval_episodes=16", "log.progress=false"], user_project, 240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (run_dir / "summary.json").is_file()


def test_wheel_holds_the_namespaced_packages_and_configs(tmp_path: Path):
    pytest.importorskip("setuptools")
    # build from a copy: setuptools writes build/ and *.egg-info into the source tree
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, symlinks=True,
                    ignore=shutil.ignore_patterns(".git", "build", "runs", "*.egg-info", "__pycache__"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                            "-q", "-w", str(tmp_path), str(source)], capture_output=True, text=True, timeout=240)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = tmp_path.glob("rtrl_rl-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = ("rtrl_rl/agents/cores/elstm.py", "rtrl_rl/envs/memory_suite.py", "rtrl_rl/config/ready_yaml/default.yaml")
    for path in shipped:
        assert path in names
    assert not any(n.startswith(("agents/", "envs/")) for n in names)
