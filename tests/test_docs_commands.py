"""Every command and config example in README.md and docs/*.md is one the package accepts.

What is checked, without training anything:

- every ``rtrl-rl ...`` command, in a fenced shell block or an inline code span, is parsed
  by the real parser (:func:`rtrl_rl.cli.build_parser`); then its config (``--config``,
  ``--resume`` overrides, ``key=value`` overrides, ``bench runtime --modes``) goes through
  :func:`rtrl_rl.config.build_config`, its environment specs through ``parse_spec`` and its
  ``--option`` pairs through ``parse_options``, and ``gradcheck --core`` must name a core
  with RTRL;
- every fenced ``yaml`` block is a config (``build_config`` of its contents), unless it is
  a Kubernetes manifest (it has ``apiVersion`` and ``kind``);
- every inline span of overrides (``agent.core=lstm agent.learning=snap1``, checked together)
  or of one dotted key (``runtime.restart_actors``) names a real key and, where given, a
  valid value.

Conventions a page follows:

- **Placeholders** are upper-case words: ``RUN_DIR``, ``FILE``, ``SPEC``, ``N``,
  ``FILE.mp4``; ``...`` stands for more of the same. A placeholder is any value of its
  argument's type: the key or flag around it is still checked, the value is not.
- **Synopses** mark optional parts with ``[ ]``, alternatives with ``a|b`` (``a\\|b`` in a
  table) and repetition with ``...``; ``key=value`` is any override. A synopsis is checked
  with every optional part present, once per alternative.
- A span that is only ``rtrl-rl`` and sub-command names (``rtrl-rl evaluate``) names the
  command: only the names are checked.
- A YAML example whose first line is a comment naming a file (``# pong_cluster.yaml``) is
  that file for the commands of the same page (``--config pong_cluster.yaml``). A Python
  example named so (``# my_env.py``) is written out, and the page's ``check-env`` of it
  runs for real: the environment a newcomer copies must pass the checks.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import io
import itertools
import re
import shlex
from pathlib import Path

import pytest
import yaml

from rtrl_rl.cli import build_parser
from rtrl_rl.config import (
    REMOVED_KEYS, AgentConfig, Config, ConfigError, build_config, load_yaml, merge, parse_override, resolve_config_path,
)
from rtrl_rl.envs import parse_spec
from rtrl_rl.envs.spec import parse_options

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PLACEHOLDER = re.compile(r"[A-Z][A-Z0-9_]*(\.[a-z0-9]+)?|\.\.\.")
SECTIONS = tuple(f.name for f in dataclasses.fields(Config) if dataclasses.is_dataclass(getattr(Config(), f.name)))
KEY = re.compile(rf"(?:{'|'.join(SECTIONS)})\.[a-z_]+(?:\.[a-z_]+)*|run_dir")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
SHELL_OPERATORS = {"&&", "||", ";", "|"}
FILE_SUFFIXES = (".md", ".py", ".yaml", ".yml", ".json", ".png", ".txt", ".pt")


def _is_placeholder(text: str) -> bool:
    return PLACEHOLDER.fullmatch(text) is not None


# --------------------------------------------------------------------------- extraction


def _fenced(text: str, languages: tuple[str, ...]) -> list[str]:
    return [body for lang, body in FENCE.findall(text) if lang in languages]


def _inline_spans(text: str) -> list[str]:
    """The inline code spans of ``text`` outside fenced blocks, ``\\|`` read as ``|``."""
    return [span.replace("\\|", "|") for span in re.findall(r"`([^`]+)`", FENCE.sub("", text))]


def _commands_in_shell(body: str) -> list[list[str]]:
    """The ``rtrl-rl`` command lines of a shell block (continuations joined, comments dropped)."""
    found = []
    for line in body.replace("\\\n", " ").splitlines():
        if "rtrl-rl" not in line:
            continue  # a diagram or another tool's command: not ours to parse
        words = shlex.split(line.strip().removeprefix("$ "), comments=True)
        for is_operator, group in itertools.groupby(words, lambda w: w in SHELL_OPERATORS):
            group = list(group)
            if not is_operator and "rtrl-rl" in group:
                found.append(group[group.index("rtrl-rl"):])
    return found


def _commands_in_spans(text: str) -> list[list[str]]:
    found = []
    for span in _inline_spans(text):
        span = " ".join(span.split())
        if span.startswith("rtrl-rl ") or " -- rtrl-rl " in span:
            words = shlex.split(span)
            found.append(words[words.index("rtrl-rl"):])
    return found


def _expand_synopsis(words: list[str]) -> list[list[str]]:
    """Every concrete command a synopsis stands for: optional parts in, one per alternative."""
    words = [w.strip("[]") for w in words]
    words = [w for w in words if w and w != "..."]
    choices = [w.split("|") if "|" in w else [w] for w in words]
    return [list(c) for c in itertools.product(*choices)]


def _named_examples(text: str, language: str, suffix: str) -> dict[str, str]:
    """The examples of a page whose first line is a comment naming their file (``# my_env.py``)."""
    named = {}
    for body in _fenced(text, (language,)):
        match = re.match(rf"#\s*(\S+{re.escape(suffix)})\b", body)
        if match:
            named[match.group(1)] = body
    return named


def _cases() -> list[tuple[str, list[str], dict]]:
    cases = []
    for page in PAGES:
        text = page.read_text()
        files = {name: yaml.safe_load(body) or {} for name, body in _named_examples(text, "yaml", ".yaml").items()}
        commands = [c for body in _fenced(text, ("", "bash", "sh", "shell", "console"))
                    for c in _commands_in_shell(body)] + _commands_in_spans(text)
        for words in commands:
            cases.append((page.name, words, files))
    return cases


CASES = _cases()


# --------------------------------------------------------------------------- checks


@functools.cache
def _cli() -> argparse.ArgumentParser:
    """The real parser, built once (parsing does not change it)."""
    return build_parser()


def _subparser(parser: argparse.ArgumentParser, words: list[str]) -> tuple[argparse.ArgumentParser, int]:
    """The parser of the sub-command that ``words`` name, and how many words name it."""
    depth = 0
    while depth < len(words):
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs or words[depth] not in subs[0].choices:
            break
        parser, depth = subs[0].choices[words[depth]], depth + 1
    return parser, depth


def _fill_placeholders(parser: argparse.ArgumentParser, words: list[str]) -> list[str]:
    """``words`` with each placeholder after a typed option replaced by a value of its type."""
    filled = list(words)
    for i, word in enumerate(words[1:], start=1):
        action = parser._option_string_actions.get(words[i - 1])
        if _is_placeholder(word) and action is not None and action.type in (int, float):
            filled[i] = "1"
    return filled


def _parse(words: list[str]) -> argparse.Namespace:
    parser = _cli()
    sub, _ = _subparser(parser, words)
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return parser.parse_args(_fill_placeholders(sub, words))
    except SystemExit:
        raise AssertionError(f"the parser refuses it: {err.getvalue().strip()}") from None


def _key_exists(dotted: str) -> bool:
    node: object = Config()
    for part in dotted.split("."):
        if isinstance(node, dict):  # a free-form mapping: env.options, runtime.ray_*_resources
            return True
        names = {f.name for f in dataclasses.fields(node)} if dataclasses.is_dataclass(node) else set()
        if part not in names:
            return False
        node = getattr(node, part)
    return True


def _check_overrides(base: list[dict], overrides: list[str]) -> None:
    """``overrides`` on top of ``base`` make a valid config; a placeholder value only needs its key."""
    sources = list(base)
    for text in overrides:
        if text == "key=value":
            continue
        key, sep, value = text.partition("=")
        assert sep, f"override {text!r} is not key=value"
        assert _key_exists(key.strip()), f"override {text!r}: no config key {key!r}"
        if not _is_placeholder(value):
            sources.append(parse_override(text))
    config = build_config(*sources)
    if not _is_placeholder(config.env.id):
        parse_spec(config.env.id)


def _check_span(words: list[str]) -> None:
    """An inline span of overrides makes a valid config. A span of one override that names a
    setting in prose (``runtime.backend=ray``) needs only its own key's rules: the rules across
    keys (``rtrl_rl.config.CROSS_KEY_RULES``) ask for the other keys a whole command gives."""
    try:
        _check_overrides([], words)
    except ConfigError:
        if len(words) > 1:
            raise
        merge(Config(), parse_override(words[0]))  # type, choices and bounds of the one key


def _config_source(name: str | None, files: dict[str, dict]) -> list[dict]:
    if name is None or _is_placeholder(name):
        return []
    if name in files:
        return [files[name]]
    path = ROOT / name if (ROOT / name).is_file() else resolve_config_path(name)
    return [load_yaml(path)]


def _check_spec(spec: str | None) -> None:
    if spec is not None and not _is_placeholder(spec):
        parse_spec(spec)


def _check_command(words: list[str], files: dict[str, dict]) -> None:
    args = _parse(words)
    assert not hasattr(args, "rest"), f"'{' '.join(words[1:3])}' is unavailable here: {args.func(args)}"
    command, target = args.command, getattr(args, "target", None)
    if command == "train":
        base = [] if args.resume else _config_source(args.config, files)
        _check_overrides(base, args.overrides)
    elif command == "evaluate":
        _check_spec(args.env)
    elif command == "check-env" or target == "envs":
        _check_spec(args.spec)
        parse_options(args.option)
    elif command == "gradcheck" and args.core is not None and not _is_placeholder(args.core):
        from rtrl_rl.agents.cores import DENSE_CORES, elementwise_cores

        assert args.core in elementwise_cores() + sorted(DENSE_CORES), f"gradcheck has no core {args.core!r}"
    elif target == "runtime":
        modes = next(f for f in dataclasses.fields(AgentConfig) if f.name == "learning").metadata["choices"]
        assert set(args.modes.split(",")) <= set(modes), f"--modes {args.modes}: modes are {modes}"
        _check_overrides(_config_source(args.config, files), args.overrides)


def _only_names(words: list[str]) -> bool:
    _, depth = _subparser(_cli(), words[1:])
    return depth == len(words) - 1 and depth > 0


@pytest.mark.parametrize("page, words, files", CASES, ids=[f"{p}:{' '.join(w)[:60]}" for p, w, _ in CASES])
def test_command_parses_with_the_real_cli_and_config(page: str, words: list[str], files: dict):
    synopsis = any(c in w for w in words for c in "[]|") or "..." in words
    if not synopsis and _only_names(words):
        return  # the span names a command; its names were checked by _only_names
    for concrete in _expand_synopsis(words):
        try:
            _check_command(concrete[1:], files)
        except (AssertionError, ValueError) as err:  # ConfigError and SpecError are ValueErrors
            pytest.fail(f"{page}: `{' '.join(concrete)}`: {err}")


def test_every_command_name_is_a_real_command():
    names = [w for _, w, _ in CASES if not any(c in x for x in w for c in "[]|")]
    for words in names:
        assert _subparser(_cli(), words[1:])[1] >= 1, f"`{' '.join(words)}` names no command"


def _env_file_checks() -> list[tuple[str, str, str, str]]:
    """(page, file name, spec, file text) of every check-env of a Python example file of its page."""
    found = []
    for page in PAGES:
        files = _named_examples(page.read_text(), "python", ".py")
        for name, words, _ in CASES:
            file = words[2].split(":")[0] if words[1:2] == ["check-env"] else None
            if name == page.name and file in files:
                found.append((page.name, file, words[2], files[file]))
    return found


@pytest.mark.parametrize("page, file, spec, text", _env_file_checks())
def test_example_env_files_pass_check_env(page: str, file: str, spec: str, text: str, tmp_path: Path,
                                          monkeypatch):
    from rtrl_rl.envs.check import run_check

    (tmp_path / file).write_text(text)
    monkeypatch.chdir(tmp_path)
    assert run_check(spec, 2, 300, 0, {}) == 0, f"{page}: `rtrl-rl check-env {spec}` finds problems"


@pytest.mark.parametrize("page", [p.name for p in PAGES])
def test_yaml_examples_are_valid_configs(page: str):
    text = next(p for p in PAGES if p.name == page).read_text()
    for body in _fenced(text, ("yaml", "yml")):
        data = yaml.safe_load(body) or {}
        if isinstance(data, dict) and {"apiVersion", "kind"} <= set(data):
            continue  # a Kubernetes manifest, not a run config
        try:
            build_config(data)
        except ValueError as err:
            pytest.fail(f"{page}: YAML example starting {body.splitlines()[0]!r}: {err}")


@pytest.mark.parametrize("page", [p.name for p in PAGES])
def test_inline_keys_and_overrides_are_real(page: str):
    text = next(p for p in PAGES if p.name == page).read_text()
    for span in _inline_spans(text):
        words = span.split()
        if not words or any(w.endswith(FILE_SUFFIXES) for w in words):
            continue
        if all(KEY.fullmatch(w.partition("=")[0]) and "=" in w for w in words):
            try:
                _check_span(words)
            except (AssertionError, ValueError) as err:
                pytest.fail(f"{page}: `{span}`: {err}")
        elif len(words) == 1 and KEY.fullmatch(span):
            assert _key_exists(span) or span in REMOVED_KEYS, f"{page}: `{span}` is no config key"


def test_the_extraction_finds_what_it_must():
    """The checks above are not vacuous: the pages hold commands and examples of each kind,
    and a wrong key, choice or flag is caught."""
    assert len(CASES) > 40
    assert any(w[:2] == ["rtrl-rl", "bench"] for _, w, _ in CASES)
    assert any(page == "README.md" for page, *_ in _env_file_checks())
    with pytest.raises(AssertionError, match="refuses"):
        _check_command(["evaluate", "RUN_DIR", "--episods", "3"], {})
    with pytest.raises(ValueError, match="restart_actors"):
        build_config({"train": {"restart_actors": True}})
    with pytest.raises(ValueError, match="must be one of"):
        _check_command(["train", "agent.learning=bptt"], {})
    with pytest.raises(ValueError, match="must be one of"):
        _check_span(["runtime.backend=rya"])
    with pytest.raises(ValueError, match="approximates RTRL"):
        _check_span(["agent.core=elstm", "agent.learning=snap1"])  # a span's overrides go together
    _check_span(["runtime.backend=ray"])  # named in prose: the rules across keys need a whole command
    with pytest.raises(AssertionError, match="no config key"):
        _check_command(["train", "--config", "atari/pong", "train.segment_lenght=N"], {})
    with pytest.raises(AssertionError, match="refuses"):
        for words in _expand_synopsis(["bench", "cores|envs"]):
            _check_command(words, {})
