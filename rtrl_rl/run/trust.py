"""The rule for configs from a checkpoint that name code to import (which entries do is
declared in :mod:`rtrl_rl.config`, ``names_code``).

A checkpoint is plain data (``rtrl_rl.run.checkpoint`` loads it with ``weights_only=True``),
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

from rtrl_rl.config import Config, ConfigError, leaves


def code_references(config: Config) -> dict[str, Any]:
    """``{config key: value}`` for each entry of ``config`` that names code to import: the
    keys whose field declares ``names_code`` in :mod:`rtrl_rl.config` (``env.id`` when an
    entry point, ``env.imports``, and the code entries of ``env.options``: ``imports``,
    ``dmlab_path``, a non-default ``dmlab_module``). Finding them imports nothing.
    """
    refs: dict[str, Any] = {}
    for key, value, meta, _ in leaves(config):
        test = meta.get("names_code")
        if isinstance(test, dict):  # a mapping: the test of each entry
            refs.update({f"{key}.{name}": value[name] for name, names in test.items()
                         if name in value and names(value[name])})
        elif test is not None and test(value):
            refs[key] = list(value) if isinstance(value, list) else value
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
