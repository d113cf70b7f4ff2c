"""How a config schema is read: nested mappings merged into typed dataclasses, each value
checked against the rules its field declares.

The config package declares the schema (:mod:`rtrl_rl.config.sections`: the dataclasses,
each field's help, choices and bounds; :mod:`rtrl_rl.config.rules`: the cross-key rules);
this module knows nothing of its keys. A field's metadata
may hold ``choices`` (a tuple), the bounds ``at_least``, ``above``, ``at_most``, ``below``,
``check`` (``value -> error text or None``) and ``merge`` (a mapping field whose entries a
later source updates one by one instead of replacing the mapping).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A config file or override names an unknown key or holds a value that breaks a rule."""


def field_type(cls: type, name: str) -> Any:
    """The resolved annotation of the field ``name`` of the dataclass ``cls``."""
    return typing.get_type_hints(cls)[name]


def as_number(value: Any, annotation: Any) -> Any:
    """Accept 3 for a float and 1e6 or 2.0 for an int (YAML reads ``1e6`` as a string)."""
    if annotation not in (int, float) or isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return value
    if annotation is float and isinstance(value, int):
        return float(value)
    if annotation is int and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def value_problem(value: Any, meta: dict) -> str | None:
    """What is wrong with ``value`` by the field's rules (bounds, ``check``), or None.

    Written as ``not value >= bound`` so that NaN fails every bound.
    """
    if "at_least" in meta and not value >= meta["at_least"]:
        return f"must be >= {meta['at_least']:g}"
    if "above" in meta and not value > meta["above"]:
        return f"must be > {meta['above']:g}"
    if "at_most" in meta and not value <= meta["at_most"]:
        return f"must be <= {meta['at_most']:g}"
    if "below" in meta and not value < meta["below"]:
        return f"must be < {meta['below']:g}"
    return meta["check"](value) if "check" in meta else None


def coerce(key: str, value: Any, annotation: Any, meta: dict) -> Any:
    """``value`` checked against the field's type, choices and rules; ints are accepted as
    floats. Raises :class:`ConfigError` naming ``key``."""
    value = as_number(value, annotation)
    base = typing.get_origin(annotation) or annotation
    if isinstance(base, types.UnionType):
        base = tuple(typing.get_args(annotation))
    ok = isinstance(value, base) and not (base is int and isinstance(value, bool))
    if not ok:
        name = getattr(annotation, "__name__", str(annotation))
        raise ConfigError(f"config key '{key}' expects {name}, got {value!r} ({type(value).__name__})")
    choices = meta.get("choices")
    if choices and value not in choices:
        raise ConfigError(f"config key '{key}' must be one of {list(choices)}, got {value!r}")
    problem = value_problem(value, meta)
    if problem:
        raise ConfigError(f"config key '{key}' {problem}, got {value!r}")
    return value


def merge(obj: Any, data: dict, prefix: str = "") -> None:
    """Write the nested mapping ``data`` into the dataclass ``obj``, checking each key."""
    fields = {f.name: f for f in dataclasses.fields(obj)}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if key not in fields:
            raise ConfigError(f"unknown config key '{path}'; valid keys here: {sorted(fields)}")
        current, meta = getattr(obj, key), dict(fields[key].metadata)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"config key '{path}' is a section; give a mapping, got {value!r}")
            merge(current, value, path + ".")
        elif meta.get("merge") and isinstance(current, dict) and isinstance(value, dict):
            current.update(value)
        else:
            setattr(obj, key, coerce(path, value, field_type(type(obj), key), meta))


def leaves(obj: Any, prefix: str = "") -> Iterator[tuple[str, Any, dict, Any]]:
    """``(dotted key, value, field metadata, section)`` for every field of the dataclass
    ``obj`` that is not itself a section, depth first in declaration order."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            yield from leaves(value, f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", value, dict(f.metadata), obj


# --------------------------------------------------------------------------- removed keys


def _dotted_keys(data: dict, prefix: str = "") -> Iterator[str]:
    for key, value in data.items():
        yield f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _dotted_keys(value, f"{prefix}{key}.")


def _without(data: dict, dotted: str) -> dict:
    """A copy of ``data`` without the dotted key ``dotted``."""
    head, _, rest = dotted.partition(".")
    if head not in data:
        return data
    if not rest:
        return {k: v for k, v in data.items() if k != head}
    inner = data[head]
    return {**data, head: _without(inner, rest) if isinstance(inner, dict) else inner}


def sets_key(data: Any, dotted: str) -> bool:
    """Whether the nested mapping ``data`` holds the dotted key ``dotted``."""
    node = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def drop_removed(sources: tuple[dict, ...], removed: dict[str, str]) -> list[dict]:
    """``sources`` without the keys of ``removed`` (old key -> its replacement); a source
    naming one is refused unless a later source sets the replacement (so that a resumed
    run's stored config goes on once the new key is given on the command line)."""
    kept = []
    for i, data in enumerate(sources):
        for key in [k for k in _dotted_keys(data) if k in removed] if isinstance(data, dict) else []:
            new = removed[key]
            if not any(sets_key(later, new) for later in sources[i + 1:]):
                raise ConfigError(
                    f"config key '{key}' was removed: '{new}' replaces it (see its help in docs/configs.md); "
                    f"move the value there, or pass {new}=... on the command line (e.g. when resuming "
                    f"a run whose stored config still names '{key}')"
                )
            data = _without(data, key)
        kept.append(data)
    return kept


# --------------------------------------------------------------------------- text


def parse_override(text: str) -> dict:
    """Turn ``a.b.c=value`` into ``{"a": {"b": {"c": value}}}``; the value is parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like key=value (e.g. train.seed=3)")
    key, raw = text.split("=", 1)
    value = yaml.safe_load(raw) if raw.strip() else ""
    nested: dict = {}
    node = nested
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return nested


def load_yaml(path: str | Path) -> dict:
    """Read a config file; a missing file or a non-mapping top level is a ConfigError."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return data
