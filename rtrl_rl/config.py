"""Run configuration: typed dataclasses, YAML files and dotted ``key=value`` overrides.

The dataclass defaults *are* the embedded default run (``configs/default.yaml`` mirrors
them, and a test keeps the two equal). A config file only lists what differs. Every key is
validated: an unknown key or a value of the wrong type raises :class:`ConfigError` naming
the key and the valid choices, so a typo never trains silently with a default.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A config file or override names an unknown key or holds a value of the wrong type."""


def _choice(default: Any, choices: tuple, help: str) -> Any:
    return field(default=default, metadata={"choices": choices, "help": help})


def _doc(default: Any, help: str) -> Any:
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass
class EnvConfig:
    """Which environment to train on (see ``docs/envs.md`` for the spec grammar)."""

    id: str = _doc("memory:recall", "environment spec, e.g. memory:recall, atari:Pong, procgen:coinrun")
    num_envs: int = _doc(128, "parallel environment streams (each keeps its own RTRL carry)")
    options: dict = _doc(
        {"delay": 40, "num_symbols": 4, "distractors": True},
        "keyword options passed to rtrl_rl.envs.make_vector for this suite",
    )
    imports: list = _doc([], "modules to import first (they register custom gymnasium ids)")


@dataclass
class AgentConfig:
    """The model: encoder -> recurrent core -> policy and value heads."""

    core: str = _choice("elstm", ("elstm", "mingru", "lstm", "none"), "recurrent core; none = feed-forward")
    learning: str = _choice("rtrl", ("rtrl", "tbptt", "none"), "how the core is trained; none = feed-forward")
    hidden_size: int = _doc(64, "units of the recurrent core")
    encoder: str = _choice(
        "auto", ("auto", "mlp", "impala", "identity"), "observation encoder; auto: impala for images, mlp otherwise"
    )
    encoder_size: int = _doc(64, "output width of the MLP encoder (the IMPALA encoder always outputs 256)")
    encoder_grad: str = _choice(
        "step",
        ("step", "segment"),
        "encoder gradient through the core: same-step only, or backprop inside the segment "
        "(the reference's; the suite configs keep it)",
    )
    encoder_precision: str = _choice(
        "float32",
        ("float32", "bfloat16"),
        "encoder arithmetic; bfloat16 runs it under torch.autocast (faster where the hardware has bf16: "
        "GPUs, CPUs with AVX-512 BF16 or AMX); the core, its RTRL and the heads stay float32",
    )
    forget_bias: float = _doc(3.0, "initial forget-gate bias: sigma(3)=0.95 keeps memory alive at init")
    prev_action: bool = _doc(True, "feed the previous action (one-hot) to the core")
    prev_reward: bool = _doc(True, "feed the previous (clipped) reward to the core")
    start_flag: bool = _doc(False, "feed 1 at the first step of an episode, else 0, to the core (POPGym's baselines do)")


@dataclass
class TrainConfig:
    """The learning algorithm: V-trace actor-critic on segments of the stream."""

    total_steps: int = _doc(3_000_000, "environment steps (summed over streams) to train for")
    segment_length: int = _doc(10, "steps per stream per update (T); T=1 is fully online")
    seed: int = _doc(0, "seed of parameters, environments and action sampling")
    gamma: float = _doc(0.99, "discount")
    entropy_cost: float = _doc(0.01, "weight of the entropy bonus")
    baseline_cost: float = _doc(0.5, "weight of the value loss")
    optimizer: str = _choice("adam", ("adam", "rmsprop"), "optimizer")
    lr: float = _doc(3e-3, "learning rate")
    lr_decay: bool = _doc(False, "decay the learning rate linearly to 0 over total_steps")
    rmsprop_alpha: float = _doc(0.99, "RMSprop smoothing constant (IMPALA: 0.99)")
    rmsprop_eps: float = _doc(0.01, "RMSprop epsilon (IMPALA: 0.01; needs loss_reduction=sum)")
    adam_eps: float = _doc(1e-8, "Adam epsilon")
    max_grad_norm: float = _doc(40.0, "clip the global gradient norm to this value")
    reward_clip: float = _doc(0.0, "clip rewards to [-c, c] in the loss and the core input; 0 = off")
    life_loss: bool = _doc(
        False, "Atari: end the value chain at a lost life (the episode and the core state go on)"
    )
    loss_reduction: str = _choice(
        "mean", ("mean", "sum"), "reduce the loss over time and batch (IMPALA sums; pair sum with RMSprop)"
    )
    device: str = _doc("cpu", "learner device: cpu, cuda or auto")
    threads: int = _doc(1, "torch threads of the training process; 0 = torch's default (small models run best on 1)")
    target_success: float = _doc(
        0.95, "stop once greedy evaluation reaches this success rate (tasks that report success); 0 = never"
    )


