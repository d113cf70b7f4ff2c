"""Every config key with its type, default, rule and help, read from the config dataclasses.

The listing comes from the fields of :class:`rtrl_rl.config.Config` and their metadata
(``_doc``/``_choice`` in ``rtrl_rl/config/sections.py``: ``help``, ``choices``, the bounds
``at_least``, ``above``, ``at_most``, ``below``, and ``rule``, the words for a ``check``), never from a hand-kept list, so a new key documents
itself in ``rtrl-rl config --keys`` the moment it is declared.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any

import yaml

from rtrl_rl.config.sections import Config


@dataclass(frozen=True)
class KeyDoc:
    """One config key: dotted ``key``, ``type`` name, ``default`` value, ``rule`` in words
    (bounds, choices; empty when any value of the type goes) and ``help``."""

    key: str
    type: str
    default: Any
    rule: str
    help: str


def _number(value: float) -> str:
    return f"{value:g}"


def describe_rule(meta: dict) -> str:
    """The rule a field's metadata sets, in words: ``one of a, b``, ``at least 1``, ``in [0, 1)``."""
    if meta.get("choices"):
        return "one of " + ", ".join(str(c) for c in meta["choices"])
    low = ("[", meta["at_least"], "at least") if "at_least" in meta else (
        ("(", meta["above"], "above") if "above" in meta else None)
    high = ("]", meta["at_most"], "at most") if "at_most" in meta else (
        (")", meta["below"], "below") if "below" in meta else None)
    parts = []
    if low and high:
        parts.append(f"in {low[0]}{_number(low[1])}, {_number(high[1])}{high[0]}")
    elif low or high:
        _, bound, words = low or high
        parts.append(f"{words} {_number(bound)}")
    if meta.get("rule"):
        parts.append(meta["rule"])
    return ", ".join(parts)


def _default(field: dataclasses.Field) -> Any:
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def config_keys(cls: type = Config, prefix: str = "") -> list[KeyDoc]:
    """Every leaf key of the dataclass ``cls`` (sections recursed into), in declaration order."""
    hints = typing.get_type_hints(cls)
    keys: list[KeyDoc] = []
    for field in dataclasses.fields(cls):
        annotation = hints[field.name]
        if dataclasses.is_dataclass(annotation):
            keys += config_keys(annotation, f"{prefix}{field.name}.")
            continue
        meta = dict(field.metadata)
        keys.append(KeyDoc(key=prefix + field.name, type=getattr(annotation, "__name__", str(annotation)),
                           default=_default(field), rule=describe_rule(meta), help=meta.get("help", "")))
    return keys


def format_value(value: Any) -> str:
    """``value`` as it would be typed in a ``key=value`` override (YAML flow style)."""
    if value == "":
        return "''"
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10_000)
    return text.strip().removesuffix("...").strip()


def format_keys(keys: list[KeyDoc]) -> str:
    """The listing of ``rtrl-rl config --keys``: a heading line per key, its help indented below.

    ``train.segment_length: int = 10 (at least 1)`` then ``    steps per stream ...``, so
    ``grep -A1 KEY`` finds one key with its help.
    """
    lines = []
    for doc in keys:
        rule = f" ({doc.rule})" if doc.rule else ""
        lines.append(f"{doc.key}: {doc.type} = {format_value(doc.default)}{rule}")
        lines.append(f"    {doc.help}" if doc.help else "    (no help text)")
    return "\n".join(lines)
