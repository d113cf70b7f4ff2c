"""Find the ready configs by name (``atari/pong``) from a checkout or an installed package.

The files live in the repository's ``configs/`` directory. The package reaches them as
``rtrl_rl/config/ready_yaml``: in a checkout (and an editable install) that is a symbolic
link to ``../../configs``; a wheel (``pip install .``) copies the files there as package
data (see ``[tool.setuptools.package-data]`` in pyproject.toml). Either way one path works.
"""

from __future__ import annotations

from pathlib import Path

from rtrl_rl.config.reader import ConfigError

_SUFFIXES = (".yaml", ".yml")


def config_dir() -> Path:
    """The directory of the ready configs shipped with the package."""
    return Path(__file__).resolve().parent / "ready_yaml"


def available_configs() -> list[str]:
    """Names of the ready configs, e.g. ``["atari/breakout", "atari/pong", "default", ...]``."""
    root = config_dir()
    files = [p for suffix in _SUFFIXES for p in root.rglob(f"*{suffix}")]
    return sorted(p.relative_to(root).with_suffix("").as_posix() for p in files)


def _strip(name: str) -> str:
    """``configs/atari/pong.yaml`` or ``atari/pong.yaml`` -> ``atari/pong``."""
    name = name.replace("\\", "/").removeprefix("./").removeprefix("configs/")
    for suffix in _SUFFIXES:
        name = name.removesuffix(suffix)
    return name


def resolve_config_path(name_or_path: str | Path) -> Path:
    """The config file ``name_or_path`` means: an existing file as given, else a ready
    config by name relative to ``configs/`` (``atari/pong``, ``atari/pong.yaml``).

    Raises :class:`ConfigError` listing the ready configs when neither exists.
    """
    path = Path(name_or_path)
    if path.is_file():
        return path
    root = config_dir()
    name = _strip(str(name_or_path))
    for suffix in _SUFFIXES:
        candidate = (root / f"{name}{suffix}").resolve()
        if candidate.is_file() and candidate.is_relative_to(root.resolve()):
            return candidate
    raise ConfigError(f"no config file '{name_or_path}' and no ready config of that name; "
                      f"ready configs: {available_configs()}")
