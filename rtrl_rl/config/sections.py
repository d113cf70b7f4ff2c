"""The config's sections: one typed dataclass per section, one field per key.

The dataclass defaults *are* the embedded default run (``configs/default.yaml`` mirrors
them, and a test keeps the two equal). Each field declares its key's help and its own
rules beside it: choices, bounds and other checks of that one key, whether a resume may
change it (``fixed``) and whether its value names code to import (``names_code``). The
rules that involve several keys are in :mod:`rtrl_rl.config.rules`; how files and
overrides are read into these dataclasses is :mod:`rtrl_rl.config.reader`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

#: ``fixed`` for a key that a resume may change although its whole section is fixed
CHANGEABLE = False
#: ``fixed`` for a key that sets only the initial parameters
INITIAL_ONLY = "it only sets the initial parameters, which the saved ones replace"


def _doc(default: Any, help: str, *, choices: tuple | None = None, at_least: float | None = None,
         above: float | None = None, at_most: float | None = None, below: float | None = None,
         check: Callable[[Any], str | None] | None = None, rule: str | None = None, merge: bool | None = None,
         fixed: str | Callable[[Any, Any], str | None] | bool | None = None, names_code: Any = None) -> Any:
    """A documented field and its rules (:mod:`rtrl_rl.config.reader` applies the first ones).

    ``choices``: the values allowed; ``at_least``/``above``/``at_most``/``below`` bound a
    number; ``check(value)`` returns an error text for other rules, which ``rule`` says in words
    (``rtrl-rl config --keys`` shows it); ``merge``: a mapping that
    later sources update entry by entry. ``fixed``: why a resume cannot change the key, or
    ``(old, new) -> why or None``, or :data:`CHANGEABLE` inside a fixed section (default:
    the section's ``fixed_on_resume``). ``names_code``: ``value -> bool``, whether the value
    names code that building the run imports (a mapping: such a test per entry).
    """
    meta = {"help": help, "choices": choices, "at_least": at_least, "above": above, "at_most": at_most,
            "below": below, "check": check, "rule": rule, "merge": merge, "fixed": fixed, "names_code": names_code}
    meta = {k: v for k, v in meta.items() if v is not None}
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


def _choice(default: Any, choices: tuple, help: str, **rules: Any) -> Any:
    """A documented field whose value is one of ``choices`` (``rules`` as in :func:`_doc`)."""
    return _doc(default, help, choices=choices, **rules)


def device_problem(name: str) -> str | None:
    """Why ``name`` is not a device spelling (auto, cpu, cuda, cuda:N), or None."""
    if name in ("auto", "cpu", "cuda") or (name.startswith("cuda:") and name[5:].isdigit()):
        return None
    return "must be auto, cpu, cuda or cuda:N"


#: what :func:`_ray_resources_problem` accepts, in words
RAY_RESOURCES_RULE = "amounts >= 0 by resource name; resources: {custom: amount}; accelerator_type: a name"


def _ray_resources_problem(resources: dict) -> str | None:
    """Why ``resources`` is not a Ray resources mapping (``{num_cpus: 1, gpu_node: 0.5}``,
    ``resources: {...}`` for custom ones, ``accelerator_type: A100``), or None."""
    entries = [(k, v) for k, v in resources.items() if k not in ("resources", "accelerator_type")]
    custom = resources.get("resources", {})
    if not isinstance(custom, dict):
        return f"entry resources must be a mapping of custom resources, not {custom!r}"
    for name, amount in entries + list(custom.items()):
        if not isinstance(amount, (int, float)) or isinstance(amount, bool) or not amount >= 0:
            return f"entry {name} must be a number >= 0 (a Ray resource amount), not {amount!r}"
    return None


#: the DMLab module a dmlab: spec imports unless its options name another
DEFAULT_DMLAB_MODULE = "deepmind_lab"


def _entry_point(spec: str) -> bool:
    """Whether the env spec ``spec`` is an entry point (``file.py:Class``, ``package.module:Class``).
    Parsing imports nothing; a spec no suite knows is left to the env builder's error."""
    from rtrl_rl.envs.spec import ENTRY_POINT, parse_spec  # here, not at the top: reading configs stays cheap

    try:
        return parse_spec(spec).suite == ENTRY_POINT
    except ValueError:
        return False


#: the ``env.options`` entries that name code: a module list to import, a DMLab build folder,
#: a DMLab module other than the default
CODE_OPTIONS: dict[str, Callable[[Any], bool]] = {
    "imports": bool, "dmlab_path": bool, "dmlab_module": lambda module: module != DEFAULT_DMLAB_MODULE,
}
#: why a resume cannot change the model's keys
ARCHITECTURE = "the saved parameters have the stored model's architecture and sizes"
#: the learning rules that train the same parameters (for every core they apply to)
RECURRENT_LEARNING = ("rtrl", "tbptt", "snap1", "uoro", "kfrtrl")
#: the dense cores (rnn, gru, lstm) and the approximations of RTRL only they learn by
DENSE_CORES = ("rnn", "gru", "lstm")
APPROXIMATE_LEARNING = ("snap1", "uoro", "kfrtrl")


def _learning_change(old: str, new: str) -> str | None:
    """Why a resume cannot switch ``agent.learning`` from ``old`` to ``new``, or None: every
    recurrent rule trains the same parameters (carries restart on resume anyway)."""
    return None if {old, new} <= set(RECURRENT_LEARNING) else ARCHITECTURE


@dataclass
class EnvConfig:
    """Which environment to train on (see ``docs/envs.md`` for the spec grammar)."""

    id: str = _doc("memory:recall", "environment spec, e.g. memory:recall, atari:Pong, procgen:coinrun",
                   fixed="the agent was trained on that environment and its spaces", names_code=_entry_point)
    num_envs: int = _doc(128, "parallel environment streams (each keeps its own RTRL carry)", at_least=1)
    options: dict = _doc(
        {"delay": 40, "num_symbols": 4, "distractors": True},
        "keyword options passed to rtrl_rl.envs.make_vector for this suite", merge=True, names_code=CODE_OPTIONS,
    )
    imports: list = _doc([], "modules to import first (they register custom gymnasium ids); gym:, popgym: "
                             "and minigrid: ids only", names_code=bool)


@dataclass
class AgentConfig:
    """The model: encoder -> recurrent core -> policy and value heads."""

    #: a resume keeps the model: its keys cannot change unless their field says so
    fixed_on_resume: ClassVar[str] = ARCHITECTURE

    core: str = _choice("elstm", ("elstm", "mingru", "lru", "rtu", "rtu_nonlinear", "lstm", "rnn", "gru", "none"),
                        "recurrent core; none = feed-forward")
    core_layers: int = _doc(1, "layers of the core; > 1 stacks them (per-layer RTRL, inter-layer gradient "
                               "at the same step only: docs/cores.md)", at_least=1)
    learning: str = _choice("rtrl", ("rtrl", "tbptt", "snap1", "uoro", "kfrtrl", "none"),
                            "how the core is trained; snap1/uoro/kfrtrl: approximate RTRL for the dense "
                            "cores (rnn, gru, lstm); none = feed-forward", fixed=_learning_change)
    hidden_size: int = _doc(64, "units of the recurrent core", at_least=1)
    encoder: str = _choice(
        "auto", ("auto", "mlp", "impala", "minatar", "identity", "popgym"),
        "observation encoder; auto: minatar for boolean (H, W, C) grids (MinAtar's network: conv 3x3 of 16, "
        "then 128 units), impala for other images, mlp otherwise; popgym: POPGym's Linear, LayerNorm, "
        "Linear + LeakyReLU over the obs and the extras below",
    )
    encoder_size: int = _doc(64, "output width of the mlp and popgym encoders (impala's is 256, minatar's 128)",
                             at_least=1)
    encoder_grad: str = _choice("step", ("step", "segment"), "encoder gradient through the core: same-step only, "
                                "or backprop inside the segment (the reference's; the suite configs keep it)",
                                fixed=CHANGEABLE)
    encoder_precision: str = _choice(
        "float32", ("float32", "bfloat16"),
        "encoder arithmetic; bfloat16 runs it under torch.autocast (faster where the hardware has bf16: "
        "GPUs, CPUs with AVX-512 BF16 or AMX); the core, its RTRL and the heads stay float32", fixed=CHANGEABLE)
    forget_bias: float = _doc(3.0, "initial forget-gate bias: sigma(3)=0.95 keeps memory alive at init",
                              fixed=INITIAL_ONLY)
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
    ring_r_min: float = _doc(0.9, "lru/rtu ring init: smallest |λ| (Orvieto et al.; RTU: 0)", at_least=0, at_most=1,
                             fixed=INITIAL_ONLY)
    ring_r_max: float = _doc(0.999, "lru/rtu ring init: largest |λ| (RTU: 1)", at_least=0, at_most=1,
                             fixed=INITIAL_ONLY)
    core_norm: bool = _doc(False, "LayerNorm (no learned parameters) on the core's output before the policy and "
                                  "value heads: bounds what the heads see when a recurrence's state grows large")
    value_norm: bool = _doc(False, "the same LayerNorm before the value head only (docs/agent.md: why)")
    algorithm: str = _choice(
        "segment", ("segment", "ppo", "stream"),
        "segment: V-trace on segments of many streams, one update per segment; ppo: PPO epochs and "
        "minibatches over each segment (settings under ppo.*, docs/ppo.md); stream: stream AC(lambda), "
        "one update per step (settings under stream.*, docs/stream.md)",
        fixed="the saved learner state (e.g. PPO's minibatch generator) belongs to the stored algorithm",
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
    optimizer: str = _choice("adam", ("adam", "rmsprop"), "optimizer",
                             fixed="the saved optimizer state (its moment estimates) belongs to the stored optimizer")
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
        "the CPU); acting and evaluation always run on the CPU", check=device_problem,
        rule="auto, cpu, cuda or cuda:N",
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
    ray_actor_resources: dict = _doc({"num_cpus": 1}, "ray backend: Ray resources of each actor, e.g. {num_cpus: 1}",
                                     check=_ray_resources_problem, rule=RAY_RESOURCES_RULE)
    ray_learner_resources: dict = _doc(
        {}, "ray backend: empty runs the learner in this process; else in a Ray actor with these resources, "
            "e.g. {num_gpus: 1}", check=_ray_resources_problem, rule=RAY_RESOURCES_RULE,
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

    lr: float = _doc(1.0, "ObGD step size alpha (bounded per step by kappa)", above=0)
    trace_lambda: float = _doc(0.8, "eligibility-trace decay lambda (traces decay by gamma * lambda)",
                               at_least=0, at_most=1)
    kappa_value: float = _doc(2.0, "ObGD bound of the value update")
    kappa_policy: float = _doc(3.0, "ObGD bound of the policy update")
    entropy_cost: float = _doc(0.01, "entropy weight tau, signed by the TD error")
    sparse_init: float = _doc(0.9, "fraction of each unit's input weights set to 0 at init; 0 = dense init",
                              at_least=0, below=1)
    layer_norm: bool = _doc(True, "LayerNorm (no affine) on the encoder and core outputs")
    obs_norm: bool = _doc(True, "normalise float Box observations by their running mean and std")
    reward_scale: bool = _doc(True, "divide rewards by the running std of the discounted return")


@dataclass
class PPOConfig:
    """PPO on segments (agent.algorithm=ppo; docs/ppo.md), CleanRL's recurrent-PPO defaults. Value and
    entropy weights and the gradient clip: train.baseline_cost, train.entropy_cost, train.max_grad_norm
    (CleanRL clips at 0.5, the library's default is 40)."""

    clip: float = _doc(0.1, "clip range epsilon of the probability ratio pi/mu", above=0)
    epochs: int = _doc(4, "passes over each batch (one segment of every stream)", at_least=1)
    minibatches: int = _doc(4, "minibatches per epoch: they split the streams (never time)", at_least=1)
    gae_lambda: float = _doc(0.95, "GAE lambda (the discount is train.gamma)", at_least=0, at_most=1)
    value_clip: float = _doc(0.1, "keep each value within this of the one GAE used; 0 = off", at_least=0)
    norm_advantages: bool = _doc(True, "normalise each minibatch's advantages to mean 0, std 1")
    target_kl: float = _doc(0.0, "end the epochs after one whose mean approx. KL exceeds this; 0 = never",
                            at_least=0)


@dataclass
class Config:
    """A whole run. ``run_dir`` empty means ``runs/<env>-<timestamp>``."""

    env: EnvConfig = field(default_factory=EnvConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    log: LogConfig = field(default_factory=LogConfig)
    stream: StreamConfig = field(default_factory=StreamConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    run_dir: str = _doc("", "where checkpoints, logs and the summary go; must not hold another run "
                            "(continue one with --resume)")
