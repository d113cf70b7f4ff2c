"""The config rules that involve more than one key, and what a resume may change.

Each key's own rules (type, choices, bounds, checks) are declared beside its field in
:mod:`rtrl_rl.config.sections`; every rule that reads several keys is here, in
:data:`CROSS_KEY_RULES`, together with the keys that were removed (:data:`REMOVED_KEYS`)
and the refusal of a change that a resume cannot honour (:func:`refuse_changes`). A broken
rule raises :class:`ConfigError` naming the key, so no component checks a key again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rtrl_rl.config.reader import ConfigError, coerce, field_type, leaves
from rtrl_rl.config.sections import APPROXIMATE_LEARNING, DENSE_CORES, Config

#: keys that no longer exist -> what replaced them. A source naming one is refused unless a
#: later source sets the replacement (so a resumed run's stored config can be continued by
#: naming the new key on the command line).
REMOVED_KEYS = {
    "runtime.device": "train.device",
}


#: the suites whose ids gymnasium's registry resolves, so ``env.imports`` can register them
IMPORT_SUITES = ("gym", "popgym", "minigrid")


def check_env_imports(config: Config) -> None:
    """Raise ConfigError when ``env.imports`` goes with a suite that takes none.

    Checked where the environment is built rather than with the other rules, so that a
    stored config is read whole first and the trust check (``rtrl_rl.run.trust``) names what
    it would import.
    """
    suite = config.env.id.partition(":")[0]
    if config.env.imports and suite not in IMPORT_SUITES:
        raise ConfigError(
            f"config key 'env.imports' ({config.env.imports}) registers gymnasium ids before a "
            f"{', '.join(s + ':' for s in IMPORT_SUITES)} env is made; env.id={config.env.id} takes none "
            "(an entry point module:Class or file.py:Class names its own code): leave env.imports out"
        )


def _streams_per_actor(config: Config) -> str | None:
    actors, streams = config.runtime.actors, config.env.num_envs
    if actors > 0 and streams % actors:
        return (f"config key 'env.num_envs' ({streams}) must be a multiple of 'runtime.actors' ({actors}): "
                "each actor runs the same number of streams")
    return None


def _stream_in_one_process(config: Config) -> str | None:
    runtime = config.runtime
    if config.agent.algorithm == "stream" and (runtime.actors > 0 or runtime.backend != "local"):
        return (f"config key 'runtime.actors' ({runtime.actors}, backend {runtime.backend}): agent.algorithm=stream "
                "runs in one process: set runtime.actors=0 (and runtime.backend=local)")
    return None


def _stream_on_the_cpu(config: Config) -> str | None:
    if config.agent.algorithm == "stream" and config.train.device not in ("cpu", "auto"):
        return (f"config key 'train.device' ({config.train.device}): agent.algorithm=stream runs on the CPU: "
                "set train.device=cpu")
    return None


def _ppo_minibatches_of_streams(config: Config) -> str | None:
    """PPO's minibatches split the streams of a batch (every stream's segment), never time."""
    ppo, streams, length = config.ppo, config.env.num_envs, config.train.segment_length
    if config.agent.algorithm != "ppo":
        return None
    if ppo.minibatches > streams:
        return (f"config key 'ppo.minibatches' ({ppo.minibatches}) must be at most 'env.num_envs' ({streams}): "
                "minibatches split the streams (never time)")
    if ppo.norm_advantages and length * (streams // ppo.minibatches) < 2:
        return ("config key 'ppo.norm_advantages' needs minibatches of 2 steps or more (train.segment_length x "
                "env.num_envs / ppo.minibatches): use fewer minibatches or ppo.norm_advantages=false")
    return None


def _ray_needs_actors(config: Config) -> str | None:
    if config.runtime.backend == "ray" and config.runtime.actors < 1:
        return (f"config key 'runtime.actors' is {config.runtime.actors}, but runtime.backend=ray needs "
                "runtime.actors >= 1 (the number of Ray actors)")
    return None


def _learning_fits_the_core(config: Config) -> str | None:
    """The approximations of RTRL are for the dense cores, KF-RTRL not for the GRU, and a
    stack's layers learn by rtrl or tbptt (the feed-forward core takes any rule: it has none)."""
    core, learning, layers = config.agent.core, config.agent.learning, config.agent.core_layers
    if core == "none" or learning not in APPROXIMATE_LEARNING:
        return None
    if core not in DENSE_CORES:
        return (f"config key 'agent.learning' ({learning}) approximates RTRL for the dense cores "
                f"({', '.join(DENSE_CORES)}); agent.core={core} learns by exact 'rtrl' or 'tbptt'")
    if learning == "kfrtrl" and core == "gru":
        return ("config key 'agent.learning' (kfrtrl) does not apply to agent.core=gru: its candidate gate reads "
                "r * (W_hh h + b_hh), so one step's influence is not a single Kronecker product (KF-RTRL "
                "covers rnn and lstm); use uoro or snap1 for the gru")
    if layers > 1:
        return (f"config key 'agent.core_layers' ({layers}) stacks cores that learn by 'rtrl' or 'tbptt'; "
                f"agent.learning={learning} is for a single layer")
    return None


#: the rules that involve more than one key (each key's own rules apply as it is merged),
#: each ``config -> error text or None``, checked in this order
CROSS_KEY_RULES: tuple[Callable[[Config], str | None], ...] = (
    _streams_per_actor, _stream_in_one_process, _stream_on_the_cpu, _ray_needs_actors, _learning_fits_the_core,
    _ppo_minibatches_of_streams,
)


def validate(config: Config) -> None:
    """Raise :class:`ConfigError` for the first of :data:`CROSS_KEY_RULES` that ``config`` breaks."""
    for rule in CROSS_KEY_RULES:
        problem = rule(config)
        if problem:
            raise ConfigError(problem)


def check(config: Config) -> None:
    """Every config rule on a whole ``config``, also one built or changed in code
    (:func:`~rtrl_rl.config.build.build_config` applies them as it merges): each key's,
    then :data:`CROSS_KEY_RULES`."""
    for key, value, meta, section in leaves(config):
        coerce(key, value, field_type(type(section), key.rsplit(".", 1)[-1]), meta)
    validate(config)


def _why_fixed(meta: dict, section: Any, old: Any, new: Any) -> str | None:
    """Why a resume cannot change a key from ``old`` to ``new`` (its field's ``fixed``, else its
    section's ``fixed_on_resume``), or None if it can."""
    rule = meta.get("fixed", getattr(section, "fixed_on_resume", None))
    return rule(old, new) if callable(rule) else (rule or None)


def refuse_changes(stored: Config, new: Config) -> None:
    """Raise :class:`ConfigError` naming the first key that differs between a resumed run's
    ``stored`` config and the ``new`` one although a resume cannot honour the change."""
    for (key, old, meta, section), (_, value, _, _) in zip(leaves(stored), leaves(new)):
        if old != value and (why := _why_fixed(meta, section, old, value)):
            raise ConfigError(f"config key '{key}' cannot change on resume ({old!r} -> {value!r}): {why}. "
                              f"Leave it out, or start a new run (another run_dir) to change it")