@dataclass
class RuntimeConfig:
    """How acting and learning are scheduled."""

    actors: int = _doc(0, "actor processes; 0 runs the synchronous trainer in one process")
    device: str = _doc("auto", "learner device for the process runtime: auto, cpu or cuda")
    restart_actors: bool = _doc(False, "restart a crashed actor instead of stopping the run")
    slots: int = _doc(0, "shared-memory rollout slots; 0 = 2 per actor plus 2")
    checkpoint_every_s: float = _doc(300.0, "seconds between checkpoints")
    keep_checkpoints: int = _doc(3, "how many recent checkpoints to keep (the best is kept too)")


@dataclass
class LogConfig:
    """What is reported while training."""

    progress: bool = _doc(True, "live progress on the terminal")
    tensorboard: bool = _doc(True, "write TensorBoard event files into run_dir")
    interval_s: float = _doc(2.0, "seconds between progress and log updates")
    eval_episodes: int = _doc(256, "greedy evaluation episodes per evaluation; 0 = none")
    eval_interval_steps: int = _doc(200_000, "environment steps between evaluations (and at the end)")


@dataclass
class Config:
    """A whole run. ``run_dir`` empty means ``runs/<env>-<timestamp>``."""

    env: EnvConfig = field(default_factory=EnvConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    log: LogConfig = field(default_factory=LogConfig)
    run_dir: str = _doc("", "where checkpoints, logs and the summary go; must not hold another run "
                            "(continue one with --resume)")


def _field_type(cls: type, name: str) -> Any:
    return typing.get_type_hints(cls)[name]


def _as_number(value: Any, annotation: Any) -> Any:
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


def _coerce(key: str, value: Any, annotation: Any, meta: dict) -> Any:
    """Check ``value`` against the field's type and choices; ints are accepted as floats."""
    value = _as_number(value, annotation)
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
    return value


def _merge(obj: Any, data: dict, prefix: str) -> None:
    """Write the nested mapping ``data`` into the dataclass ``obj``, validating each key."""
    fields = {f.name: f for f in dataclasses.fields(obj)}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if key not in fields:
            raise ConfigError(f"unknown config key '{path}'; valid keys here: {sorted(fields)}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"config key '{path}' is a section; give a mapping, got {value!r}")
            _merge(current, value, path + ".")
        elif isinstance(current, dict) and isinstance(value, dict) and key == "options":
            current.update(value)
        else:
            annotation = _field_type(type(obj), key)
            setattr(obj, key, _coerce(path, value, annotation, dict(fields[key].metadata)))


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


def build_config(*sources: dict) -> Config:
    """Merge mappings (file contents, then overrides) into a validated :class:`Config`.

    Suite options belong to their environment: when a source names another ``env.id``,
    the options collected so far are dropped before its own ``env.options`` (if any) apply.
    Otherwise ``env.options`` entries are merged key by key, so ``env.options.delay=10``
    changes one option and keeps the rest.
    """
    config = Config()
    for data in sources:
        env = data.get("env") if isinstance(data, dict) else None
        if isinstance(env, dict) and "id" in env and env["id"] != config.env.id:
            config.env.options = {}
        _merge(config, data, "")
    return config


def load_config(path: str | Path | None = None, overrides: list[str] = ()) -> Config:
    """The config of a run: defaults, then the file at ``path`` (if any), then overrides."""
    sources = [load_yaml(path)] if path else []
    sources += [parse_override(o) for o in overrides]
    return build_config(*sources)


def to_dict(config: Config) -> dict:
    """Plain nested mapping of a config, for YAML and checkpoints."""
    return dataclasses.asdict(config)


def save_config(config: Config, path: str | Path) -> None:
    """Write the resolved config as YAML (the file ``--config`` can read back)."""
    Path(path).write_text(yaml.safe_dump(to_dict(config), sort_keys=False))
