"""A :class:`Config` from files and overrides, checked by every rule, and written back as YAML.

:func:`load_config` and :func:`build_config` merge the defaults, a file and ``key=value``
overrides (read by :mod:`rtrl_rl.config.reader`), checking each value against its key's
rules as it is merged and the whole against :data:`rtrl_rl.config.rules.CROSS_KEY_RULES`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from rtrl_rl.config.reader import drop_removed, load_yaml, merge, parse_override
from rtrl_rl.config.rules import REMOVED_KEYS, validate
from rtrl_rl.config.sections import Config


def build_config(*sources: dict) -> Config:
    """Merge mappings (file contents, then overrides) into a validated :class:`Config`.

    Suite options belong to their environment: when a source names another ``env.id``,
    the options collected so far are dropped before its own ``env.options`` (if any) apply.
    Otherwise ``env.options`` entries are merged key by key, so ``env.options.delay=10``
    changes one option and keeps the rest. Every value is checked against its key's rules
    (type, choices, bounds), then the whole config against the cross-key rules
    (:data:`~rtrl_rl.config.rules.CROSS_KEY_RULES`), and a key that was removed names its
    replacement.
    """
    config = Config()
    for data in drop_removed(sources, REMOVED_KEYS):
        env = data.get("env") if isinstance(data, dict) else None
        if isinstance(env, dict) and "id" in env and env["id"] != config.env.id:
            config.env.options = {}
        merge(config, data)
    validate(config)
    return config


def load_config(path: str | Path | None = None, overrides: list[str] = ()) -> Config:
    """The config of a run: defaults, then the file at ``path`` (if any), then overrides."""
    sources = [load_yaml(path)] if path else []
    sources += [parse_override(o) for o in overrides]
    return build_config(*sources)


def to_dict(config: Config) -> dict:
    """Plain nested mapping of a config, for YAML and checkpoints."""
    return dataclasses.asdict(config)


def dump_config(config: Config) -> str:
    """The resolved config as YAML, keys in dataclass order (what ``--config`` reads back)."""
    return yaml.safe_dump(to_dict(config), sort_keys=False)


def save_config(config: Config, path: str | Path) -> None:
    """Write the resolved config as YAML (a run's ``config.yaml``; ``rtrl-rl config`` prints it)."""
    Path(path).write_text(dump_config(config))
