"""``rtrl-rl config``: the config train would run, as YAML, with train's checks and exit 2;
``--keys``: every key with type, default, rule and help, from the dataclasses."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest
import torch
import yaml

from rtrl_rl.cli import main
from rtrl_rl.config import Config, load_config, resolve_config_path, to_dict
from rtrl_rl.config.key_docs import config_keys, format_keys

QUIET = ["log.progress=false", "log.tensorboard=false", "log.eval_episodes=0"]


def printed(capsys, *args: str) -> str:
    assert main(["config", *args]) == 0
    out = capsys.readouterr()
    assert out.err == ""
    return out.out


def test_it_prints_exactly_the_config_yaml_that_train_writes(tmp_path, capsys):
    run_dir = tmp_path / "run"
    overrides = ["env.num_envs=2", "env.options.delay=3", "agent.hidden_size=8", "train.total_steps=0",
                 "train.lr=6e-4", *QUIET, f"run_dir={run_dir}"]
    shown = printed(capsys, *overrides)
    assert not run_dir.exists(), "config must write nothing"
    assert main(["train", *overrides]) == 0
    assert (run_dir / "config.yaml").read_text() == shown


def test_the_printout_reads_back_with_config(tmp_path, capsys):
    shown = printed(capsys, "--config", "atari/pong", "train.seed=3", "env.options={frame_skip: 4}")
    assert yaml.safe_load(shown) == to_dict(load_config(resolve_config_path("atari/pong"),
                                                        ["train.seed=3", "env.options={frame_skip: 4}"]))
    saved = tmp_path / "resolved.yaml"
    saved.write_text(shown)
    assert printed(capsys, "--config", str(saved)) == shown


def test_defaults_print_the_embedded_default(capsys):
    assert yaml.safe_load(printed(capsys)) == to_dict(Config())


BAD = [
    ("train.segment_length=0", "'train.segment_length' must be >= 1"),
    ("agent.learning=bptt", "must be one of"),
    ("trian.seed=1", "unknown config key 'trian'"),
    ("env.num_envs=5 runtime.actors=2", "multiple of 'runtime.actors'"),
    ("env.id=nosuchsuite:thing", "unknown suite 'nosuchsuite'"),
    ("runtime.backend=ray", "runtime.actors >= 1"),
    ("train.device=tpu", "must be auto, cpu, cuda or cuda:N"),
    ("--config no/such/config", "no config file 'no/such/config'"),
]
if not torch.cuda.is_available():
    BAD.append(("train.device=cuda", "CUDA is not available"))


@pytest.mark.parametrize("args, fragment", BAD)
def test_bad_input_exits_2_with_trains_message(tmp_path, capsys, args, fragment):
    args = args.split()
    run_dir = tmp_path / "run"
    assert main(["config", *args, f"run_dir={run_dir}"]) == 2
    err = capsys.readouterr()
    assert err.out == "" and err.err.startswith("rtrl-rl config: ") and fragment in err.err, err.err
    assert main(["train", *args, *QUIET, f"run_dir={run_dir}"]) == 2
    train_err = capsys.readouterr().err
    assert train_err.removeprefix("rtrl-rl train: ") == err.err.removeprefix("rtrl-rl config: ")
    assert not run_dir.exists()


def test_it_imports_no_code_that_the_config_names(tmp_path, capsys):
    marker = tmp_path / "imported"
    (tmp_path / "env_file.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    shown = printed(capsys, f"env.id={tmp_path / 'env_file.py'}:Env", "env.imports=[os]")
    assert yaml.safe_load(shown)["env"]["id"].endswith("env_file.py:Env") and not marker.exists()


def test_keys_lists_every_key_with_type_default_rule_and_help(capsys):
    listing = printed(capsys, "--keys")
    expected = _leaf_keys(to_dict(Config()))
    docs = config_keys()
    assert [d.key for d in docs] == expected, "every leaf key, in declaration order"
    assert listing == format_keys(docs) + "\n"
    lines = listing.splitlines()
    assert len(lines) == 2 * len(expected)
    assert all(d.default == _section(d.key) for d in docs), "each default is the dataclass default"
    heading = lines.index("train.segment_length: int = 10 (at least 1)")
    assert lines[heading + 1].startswith("    steps per stream per update (T)")
    assert "agent.learning: str = rtrl (one of rtrl, tbptt, snap1, uoro, kfrtrl, none)" in lines
    assert "train.gamma: float = 0.99 (in [0, 1])" in lines and "train.lr: float = 0.003 (above 0)" in lines
    assert "train.device: str = cpu (auto, cpu, cuda or cuda:N)" in lines
    assert "stream.sparse_init: float = 0.9 (in [0, 1))" in lines
    assert "env.options: dict = {delay: 40, num_symbols: 4, distractors: true}" in lines
    assert "run_dir: str = ''" in lines
    assert all(d.help for d in docs), [d.key for d in docs if not d.help]


def _leaf_keys(data: dict, prefix: str = "") -> list[str]:
    """Dotted keys of the default config's leaves (a dict value such as env.options is a leaf)."""
    keys = []
    for key, value in data.items():
        inner = isinstance(value, dict) and dataclasses.is_dataclass(_section(prefix + key))
        keys += _leaf_keys(value, f"{prefix}{key}.") if inner else [prefix + key]
    return keys


def _section(dotted: str):
    node = Config()
    for part in dotted.split("."):
        node = getattr(node, part, None)
    return node


@dataclass
class Inner:
    """A section declared as rtrl_rl/config/sections.py declares them (``_doc``/``_choice`` write this metadata)."""

    depth: int = dataclasses.field(default=3, metadata={"help": "how deep", "at_least": 1, "at_most": 9})
    mode: str = dataclasses.field(default="a", metadata={"help": "which mode", "choices": ("a", "b")})


@dataclass
class Outer:
    inner: Inner = dataclasses.field(default_factory=Inner)
    rate: float = dataclasses.field(default=0.5, metadata={"help": "how fast", "above": 0, "rule": "a power of two"})


def test_keys_come_from_the_dataclass_metadata_not_a_list():
    assert format_keys(config_keys(Outer)).splitlines() == [
        "inner.depth: int = 3 (in [1, 9])", "    how deep",
        "inner.mode: str = a (one of a, b)", "    which mode",
        "rate: float = 0.5 (above 0, a power of two)", "    how fast",
    ]


def test_keys_takes_no_config_or_overrides(capsys):
    assert main(["config", "--keys", "train.seed=1"]) == 2
    assert "pass it alone" in capsys.readouterr().err
