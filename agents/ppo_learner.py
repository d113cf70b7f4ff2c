"""PPO on segments: several epochs over one batch, each minibatch replayed from its stored carry.

One :meth:`PPOLearner.update` consumes one segment of T steps for B streams (the layout of
``docs/contracts.md``) and the stream ids of its columns:

1. **carry pass** (no gradient, the parameters before the update): the forward pass over
   the T steps from the streams' stored carries gives the values V_t, the bootstrap value
   of row T, GAE(λ) advantages and returns (:mod:`rtrl_rl.agents.ppo_objective`), and the carry that
   the streams' next segment starts from. This is the V-trace learner's rule (its carry
   also comes from the forward pass under the parameters before its step); in the
   synchronous trainer it is the state that the actors acted from.
2. **epochs**: ``ppo.epochs`` times, the streams are shuffled and split into
   ``ppo.minibatches`` groups (streams, never time: each minibatch holds whole segments).
   Each minibatch is replayed from its streams' stored segment-start carries under the
   current parameters, its clipped loss is backpropagated (the core's ``.grad`` is the
   exact RTRL gradient of that loss over the segment, given the stored carry, with
   learning "rtrl") and the optimizer steps (global norm clip ``train.max_grad_norm``).
   With ``ppo.target_kl > 0`` the epochs stop after the first whose mean approximate KL
   exceeds it.
3. the carry of step 1 is written back; the counters and the learning-rate schedule
   advance once (per update, as the V-trace learner's).

The stored carry stays what it was at the segment start through all epochs, while the
parameters move: it is as stale as the stored hidden state that CleanRL's and SB3's
recurrent PPO replay their minibatches from (docs/ppo.md).
"""

from __future__ import annotations

from typing import Any

import torch

from rtrl_rl.agents.cores import Carry
from rtrl_rl.agents.model import ActorCritic
from rtrl_rl.agents.ppo_objective import Losses, Targets, explained_variance, gae, ppo_losses
from rtrl_rl.agents.segment_learner import SegmentLearner, segment_bootstrap, segment_rewards, unroll_segment

Segment = dict[str, torch.Tensor]

#: the figures of one minibatch step, in the order :meth:`PPOLearner.step` returns them
#: (the total loss, the fields of :class:`rtrl_rl.agents.ppo_objective.Losses`, the gradient norm)
RECORD = ("total", "policy", "value", "entropy", "clipfrac", "approx_kl", "old_approx_kl", "grad_norm")


