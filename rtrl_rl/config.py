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


def _doc(default: Any, help: str, *, at_least: float | None = None, above: float | None = None,
         at_most: float | None = None, check: Any = None) -> Any:
    """A documented field; ``at_least``/``above``/``at_most`` bound a number, ``check(value)``
    returns an error text for other rules (see :func:`_check_value`)."""
    meta = {"help": help, "at_least": at_least, "above": above, "at_most": at_most, "check": check}
    meta = {k: v for k, v in meta.items() if v is not None}
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


def _device_problem(name: str) -> str | None:
    """Why ``name`` is not a device spelling (auto, cpu, cuda, cuda:N), or None."""
    if name in ("auto", "cpu", "cuda") or (name.startswith("cuda:") and name[5:].isdigit()):
        return None
    return "must be auto, cpu, cuda or cuda:N"


@dataclass
class EnvConfig:
    """Which environment to train on (see ``docs/envs.md`` for the spec grammar)."""

    id: str = _doc("memory:recall", "environment spec, e.g. memory:recall, atari:Pong, procgen:coinrun")
    num_envs: int = _doc(128, "parallel environment streams (each keeps its own RTRL carry)", at_least=1)
    options: dict = _doc(
        {"delay": 40, "num_symbols": 4, "distractors": True},
        "keyword options passed to rtrl_rl.envs.make_vector for this suite",
    )
    imports: list = _doc([], "modules to import first (they register custom gymnasium ids)")


@dataclass
class AgentConfig:
    """The model: encoder -> recurrent core -> policy and value heads."""

    core: str = _choice("elstm", ("elstm", "mingru", "lru", "rtu", "rtu_nonlinear", "lstm", "rnn", "gru", "none"),
                        "recurrent core; none = feed-forward")
    core_layers: int = _doc(1, "layers of the core; > 1 stacks them (per-layer RTRL, inter-layer gradient "
                               "at the same step only: docs/cores.md)")
    learning: str = _choice("rtrl", ("rtrl", "tbptt", "snap1", "uoro", "kfrtrl", "none"),
                            "how the core is trained; snap1/uoro/kfrtrl: approximate RTRL for the dense "
                            "cores (rnn, gru, lstm); none = feed-forward")
    hidden_size: int = _doc(64, "units of the recurrent core", at_least=1)
    encoder: str = _choice(
        "auto", ("auto", "mlp", "impala", "identity", "popgym"), "observation encoder; auto: impala for images, "
        "mlp otherwise; popgym: POPGym's Linear, LayerNorm, Linear + LeakyReLU over the obs and the extras below"
    )
    encoder_size: int = _doc(64, "output width of the mlp and popgym encoders (impala's is always 256)", at_least=1)
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
    input_mixer: bool = _doc(
        False,
        "pass the core's input [obs ; prev reward ; prev action ; start flag] through ReLU(Linear) of "
        "encoder_size first, so a linear-recurrent core (lru, rtu) can store an input gated by the others",
    )
    heads: str = _choice("linear", ("linear", "popgym"), "linear: one layer each; popgym: separate actor and "
                         "critic MLPs (2 x encoder_size, LeakyReLU) with final layers at std 0.01")
    ring_r_min: float = _doc(0.9, "lru/rtu ring init: smallest |λ| (Orvieto et al.; RTU: 0)", at_least=0, at_most=1)
    ring_r_max: float = _doc(0.999, "lru/rtu ring init: largest |λ| (RTU: 1)", at_least=0, at_most=1)
    core_norm: bool = _doc(False, "LayerNorm (no learned parameters) on the core's output before the policy and "
                                  "value heads: bounds what the heads see when a recurrence's state grows large")
    value_norm: bool = _doc(False, "the same LayerNorm before the value head only (docs/agent.md: why)")
    algorithm: str = _choice(
        "segment", ("segment", "stream"),
        "segment: V-trace on segments of many streams; stream: stream AC(lambda), one update per step "
        "(settings under stream.*, docs/stream.md)",
    )


