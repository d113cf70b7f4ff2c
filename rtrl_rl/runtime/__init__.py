"""The actor-learner runtime: actor processes fill shared-memory slots, one learner trains.

See ``docs/runtime.md``. ``train_with_actors(config)`` is what ``rtrl-rl train`` runs when
``runtime.actors > 0``; :func:`train_run` picks the trainer a config asks for. The heavy
modules load on first use, so importing this package (e.g. for :class:`ActorFailure`) stays
cheap.
"""

from __future__ import annotations


class ActorFailure(RuntimeError):
    """An actor (or its environment) crashed and the run cannot go on.

    :attr:`failure` is what ``summary.json`` records under ``failure``: the actor, its
    generation, the environment spec, and the exception the actor raised (``type``,
    ``message``) or how its process ended (``ended``). See :func:`describe_failure`.
    """

    #: the run's ``stopped`` reason in summary.json
    reason = "interrupted (actor failure)"

    def __init__(self, message: str, failure: dict | None = None) -> None:
        super().__init__(message)
        self.failure = dict(failure or {})


def describe_failure(actor: int, generation: int, env: str, error_type: str | None = None,
                     message: str = "", ended: str = "") -> tuple[str, dict]:
    """The headline of an actor's failure and its record for ``summary.json``.

    With the exception the actor raised (``error_type``, ``message``):
    ``actor 0 (generation 0) failed in env SPEC: RuntimeError: what it said (exit code 1)``;
    without one (the process was killed, or the node lost): ``actor 0 (generation 0) died in
    env SPEC: killed by SIGKILL``. Both backends word it the same way.
    """
    record = {"actor": actor, "generation": generation, "env": env}
    if error_type:
        first = (message.strip().splitlines() or [""])[0]
        record.update(type=error_type, message=message.strip())
        headline = f"actor {actor} (generation {generation}) failed in env {env}: {error_type}: {first}"
        headline += f" ({ended})" if ended else ""
    else:
        headline = f"actor {actor} (generation {generation}) died in env {env}: {ended or 'no report'}"
    if ended:
        record["ended"] = ended
    return headline, record


def train_with_actors(config, resume_from: str | None = None) -> dict:
    """Train with actors: processes (:func:`rtrl_rl.runtime.local_backend.train_with_actors`) or, with
    ``runtime.backend=ray``, Ray actors (:func:`rtrl_rl.runtime.ray_backend.train_with_ray`)."""
    if config.runtime.backend == "ray":
        from rtrl_rl.runtime.ray_backend import train_with_ray

        return train_with_ray(config, resume_from=resume_from)
    from rtrl_rl.runtime.local_backend import train_with_actors as run

    return run(config, resume_from=resume_from)


def train_run(config, resume_from: str | None = None) -> dict:
    """Train with the trainer ``config`` asks for and return the run summary: stream AC(λ)
    for ``agent.algorithm=stream``, actors for ``runtime.actors > 0`` or the Ray backend, else
    the synchronous trainer. What ``rtrl-rl train`` runs, and every experiment's training cell."""
    if config.agent.algorithm == "stream":
        from rtrl_rl.training.stream_trainer import train_stream

        return train_stream(config, resume_from=resume_from)
    if config.runtime.actors > 0 or config.runtime.backend == "ray":
        return train_with_actors(config, resume_from=resume_from)
    from rtrl_rl.training.sync_trainer import train

    return train(config, resume_from=resume_from)


__all__ = ["ActorFailure", "describe_failure", "train_run", "train_with_actors"]