class PPOLearner(SegmentLearner):
    """PPO with per-stream carries (see the module docstring).

    ``ppo_config``: a PPOConfig-like object (clip, epochs, minibatches, gae_lambda,
    value_clip, norm_advantages, target_kl); the value and entropy weights and the
    gradient clip are ``train_config``'s (baseline_cost, entropy_cost, max_grad_norm).
    The minibatch split draws from the learner's own generator, seeded by
    ``train_config.seed`` and saved in :meth:`state_dict`, so a resumed run continues it.
    """

    def __init__(self, model: ActorCritic, train_config: Any, ppo_config: Any, num_streams: int) -> None:
        super().__init__(model, train_config, num_streams)
        self.ppo = ppo_config
        self.generator = torch.Generator().manual_seed(int(getattr(train_config, "seed", 0)))
        self.last_lr = 0.0

    @torch.no_grad()
    def targets(self, segment: Segment, carry: Carry) -> tuple[Targets, Carry]:
        """The carry pass (step 1): GAE targets (T, B) and the carry after the segment."""
        _, values, new_carry = unroll_segment(self.model, segment, carry)
        bootstrap = segment_bootstrap(self.model, segment, new_carry)
        rewards, discounts = segment_rewards(segment, self.config, values.dtype)
        return gae(rewards, discounts, values, bootstrap, self.ppo.gae_lambda), new_carry

    def loss(self, segment: Segment, carry: Carry, targets: Targets) -> tuple[torch.Tensor, Losses]:
        """One minibatch replayed from its stored ``carry``: (total loss, its terms).

        total = policy + baseline_cost * value - entropy_cost * entropy (:mod:`rtrl_rl.agents.ppo_objective`).
        """
        cfg, model = self.config, self.model
        params, values, _ = unroll_segment(model, segment, carry)
        logp = model.policy.log_prob(params, segment["action"])
        losses = ppo_losses(logp, segment["behaviour_logp"].to(values.dtype), model.policy.entropy(params), values,
                            targets, self.ppo.clip, self.ppo.value_clip, self.ppo.norm_advantages,
                            cfg.loss_reduction)
        total = losses.policy + cfg.baseline_cost * losses.value - self.entropy_cost() * losses.entropy
        return total, losses

    def minibatches(self, batch: int) -> list[torch.Tensor] | None:
        """One epoch's split of the columns 0..batch-1 into ``ppo.minibatches`` groups of
        streams (sizes differ by at most one, indices sorted); None for one minibatch,
        which is the whole batch in order (nothing is drawn then)."""
        if self.ppo.minibatches == 1:
            return None
        if batch < self.ppo.minibatches:
            raise ValueError(f"a batch of {batch} streams cannot be split into ppo.minibatches="
                             f"{self.ppo.minibatches} minibatches of whole streams")
        order = torch.randperm(batch, generator=self.generator)
        return [cols.sort().values.to(self.device) for cols in order.tensor_split(self.ppo.minibatches)]

    def update(self, segment: Segment, stream_ids: torch.Tensor) -> dict[str, float]:
        """The carry pass, the epochs and the carry write-back for the streams ``stream_ids`` (B,).

        Metrics (means over the minibatch steps of the update): losses/policy,
        losses/value, losses/entropy, losses/total, losses/grad_norm (before clipping),
        losses/clipfrac, losses/approx_kl, losses/old_approx_kl; losses/explained_variance
        of the carry pass's values; ppo/epochs (epochs run); lr (of the last step);
        rtrl/sensitivity_norm when ``diagnostics_due()``. After it the parameters' ``.grad``
        hold the (clipped) gradient of the last minibatch.
        """
        seg, ids, carry = self.begin(segment, stream_ids)
        targets, new_carry = self.targets(seg, carry)
        rows: list[torch.Tensor] = []
        for epochs in range(1, self.ppo.epochs + 1):
            split = self.minibatches(ids.numel())
            epoch = [self.step(seg, carry, targets, cols) for cols in (split if split is not None else [None])]
            rows += epoch
            kl = float(torch.stack(epoch)[:, RECORD.index("approx_kl")].mean())
            if self.ppo.target_kl > 0 and kl > self.ppo.target_kl:
                break
        self.finish(ids, new_carry, seg["reward"].numel())
        metrics = {f"losses/{name}": value for name, value in zip(RECORD, torch.stack(rows).mean(0).tolist())}
        metrics.update({"losses/explained_variance": explained_variance(targets.values, targets.returns),
                        "ppo/epochs": float(epochs), "lr": self.last_lr})
        return {**metrics, **self.diagnostics(new_carry)}

    def step(self, segment: Segment, carry: Carry, targets: Targets, cols: torch.Tensor | None) -> torch.Tensor:
        """One optimizer step on the minibatch of columns ``cols`` (None: all, in order).

        Returns the step's figures in the order of :data:`RECORD` (detached)."""
        if cols is not None:
            segment, carry, targets = {k: v[:, cols] for k, v in segment.items()}, carry[cols], targets.columns(cols)
        self.optimizer.zero_grad()
        loss, losses = self.loss(segment, carry, targets)
        loss.backward()
        terms = {"policy": losses.policy.detach(), "value": losses.value.detach(), "entropy": losses.entropy.detach()}
        grad_norm, self.last_lr = self.apply_gradients(terms, segment)
        return torch.stack([*(t.detach() for t in (loss, *losses)), loss.new_tensor(grad_norm)])

    def state_dict(self) -> dict:
        """The shared learner state and the minibatch generator's state."""
        return {**super().state_dict(), "ppo_generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`'s state (the generator continues where it was)."""
        super().load_state_dict(state)
        self.generator.set_state(state["ppo_generator"])