@dataclass
class TrainConfig:
    """The learning algorithm: V-trace actor-critic on segments of the stream."""

    total_steps: int = _doc(3_000_000, "environment steps (summed over streams) to train for", at_least=0)
    segment_length: int = _doc(10, "steps per stream per update (T); T=1 is fully online", at_least=1)
    seed: int = _doc(0, "seed of parameters, environments and action sampling")
    gamma: float = _doc(0.99, "discount", at_least=0, at_most=1)
    entropy_cost: float = _doc(0.01, "weight of the entropy bonus", at_least=0)
    entropy_decay: bool = _doc(False, "decay entropy_cost linearly to 0 over total_steps")
    baseline_cost: float = _doc(0.5, "weight of the value loss", at_least=0)
    optimizer: str = _choice("adam", ("adam", "rmsprop"), "optimizer")
    lr: float = _doc(3e-3, "learning rate", above=0)
    lr_decay: bool = _doc(False, "decay the learning rate linearly to 0 over total_steps")
    recurrent_lr_scale: float = _doc(1.0, "lr factor of the cores' recurrent parameters (param_groups.py)", above=0)
    rmsprop_alpha: float = _doc(0.99, "RMSprop smoothing constant (IMPALA: 0.99)", at_least=0, at_most=1)
    rmsprop_eps: float = _doc(0.01, "RMSprop epsilon (IMPALA: 0.01; needs loss_reduction=sum)", at_least=0)
    adam_eps: float = _doc(1e-8, "Adam epsilon", at_least=0)
    max_grad_norm: float = _doc(40.0, "clip the global gradient norm to this value; 0 = no clipping", at_least=0)
    reward_clip: float = _doc(0.0, "clip rewards to [-c, c] in the loss and the core input; 0 = off", at_least=0)
    truncation_bootstrap: bool = _doc(True, "a truncated episode's last target adds the value of its final obs (a "
                                      "time limit outside the task); false: it ends there, as a game of fixed length")
    life_loss: bool = _doc(
        False, "Atari: end the value chain at a lost life (the episode and the core state go on)"
    )
    loss_reduction: str = _choice(
        "mean", ("mean", "sum"), "reduce the loss over time and batch (IMPALA sums; pair sum with RMSprop)"
    )
    device: str = _doc(
        "cpu", "learner device of both trainers: cpu, cuda, cuda:N, or auto (CUDA when available, else "
        "the CPU); acting and evaluation always run on the CPU", check=_device_problem,
    )
    threads: int = _doc(
        1, "torch threads of the training process; 0 = torch's default (small models run best on 1)", at_least=0
    )
    target_success: float = _doc(
        0.95, "stop once greedy evaluation reaches this success rate (tasks that report success); 0 = never",
        at_least=0, at_most=1,
    )


@dataclass
class RuntimeConfig:
    """How acting and learning are scheduled."""

    actors: int = _doc(0, "actor processes; 0 runs the synchronous trainer in one process", at_least=0)
    restart_actors: bool = _doc(False, "restart a crashed actor instead of stopping the run")
    slots: int = _doc(0, "shared-memory rollout slots; 0 = 2 per actor plus 2", at_least=0)
    checkpoint_every_s: float = _doc(300.0, "seconds between checkpoints", at_least=0)
    keep_checkpoints: int = _doc(3, "how many recent checkpoints to keep (the best is kept too)", at_least=1)
    step_timeout_s: float = _doc(
        120.0, "seconds one step (or reset) of the environment may take before the run counts it as hung "
        "and stops with a checkpoint; 0 = never", at_least=0,
    )
    backend: str = _choice(
        "local", ("local", "ray"), "actors as local processes, or as Ray actors (see docs/distributed.md)"
    )
    ray_address: str = _doc("", "ray backend: cluster to join (auto or host:port); empty starts a local Ray instance")
    ray_actor_resources: dict = _doc({"num_cpus": 1}, "ray backend: Ray resources of each actor, e.g. {num_cpus: 1}")
    ray_learner_resources: dict = _doc(
        {}, "ray backend: empty runs the learner in this process; else in a Ray actor with these resources, "
            "e.g. {num_gpus: 1}"
    )


@dataclass
class LogConfig:
    """What is reported while training."""

    progress: bool = _doc(True, "live progress on the terminal")
    tensorboard: bool = _doc(True, "write TensorBoard event files into run_dir")
    interval_s: float = _doc(2.0, "seconds between progress and log updates", at_least=0)
    eval_episodes: int = _doc(256, "greedy evaluation episodes per evaluation; 0 = none", at_least=0)
    eval_interval_steps: int = _doc(
        200_000, "environment steps between evaluations (and at the end)", at_least=1
    )


@dataclass
class StreamConfig:
    """Streaming actor-critic, stream AC(lambda) (agent.algorithm=stream; docs/stream.md)."""

    lr: float = _doc(1.0, "ObGD step size alpha (bounded per step by kappa)")
    trace_lambda: float = _doc(0.8, "eligibility-trace decay lambda (traces decay by gamma * lambda)")
    kappa_value: float = _doc(2.0, "ObGD bound of the value update")
    kappa_policy: float = _doc(3.0, "ObGD bound of the policy update")
    entropy_cost: float = _doc(0.01, "entropy weight tau, signed by the TD error")
    sparse_init: float = _doc(0.9, "fraction of each unit's input weights set to 0 at init; 0 = dense init")
    layer_norm: bool = _doc(True, "LayerNorm (no affine) on the encoder and core outputs")
    obs_norm: bool = _doc(True, "normalise float Box observations by their running mean and std")
    reward_scale: bool = _doc(True, "divide rewards by the running std of the discounted return")


