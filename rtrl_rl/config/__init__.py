"""Run configuration: typed dataclasses, YAML files and dotted ``key=value`` overrides.

A run is described by a :class:`Config`. Everything a caller needs is importable from
here (``from rtrl_rl.config import Config, load_config``); the package keeps each part in
a module of its own:

- :mod:`~rtrl_rl.config.sections`: the dataclasses, one field per key, with each key's
  help and its own rules (choices, bounds, checks, whether a resume may change it);
- :mod:`~rtrl_rl.config.rules`: every rule that involves several keys, the removed keys,
  and what a resume may not change;
- :mod:`~rtrl_rl.config.build`: :func:`load_config` and :func:`build_config`, which apply
  all the rules and raise :class:`ConfigError` naming the key, and the YAML writers;
- :mod:`~rtrl_rl.config.reader`: how mappings are merged into the dataclasses (it knows
  no key of its own);
- :mod:`~rtrl_rl.config.ready`: the ready configs of ``configs/`` by name (``atari/pong``);
- :mod:`~rtrl_rl.config.key_docs`: the listing of every key (``rtrl-rl config --keys``).
"""

from rtrl_rl.config.build import build_config, dump_config, load_config, save_config, to_dict
from rtrl_rl.config.reader import (
    ConfigError, coerce, drop_removed, field_type, leaves, load_yaml, merge, parse_override,
)
from rtrl_rl.config.ready import available_configs, config_dir, resolve_config_path
from rtrl_rl.config.rules import (
    CROSS_KEY_RULES, IMPORT_SUITES, REMOVED_KEYS, check, check_env_imports, refuse_changes, validate,
)
from rtrl_rl.config.sections import (
    APPROXIMATE_LEARNING, ARCHITECTURE, CHANGEABLE, CODE_OPTIONS, DEFAULT_DMLAB_MODULE, DENSE_CORES, INITIAL_ONLY,
    RAY_RESOURCES_RULE, RECURRENT_LEARNING, AgentConfig, Config, EnvConfig, LogConfig, PPOConfig, RuntimeConfig,
    StreamConfig, TrainConfig, device_problem,
)

__all__ = [
    "APPROXIMATE_LEARNING", "ARCHITECTURE", "CHANGEABLE", "CODE_OPTIONS", "CROSS_KEY_RULES", "DEFAULT_DMLAB_MODULE",
    "DENSE_CORES", "IMPORT_SUITES", "INITIAL_ONLY", "RAY_RESOURCES_RULE", "RECURRENT_LEARNING", "REMOVED_KEYS",
    "AgentConfig", "Config", "ConfigError", "EnvConfig", "LogConfig", "PPOConfig", "RuntimeConfig", "StreamConfig",
    "TrainConfig",
    "available_configs", "build_config", "check", "check_env_imports", "coerce", "config_dir", "device_problem",
    "drop_removed", "dump_config", "field_type", "leaves", "load_config", "load_yaml", "merge", "parse_override",
    "refuse_changes", "resolve_config_path", "save_config", "to_dict", "validate",
]
