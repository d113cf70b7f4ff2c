"""How both actor-learner backends (processes and Ray) learn: the one loop of every trainer
(``rtrl_rl.training.run_builder.drive``) with an ``advance`` that takes the actors' segments from a
:class:`Transport`.

Each update takes the next batch of segments that the actors delivered, admits each
actor's segment in order (a restarted actor's streams start afresh), updates on all
streams, hands the batch back (frees its slots, publishes the new parameters) and
reports. What differs between the backends is only how segments arrive and go back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import torch

from rtrl_rl.agents import SegmentLearner
from rtrl_rl.config import Config
from rtrl_rl.runtime.batches import OrderCheck
from rtrl_rl.training.run_builder import Advance


@dataclass
class Delivery:
    """One batch from the actors.

    ``parts`` holds, per actor segment, (actor, generation, seq, parameter version it was
    acted with); ``segment`` the segments joined along the stream dimension, (T(+1), B, ...);
    ``stream_ids`` (B,) their learner streams; ``episodes`` the episodes that ended in them;
    ``handle`` what the transport needs to take the batch back (slots, for example).
    """

    parts: list[tuple[int, int, int, int]]
    segment: dict[str, torch.Tensor]
    stream_ids: torch.Tensor
    episodes: list = field(default_factory=list)
    handle: object = None


class Transport(Protocol):
    """How segments reach the learner and parameters reach the actors."""

    num_actors: int

    @property
    def version(self) -> int:
        """The version of the parameters published last."""

    def streams(self, actor: int) -> torch.Tensor:
        """The learner streams of one actor, (B_a,)."""

    def next(self) -> Delivery | None:
        """The next batch, or None after a short wait (liveness is checked meanwhile:
        failed actors are restarted, or :class:`ActorFailure` is raised)."""

    def done_with(self, delivery: Delivery, model: torch.nn.Module) -> None:
        """Take the batch back and publish ``model``'s parameters to the actors."""


def transport_advance(config: Config, learner: SegmentLearner, transport: Transport) -> Advance:
    """The actor-learner backends' ``advance`` (see ``rtrl_rl.training.run_builder.drive``): take the
    transport's next batch (None after a short wait without one), admit each actor's segment
    in order (a restarted actor's streams start afresh), update on all streams, hand the batch
    back and report the policy lag (the parameter versions the segments were acted behind)."""
    order = OrderCheck(transport.num_actors)
    steps_per_batch = config.train.segment_length * config.env.num_envs

    def advance() -> tuple[int, dict, list] | None:
        delivery = transport.next()
        if delivery is None:
            return None
        lags = []
        for actor, generation, seq, version in delivery.parts:
            if order.admit(actor, generation, seq):
                learner.reset_carry(transport.streams(actor))  # a restarted actor's streams start afresh
            lags.append(transport.version - version)
        metrics = learner.update(delivery.segment, delivery.stream_ids)
        transport.done_with(delivery, learner.model)
        return steps_per_batch, {**metrics, "runtime/policy_lag": sum(lags) / len(lags)}, delivery.episodes

    return advance
