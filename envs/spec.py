"""Parsing of environment spec strings and ``key=value`` options.

Grammar: ``suite:name`` with suite one of :data:`SUITES`, or an entry point
``package.module:Class`` / ``path/to/file.py:Class`` naming a gymnasium.Env subclass.
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
from dataclasses import dataclass
from typing import Any

#: suite -> one-line description (shown in errors and by check-env)
SUITES: dict[str, str] = {
    "atari": "atari:Pong, atari:ms_pacman or atari:ALE/Pong-v5 (ale-py)",
    "procgen": "procgen:coinrun (the 16 ProcGen games; procgen-mirror)",
    "dmlab": "dmlab:rooms_watermaze (DMLab-30 levels; deepmind_lab built from source)",
    "memory": "memory:recall, memory:tmaze (built in)",
    "gym": "gym:CartPole-v1 (any registered gymnasium id; imports=[module,...])",
    "popgym": "popgym:RepeatPreviousEasy or popgym:popgym-RepeatPreviousEasy-v0 (the 42 of popgym.envs.ALL)",
    "minigrid": "minigrid:Empty-5x5 or minigrid:MiniGrid-Empty-5x5-v0",
    "minatar": "minatar:Breakout (Asterix, Breakout, Freeway, Seaquest, SpaceInvaders; minatar)",
}
ENTRY_POINT = "entry"


class SpecError(ValueError):
    """An unknown suite or name; check-env turns it into exit code 2."""


class SpaceError(ValueError):
    """An env's observation or action space that no vectorised env here can carry (Text,
    Graph, Sequence, nested Dicts, an empty Discrete); check-env turns it into exit code 2."""


@dataclass(frozen=True)
class Spec:
    """A parsed spec: ``suite`` (a key of SUITES or ``"entry"``) and ``name``."""

    suite: str
    name: str
    text: str


def valid_suites() -> str:
    """Human-readable list of the suites and the entry-point forms."""
    lines = [f"  {k}: {v}" for k, v in SUITES.items()]
    lines.append("  package.module:Class or path/to/file.py:Class (custom gymnasium.Env)")
    return "\n".join(lines)


def parse_spec(text: str) -> Spec:
    """Split ``text`` into suite and name; raise SpecError listing valid suites if unknown."""
    prefix, sep, name = text.partition(":")
    if not sep or not name or not prefix:
        raise SpecError(f"environment spec {text!r} is not 'suite:name'. Valid forms:\n"
                        + valid_suites())
    if prefix in SUITES:
        return Spec(prefix, name, text)
    looks_like_path = prefix.endswith(".py") or "/" in prefix
    if looks_like_path or "." in prefix or importlib.util.find_spec(prefix) is not None:
        return Spec(ENTRY_POINT, name, text)
    close = difflib.get_close_matches(prefix, list(SUITES), n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise SpecError(f"unknown suite {prefix!r}{hint}. Valid suites:\n" + valid_suites())


def parse_value(text: str) -> Any:
    """Read an option value: a Python literal (int, float, bool, list...) or a string."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_options(items: list[str] | None) -> dict[str, Any]:
    """Turn ``["key=value", ...]`` (the CLI's ``--option``) into a dict of typed values."""
    options: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"option {item!r} is not key=value")
        options[key.strip()] = parse_value(value)
    return options


def missing_extra(what: str, extra: str, err: ImportError) -> ImportError:
    """The ImportError for a missing optional package: what failed, and the pip extra to install."""
    return ImportError(f"{what} is not installed ({err}); install it with "
                       f'pip install "rtrl-rl[{extra}]"')


def closest(name: str, candidates: list[str], what: str) -> SpecError:
    """A SpecError for an unknown ``name`` that lists the closest candidates."""
    close = difflib.get_close_matches(name, candidates, n=5, cutoff=0.5)
    hint = f"; closest: {', '.join(close)}" if close else ""
    return SpecError(f"unknown {what} {name!r}{hint}")
