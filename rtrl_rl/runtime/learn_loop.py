"""The learner loop of both actor-learner backends (processes and Ray), over a transport.

Read it top to bottom: until the step budget is spent, a stop is requested or the target
is reached, take the next batch of segments that the actors delivered, admit each actor's
segment in order (a restarted actor's streams start afresh), update on all streams, hand
the batch back (free its slots, publish the new parameters) and report. What differs
between the backends is only how segments arrive and go back: a :class:`Transport`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import torch

from rtrl_rl.agents import SegmentLearner
from rtrl_rl.config import Config
from rtrl_rl.runtime.batches import OrderCheck
from rtrl_rl.session import RunSession
from rtrl_rl.trainer import evaluate_on_cpu


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


def learn(config: Config, learner: SegmentLearner, session: RunSession, transport: Transport) -> str:
    """Update from the transport's batches; return why it stopped (budget, target or
    interrupted (REASON))."""
    monitor = session.monitor
    order = OrderCheck(transport.num_actors)
    steps_per_batch = config.train.segment_length * config.env.num_envs
    while monitor.step < config.train.total_steps:
        if stop := session.stop_requested():
            return stop
        delivery = transport.next()
        if delivery is None:
            continue
        lags = []
        for actor, generation, seq, version in delivery.parts:
            if order.admit(actor, generation, seq):
                learner.reset_carry(transport.streams(actor))  # a restarted actor's streams start afresh
            lags.append(transport.version - version)
        metrics = learner.update(delivery.segment, delivery.stream_ids)
        transport.done_with(delivery, learner.model)
        monitor.record_episodes(delivery.episodes)
        monitor.record_update(steps_per_batch, {**metrics, "runtime/policy_lag": sum(lags) / len(lags)})
        if session.after_update(evaluate_on_cpu):
            return "target"
    return "budget"
