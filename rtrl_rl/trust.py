"""Which config entries make rtrl-rl import code, and the rule for configs from a checkpoint.

A checkpoint is plain data (``rtrl_rl.checkpoint`` loads it with ``weights_only=True``),
but the config stored in it can name code: an entry point ``env.id=path/to/file.py:Env``
or ``package.module:Env``, modules in ``env.imports`` or ``env.options.imports``, or a
DMLab module and folder (``env.options.dmlab_module``, ``dmlab_path``). Building that
environment imports, and so runs, the named code. ``rtrl-rl evaluate RUN_DIR`` and
``rtrl-rl train --resume RUN_DIR`` therefore import such code only when the user named
it on the command line (``--env SPEC``, or the same ``key=value`` as an override) or
passed ``--trust-config``. Built-in suites (``memory:``, ``atari:``, ``procgen:``,
``dmlab:``, ``minatar:``, and registered ``gym:``/``popgym:``/``minigrid:`` ids) import only the
installed packages of their suite and need neither.
"""

from __future__ import annotations

from typing import Any

from rtrl_rl.config import Config, ConfigError
from rtrl_rl.envs.spec import ENTRY_POINT, parse_spec

#: the DMLab module a dmlab: spec imports unless its options name another
DEFAULT_DMLAB_MODULE = "deepmind_lab"


def code_references(config: Config) -> dict[str, Any]:
    """``{config key: value}`` for each entry of ``config`` that names code to import.

    Keys: ``env.id`` (an entry point, not a suite), ``env.imports``,
    ``env.options.imports``, ``env.options.dmlab_path`` and a non-default
    ``env.options.dmlab_module``. Parsing the spec imports nothing (it only asks whether
    a top-level module exists). A spec no suite knows is left to the env builder's error.
    """
    refs: dict[str, Any] = {}
    try:
        if parse_spec(config.env.id).suite == ENTRY_POINT:
            refs["env.id"] = config.env.id
    except ValueError:
        pass
    if config.env.imports:
        refs["env.imports"] = list(config.env.imports)
    options = config.env.options
    if options.get("imports"):
        refs["env.options.imports"] = options["imports"]
    if options.get("dmlab_path"):
        refs["env.options.dmlab_path"] = options["dmlab_path"]
    if options.get("dmlab_module", DEFAULT_DMLAB_MODULE) != DEFAULT_DMLAB_MODULE:
        refs["env.options.dmlab_module"] = options["dmlab_module"]
    return refs


def require_trust(config: Config, source: str, named: set[str] = frozenset(), trusted: bool = False,
                  how: str = "") -> None:
    """Refuse a ``config`` read from ``source`` (a checkpoint) that names code the user did not.

    ``named``: the dotted keys the user set on the command line. Only the very key counts
    (``env.id``, ``env.imports``, ``env.options.imports``): a parent such as ``env`` or
    ``env.options`` never stands for the code entries under it. ``trusted``: the user
    passed the trust flag. ``how``: what the user can type instead, appended to the
    message. Raises :class:`rtrl_rl.config.ConfigError` (exit 2) before anything is
    imported; the message lists each entry with its value.
    """
    if trusted:
        return
    unnamed = {key: value for key, value in code_references(config).items()
               if key not in named}
    if unnamed:
        listed = ", ".join(f"{key}={value!r}" for key, value in unnamed.items())
        raise ConfigError(f"the config stored in {source} names code that building its environment would "
                          f"import and run ({listed}); nothing was imported. If you trust that run, "
                          f"pass --trust-config{how}")
