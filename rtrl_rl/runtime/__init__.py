"""The actor-learner runtime: actor processes fill shared-memory slots, one learner trains.

See ``docs/runtime.md``. ``train_with_actors(config)`` is what ``rtrl-rl train`` runs when
``runtime.actors > 0``. The heavy modules load on first use, so importing this package
(e.g. for :class:`ActorFailure`) stays cheap.
"""

from __future__ import annotations


class ActorFailure(RuntimeError):
    """An actor (or its environment) crashed and the run cannot go on."""

    #: the run's ``stopped`` reason in summary.json
    reason = "interrupted (actor failure)"


def train_with_actors(config, resume_from: str | None = None) -> dict:
    """Train with actors: processes (:func:`rtrl_rl.runtime.run.train_with_actors`) or, with
    ``runtime.backend=ray``, Ray actors (:func:`rtrl_rl.runtime.ray_backend.train_with_ray`)."""
    if config.runtime.backend == "ray":
        from rtrl_rl.runtime.ray_backend import train_with_ray

        return train_with_ray(config, resume_from=resume_from)
    from rtrl_rl.runtime.run import train_with_actors as run

    return run(config, resume_from=resume_from)


__all__ = ["ActorFailure", "train_with_actors"]