@dataclass
class Config:
    """A whole run. ``run_dir`` empty means ``runs/<env>-<timestamp>``."""

    env: EnvConfig = field(default_factory=EnvConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    log: LogConfig = field(default_factory=LogConfig)
    stream: StreamConfig = field(default_factory=StreamConfig)
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
    problem = _check_value(value, meta)
    if problem:
        raise ConfigError(f"config key '{key}' {problem}, got {value!r}")
    return value


# --------------------------------------------------------------------------- value rules


def _check_value(value: Any, meta: dict) -> str | None:
    """What is wrong with ``value`` by the field's rules (bounds, ``check``), or None.

    Written as ``not value >= bound`` so that NaN fails every bound.
    """
    if "at_least" in meta and not value >= meta["at_least"]:
        return f"must be >= {meta['at_least']:g}"
    if "above" in meta and not value > meta["above"]:
        return f"must be > {meta['above']:g}"
    if "at_most" in meta and not value <= meta["at_most"]:
        return f"must be <= {meta['at_most']:g}"
    return meta["check"](value) if "check" in meta else None


#: keys that no longer exist -> what replaced them. A source naming one is refused unless a
#: later source sets the replacement (so a resumed run's stored config can be continued by
#: naming the new key on the command line).
REMOVED_KEYS = {
    "runtime.device": "train.device",
}


def _removed_keys(data: dict, prefix: str = "") -> list[str]:
    """The dotted keys of ``data`` listed in REMOVED_KEYS."""
    found = []
    for key, value in data.items():
        path = f"{prefix}{key}"
        if path in REMOVED_KEYS:
            found.append(path)
        elif isinstance(value, dict):
            found += _removed_keys(value, path + ".")
    return found


def _without(data: dict, dotted: str) -> dict:
    """A copy of ``data`` without the dotted key ``dotted``."""
    head, _, rest = dotted.partition(".")
    if head not in data:
        return data
    if not rest:
        return {k: v for k, v in data.items() if k != head}
    inner = data[head]
    return {**data, head: _without(inner, rest) if isinstance(inner, dict) else inner}


def _sets(data: dict, dotted: str) -> bool:
    """Whether ``data`` holds the dotted key ``dotted``."""
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _drop_removed(sources: tuple[dict, ...]) -> list[dict]:
    """``sources`` without removed keys; ConfigError for one whose replacement no later source sets."""
    kept = []
    for i, data in enumerate(sources):
        for key in _removed_keys(data) if isinstance(data, dict) else []:
            new = REMOVED_KEYS[key]
            if not any(isinstance(later, dict) and _sets(later, new) for later in sources[i + 1:]):
                raise ConfigError(
                    f"config key '{key}' was removed: '{new}' replaces it (see its help in docs/configs.md); "
                    f"move the value there, or pass {new}=... on the command line (e.g. when resuming "
                    f"a run whose stored config still names '{key}')"
                )
            data = _without(data, key)
        kept.append(data)
    return kept


def validate(config: Config) -> None:
    """Rules that involve more than one key (each key's own rules apply as it is merged)."""
    actors, streams = config.runtime.actors, config.env.num_envs
    if actors > 0 and streams % actors:
        raise ConfigError(
            f"config key 'env.num_envs' ({streams}) must be a multiple of 'runtime.actors' ({actors}): "
            "each actor runs the same number of streams"
        )


def resolve_device(name: str) -> str:
    """The torch device that the ``train.device`` value ``name`` means on this machine.

    ``auto`` is ``cuda`` when CUDA is available, else ``cpu``. Raises ConfigError for a
    spelling other than auto, cpu, cuda, cuda:N, or a CUDA device this machine lacks, so a
    run never trains silently on another device than the one asked for.
    """
    problem = _device_problem(name)
    if problem:
        raise ConfigError(f"config key 'train.device' {problem}, got {name!r}")
    import torch  # here, not at the top: reading configs stays cheap

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"train.device={name}, but CUDA is not available on this machine; "
                              "use train.device=cpu or auto")
        index = int(name[5:] or 0)
        if index >= torch.cuda.device_count():
            raise ConfigError(f"train.device={name}, but this machine has {torch.cuda.device_count()} "
                              "CUDA device(s)")
    return name


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
    changes one option and keeps the rest. Every value is checked against its key's rules
    (type, choices, bounds), and a key that was removed names its replacement.
    """
    config = Config()
    for data in _drop_removed(sources):
        env = data.get("env") if isinstance(data, dict) else None
        if isinstance(env, dict) and "id" in env and env["id"] != config.env.id:
            config.env.options = {}
        _merge(config, data, "")
    validate(config)
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
