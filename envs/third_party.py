"""Notices and warnings from the optional suites' packages: each kind once, on one line.

The suites (popgym, minigrid) are code the user did not write, and some of it is noisy:
importing a package may pull in the old ``gym``, which prints a three-line "unmaintained"
notice, and gymnasium's passive env checker warns at the first reset and steps of
popgym's envs that their infos "share an object" between calls (harmless here: every
observation is copied into the run's buffers and infos are read at once). So:

- :func:`quiet_import` imports a suite's package with what it prints on stderr and the
  warnings it raises collected;
- :class:`ThirdPartyEnv` wraps a suite's env and collects the warnings of its first
  :data:`WATCHED_CALLS` calls (the passive checker's window);
- :func:`note` shows each collected kind once per process on one line, and nothing in
  the run's child processes (env workers, actors), whose main process has shown them
  already (:func:`quiet_here`).

Warnings from the user's own environments (``file.py:Class``, ``module:Class``, ``gym:``
ids they register) are never wrapped, collected or hidden.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import re
import sys
import warnings
from types import ModuleType
from typing import Any

import gymnasium as gym

#: reset plus the first steps: where gymnasium's passive checker looks at an env
WATCHED_CALLS = 3

_shown: set[str] = set()
_quiet = False


def quiet_here() -> None:
    """Show no notes in this process (a child of the run: its main process shows them)."""
    global _quiet
    _quiet = True


def kind_of(text: str) -> str:
    """The kind of a message: without colour codes, gymnasium's ``WARN:`` prefix and the
    backquoted call names, so "`reset` and the following `step`" and "`step` and the
    following `step`" are one kind."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", text).strip()
    text = re.sub(r"^WARN:\s*", "", text)
    return re.sub(r"`[^`]*`", "…", first_sentence(text))


def first_sentence(text: str) -> str:
    """The first line of ``text`` up to its first ", therefore" or sentence end."""
    line = re.sub(r"\x1b\[[0-9;]*m", "", (text.strip().splitlines() or [""])[0])
    return re.split(r", therefore|(?<=\.)\s", re.sub(r"^WARN:\s*", "", line), maxsplit=1)[0].strip()


def note(source: str, text: str) -> None:
    """Show ``text`` from ``source`` on one line, unless its kind was shown in this process."""
    kind = kind_of(text)
    if _quiet or not kind or kind in _shown:
        return
    _shown.add(kind)
    print(f"note: {source} says (shown once): {first_sentence(text).replace('`', '')}", file=sys.stderr)


@contextlib.contextmanager
def collected(source: str, stderr: bool = False):
    """Collect the warnings (and, with ``stderr``, what is printed on stderr) inside the
    block and :func:`note` each kind."""
    printed = io.StringIO()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with contextlib.redirect_stderr(printed) if stderr else contextlib.nullcontext():
            yield
    if printed.getvalue().strip():
        note(source, printed.getvalue())
    for warning in caught:
        note(source, str(warning.message))


def quiet_import(module: str) -> ModuleType:
    """``importlib.import_module(module)`` for a suite's package, its notices noted once."""
    if sys.modules.get(module) is not None:  # (None there means "not importable": import_module raises)
        return sys.modules[module]
    with collected(module, stderr=True):
        return importlib.import_module(module)


class ThirdPartyEnv(gym.Wrapper):
    """A suite's env whose first :data:`WATCHED_CALLS` calls have their warnings noted once."""

    def __init__(self, env: gym.Env, source: str) -> None:
        super().__init__(env)
        self.source, self.calls = source, 0

    def _watched(self, call, *args: Any, **kwargs: Any) -> Any:
        if self.calls >= WATCHED_CALLS:
            return call(*args, **kwargs)
        self.calls += 1
        with collected(self.source):
            return call(*args, **kwargs)

    def reset(self, **kwargs: Any):
        """The env's reset (warnings noted while watched)."""
        return self._watched(self.env.reset, **kwargs)

    def step(self, action: Any):
        """The env's step (warnings noted while watched)."""
        return self._watched(self.env.step, action)
