"""The segment learner: per-stream carries, optimizer, schedule, clipping; the V-trace update.

:class:`SegmentLearner` is what every segment algorithm shares: one carry per stream
(core state + RTRL sensitivities), the optimizer with its global gradient-norm clip,
the learning-rate schedule, the counters and the checkpoint state. :class:`Learner` is
V-trace on it; :class:`rtrl_rl.agents.ppo_learner.PPOLearner` is PPO on it.

One :meth:`Learner.update` consumes one segment of T steps for B streams (the rollout
segment dict of ``docs/contracts.md``) and the stream ids of its columns. For each update:

1. select the streams' carries (core state + RTRL sensitivities) and recompute the forward
   pass over the T steps from them (``first`` resets a stream before a step);
2. bootstrap value: the value of row T (the observation after the segment) seen from the
   new state, then V-trace targets against the behaviour log-probabilities;
3. loss (IMPALA/TorchBeast form), each term reduced over the T x B steps by
   ``loss_reduction`` ("sum" as IMPALA, or "mean" = sum / (T*B)):

       L = sum_t -log pi(a_t|x_t) * A_t                       policy gradient (A_t detached)
         + baseline_cost * 0.5 * sum_t (v_t - V(x_t))^2        value (v_t detached)
         - entropy_cost * sum_t H[pi(.|x_t)]                   entropy bonus

4. backward: the core's ``.grad`` is its exact RTRL gradient (learning "rtrl"), the heads'
   and encoder's ordinary autograd gradients;
5. clip the global gradient norm to ``max_grad_norm`` (<= 0: no clipping), optimizer step,
   learning-rate schedule step; a non-finite gradient norm raises
   :class:`~rtrl_rl.agents.divergence.Diverged` instead, parameters untouched;
6. write the new carry (detached) back to the streams.

Parameters change between segments, so RTRL is exact for lr -> 0 (docs/rtrl.md,
"Online learning and staleness").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from rtrl_rl.agents.cores import Carry
from rtrl_rl.agents.divergence import Diverged, divergence_report
from rtrl_rl.agents.model import ActorCritic
from rtrl_rl.agents.param_groups import group_names, parameter_groups, regroup_state
from rtrl_rl.agents.vtrace import rewards_and_discounts, vtrace

OBS_PREFIX = "obs."


def observation_rows(segment: dict[str, torch.Tensor], rows: slice | int) -> torch.Tensor | dict[str, torch.Tensor]:
    """``segment["obs"][rows]``, or for Dict spaces ``{key: segment["obs.<key>"][rows]}``."""
    if "obs" in segment:
        return segment["obs"][rows]
    return {k[len(OBS_PREFIX):]: v[rows] for k, v in segment.items() if k.startswith(OBS_PREFIX)}


def optimizer_settings(train_config: Any) -> tuple[type[torch.optim.Optimizer], dict[str, float]]:
    """The optimizer class and the hyperparameters the TrainConfig sets on it: RMSprop
    (IMPALA: alpha 0.99, eps 0.01, no momentum) or Adam. One place for both building
    the optimizer and re-applying the config to a restored one."""
    name = train_config.optimizer
    if name == "rmsprop":
        return torch.optim.RMSprop, {"lr": train_config.lr, "alpha": train_config.rmsprop_alpha,
                                     "eps": train_config.rmsprop_eps}
    if name == "adam":
        return torch.optim.Adam, {"lr": train_config.lr, "eps": train_config.adam_eps}
    raise ValueError(f"unknown optimizer {name!r}; expected 'rmsprop' or 'adam'")  # the library's own argument


#: a setting only that optimizer's param groups hold: tells a saved state's kind apart
#: (the other keys vary with the torch version that saved it)
OPTIMIZER_SIGNATURE: dict[type, str] = {torch.optim.Adam: "betas", torch.optim.RMSprop: "alpha"}


def make_optimizer(params, train_config: Any) -> torch.optim.Optimizer:
    """The optimizer of :func:`optimizer_settings` over ``params``: parameters, or param groups
    whose ``lr_scale`` (see :mod:`rtrl_rl.agents.param_groups`) multiplies the learning rate."""
    cls, settings = optimizer_settings(train_config)
    params = list(params)
    if params and isinstance(params[0], dict):
        params = [{**group, "lr": settings["lr"] * group.get("lr_scale", 1.0)} for group in params]
    return cls(params, **settings)


def recurrent_lr_scale(train_config: Any) -> float:
    """``train.recurrent_lr_scale``: the factor on the recurrent parameters' learning rate (1 if unset)."""
    return float(getattr(train_config, "recurrent_lr_scale", 1.0))


def reduce_steps(x: torch.Tensor, how: str) -> torch.Tensor:
    """``x`` (per step and stream) reduced by ``train.loss_reduction``: "sum" or "mean"."""
    if how == "sum":
        return x.sum()
    if how == "mean":
        return x.mean()
    raise ValueError(f"unknown loss reduction {how!r}; expected 'mean' or 'sum'")  # the library's own argument


def sensitivity_norm(carry: Carry) -> float:
    """Euclidean norm of all RTRL sensitivity entries of ``carry`` (0 without any)."""
    norms = [torch.linalg.vector_norm(v.detach()) for k, v in carry.items() if k not in carry.state_keys]
    return float(torch.linalg.vector_norm(torch.stack(norms))) if norms else 0.0


def unroll_segment(model: ActorCritic, segment: dict[str, torch.Tensor], carry: Carry
                   ) -> tuple[torch.Tensor, torch.Tensor, Carry]:
    """``model.unroll`` over rows 0..T-1 of a segment from ``carry``: distribution parameters
    (T, B, P), values (T, B) and the carry after step T-1."""
    T = segment["reward"].shape[0]
    rows = slice(0, T)
    return model.unroll(observation_rows(segment, rows), segment["prev_action"][rows], segment["prev_reward"][rows],
                        segment["first"][rows], carry)


def segment_bootstrap(model: ActorCritic, segment: dict[str, torch.Tensor], carry: Carry) -> torch.Tensor:
    """The value (B,) of row T, the observation after the segment, seen from the ``carry``
    after it (no gradient)."""
    T = segment["reward"].shape[0]
    return model.bootstrap_value(observation_rows(segment, T), segment["prev_action"][T], segment["prev_reward"][T],
                                 carry, segment["first"][T])


def segment_rewards(segment: dict[str, torch.Tensor], train_config: Any, dtype: torch.dtype
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-step rewards and discounts (T, B) of a segment by the train config's gamma,
    reward clip and life-loss setting (:func:`rtrl_rl.agents.vtrace.rewards_and_discounts`)."""
    cfg = train_config
    # without the bootstrap a truncation ends the targets like a termination (a game of fixed length)
    truncation_value = segment["truncation_value"].to(dtype) if getattr(cfg, "truncation_bootstrap", True) else None
    return rewards_and_discounts(
        segment["reward"].to(dtype), segment["terminated"], segment["truncated"], segment["first"][1:],
        cfg.gamma, truncation_value,
        segment["life_lost"] if getattr(cfg, "life_loss", False) else None, cfg.reward_clip,
    )


class SegmentLearner:
    """Keeps one carry per stream and the optimizer for an algorithm that learns on segments.

    ``train_config``: a TrainConfig-like object (gamma, entropy_cost, baseline_cost,
    optimizer, lr, lr_decay, rmsprop_alpha, rmsprop_eps, adam_eps, max_grad_norm,
    reward_clip, loss_reduction, total_steps; optional entropy_decay, default False: entropy_cost
    falls linearly to 0 over total_steps; optional truncation_bootstrap, default True: add
    the value of a truncated episode's final observation to its last target; optional
    recurrent_lr_scale, default 1; optional life_loss, default False: use the
    segment's ``life_lost`` flags as value-chain ends, Atari's life-loss training signal).
    ``num_streams``: how many stream ids exist. The learner runs on the model's device; it
    sets the model's ``reward_clip`` buffer from ``train_config`` so that acting copies of
    the model clip the core input the same way.

    ``diagnostics_due``: a callable telling whether the coming update will be logged;
    ``rtrl/sensitivity_norm`` reads every sensitivity of the carry, so it is computed only
    then (the run's session sets it from its monitor; the default computes it every time).

    A subclass defines ``update(segment, stream_ids) -> metrics`` from the steps here:
    :meth:`begin` (segment on the device, the streams' carries), :meth:`apply_gradients`
    (clip, check, optimizer step; as often as the algorithm steps) and :meth:`finish`
    (carry write-back, counters, schedule).
    """

    def __init__(self, model: ActorCritic, train_config: Any, num_streams: int) -> None:
        self.model, self.config, self.num_streams = model, train_config, num_streams
        self.device = model.device
        model.reward_clip.fill_(float(train_config.reward_clip))
        self.carry = model.initial_carry(num_streams)
        self._all_ids = torch.arange(num_streams, device=self.device)
        self.groups = group_names(model, recurrent_lr_scale(train_config))
        self.optimizer = make_optimizer(parameter_groups(model, recurrent_lr_scale(train_config)), train_config)
        self.updates, self.steps = 0, 0
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda _: self._lr_factor())
        self.diagnostics_due: Callable[[], bool] = lambda: True

    def entropy_cost(self) -> float:
        """``entropy_cost``, decayed linearly to 0 over total_steps when ``entropy_decay`` is on."""
        if not getattr(self.config, "entropy_decay", False):
            return self.config.entropy_cost
        return self.config.entropy_cost * max(0.0, 1.0 - self.steps / max(1, self.config.total_steps))

    def _lr_factor(self) -> float:
        """Linear decay to 0 over total_steps environment steps when lr_decay is on."""
        if not self.config.lr_decay:
            return 1.0
        return max(0.0, 1.0 - self.steps / max(1, self.config.total_steps))

    def _check_ids(self, stream_ids: torch.Tensor, batch: int) -> torch.Tensor:
        ids = torch.as_tensor(stream_ids, dtype=torch.long).to(self.device)
        if ids.shape != (batch,):
            raise ValueError(f"stream_ids must have shape ({batch},) like the segment's batch, got {tuple(ids.shape)}")
        if ids.numel() and (ids.min() < 0 or ids.max() >= self.num_streams):
            raise ValueError(f"stream_ids must lie in [0, {self.num_streams}), got {ids.tolist()}")
        if ids.unique().numel() != batch:
            raise ValueError("stream_ids must be distinct: one segment per stream per update keeps them in order")
        return ids

    def begin(self, segment: dict[str, torch.Tensor], stream_ids: torch.Tensor
              ) -> tuple[dict[str, torch.Tensor], torch.Tensor, Carry]:
        """The segment on the device, the checked stream ids (B,) and those streams' carries.

        All streams in order (the synchronous trainer) use the carry in place, no gather.
        """
        seg = {k: v.to(self.device, non_blocking=True) for k, v in segment.items()}
        ids = self._check_ids(stream_ids, seg["reward"].shape[1])
        return seg, ids, self.carry if self._everything(ids) else self.carry[ids]

    def _everything(self, ids: torch.Tensor) -> bool:
        return ids.numel() == self.num_streams and torch.equal(ids, self._all_ids)

    def apply_gradients(self, terms: dict[str, torch.Tensor], segment: dict[str, torch.Tensor]) -> tuple[float, float]:
        """Clip the global norm of the ``.grad`` that the backward pass of a loss left, step the
        optimizer; returns (gradient norm before clipping, learning rate used).

        Raises :class:`~rtrl_rl.agents.divergence.Diverged`, the parameters unchanged, for a
        non-finite norm; its report names the loss ``terms`` and the ``segment`` they came from.
        """
        max_norm = self.config.max_grad_norm if self.config.max_grad_norm > 0 else float("inf")
        try:  # raises before it scales anything, so the report sees the gradients as they came
            grad_norm = nn.utils.clip_grad_norm_(self.model.parameters(), max_norm, error_if_nonfinite=True)
        except RuntimeError:
            # Stepping would write NaN/inf into every parameter; stop with the evidence instead.
            raise Diverged(divergence_report(self.updates + 1, terms, self.model, segment)) from None
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        return float(grad_norm), lr

    def finish(self, ids: torch.Tensor, new_carry: Carry, steps: int) -> None:
        """Write ``new_carry`` (detached) back to the streams ``ids``; count one update of
        ``steps`` environment steps; step the learning-rate schedule."""
        if self._everything(ids):
            self.carry = new_carry.detach()
        else:
            self.carry.assign(ids, new_carry.detach())
        self.updates += 1
        self.steps += steps
        self.scheduler.step()

    def diagnostics(self, new_carry: Carry) -> dict[str, float]:
        """``rtrl/sensitivity_norm`` of ``new_carry`` when ``diagnostics_due()``, else nothing."""
        return {"rtrl/sensitivity_norm": sensitivity_norm(new_carry)} if self.diagnostics_due() else {}

    def reset_carry(self, stream_ids: torch.Tensor | None = None) -> None:
        """Zero the carries of ``stream_ids`` (all streams when None), e.g. after an env restart."""
        fresh = self.model.initial_carry(self.num_streams)
        ids = slice(None) if stream_ids is None else torch.as_tensor(stream_ids, dtype=torch.long)
        self.carry.assign(ids, fresh[ids])

    def state_dict(self) -> dict:
        """Optimizer, LR-scheduler and counters, for checkpoints (carries are not saved:
        a resumed run restarts its environments, so old carries would not match them)."""
        return {
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "updates": self.updates, "steps": self.steps, "groups": self.groups,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` saved, then :meth:`apply_config`: the saved
        moments and counters continue, the current config's hyperparameters apply.

        Raises ValueError when the saved optimizer is of another kind (its moments,
        e.g. Adam's ``exp_avg``, mean nothing to RMSprop).
        """
        saved_groups = state["optimizer"]["param_groups"]
        kind = type(self.optimizer)
        if saved_groups and OPTIMIZER_SIGNATURE.get(kind, "lr") not in saved_groups[0]:
            raise ValueError(f"the saved optimizer state is not a {kind.__name__} state (its settings: "
                             f"{sorted(k for k in saved_groups[0] if k != 'params')})")
        # a state saved before param groups existed has one group in named_parameters() order
        saved_names = state.get("groups") or [[name for name, _ in self.model.named_parameters()]]
        optimizer_state = state["optimizer"]
        if saved_names != self.groups:  # e.g. resumed with another train.recurrent_lr_scale
            optimizer_state = regroup_state(optimizer_state, saved_names, self.groups)
        self.optimizer.load_state_dict(optimizer_state)
        self.scheduler.load_state_dict(state["scheduler"])
        self.updates, self.steps = int(state["updates"]), int(state["steps"])
        self.apply_config()

    def apply_config(self) -> None:
        """Make the optimizer, the LR schedule and the model's reward clip follow ``self.config``.

        A restored optimizer brings back the hyperparameters it was saved with (its param
        groups, the scheduler's base rates) and a restored model its ``reward_clip``
        buffer; after this the config's lr, eps, alpha, lr_decay, total_steps and
        reward_clip apply, with the learning rate at its scheduled value for the steps done.
        """
        _, settings = optimizer_settings(self.config)
        groups = self.optimizer.param_groups
        scales = [1.0] if len(groups) == 1 else [1.0, recurrent_lr_scale(self.config)]
        for group, scale in zip(groups, scales):
            group.update(settings)
            group["lr_scale"] = scale
            group["initial_lr"] = settings["lr"] * scale
            group["lr"] = group["initial_lr"] * self._lr_factor()
        self.scheduler.base_lrs = [group["initial_lr"] for group in groups]
        self.scheduler._last_lr = [group["lr"] for group in groups]  # what get_last_lr() reports
        self.model.reward_clip.fill_(float(self.config.reward_clip))


class Learner(SegmentLearner):
    """V-trace on segments (see the module docstring): one optimizer step per segment."""

    def loss(self, segment: dict[str, torch.Tensor], carry: Carry) -> tuple[torch.Tensor, dict, Carry]:
        """Loss of one segment (already on the device) from ``carry``: (loss, terms, new carry).

        ``terms`` holds the reduced policy, value (0.5 * squared error, before
        baseline_cost) and entropy terms, detached.
        """
        cfg, model = self.config, self.model
        params, values, new_carry = unroll_segment(model, segment, carry)
        bootstrap = segment_bootstrap(model, segment, new_carry)
        dtype = values.dtype
        rewards, discounts = segment_rewards(segment, cfg, dtype)
        logp = model.policy.log_prob(params, segment["action"])
        targets = vtrace(segment["behaviour_logp"].to(dtype), logp, rewards, discounts, values, bootstrap)
        how = cfg.loss_reduction
        terms = {
            "policy": reduce_steps(-logp * targets.pg_advantages, how),
            "value": reduce_steps(0.5 * (targets.vs - values).pow(2), how),
            "entropy": reduce_steps(model.policy.entropy(params), how),
        }
        loss = terms["policy"] + cfg.baseline_cost * terms["value"] - self.entropy_cost() * terms["entropy"]
        return loss, {k: v.detach() for k, v in terms.items()}, new_carry

    def update(self, segment: dict[str, torch.Tensor], stream_ids: torch.Tensor) -> dict[str, float]:
        """One optimizer step on one segment of the streams ``stream_ids`` (B,); returns metrics.

        After it, the parameters' ``.grad`` still hold the (clipped) gradient of this
        segment. Metrics: losses/policy, losses/value, losses/entropy, losses/total,
        losses/grad_norm (before clipping), lr, and rtrl/sensitivity_norm when
        ``diagnostics_due()`` says this update is logged (absent otherwise).
        """
        seg, ids, carry = self.begin(segment, stream_ids)
        self.optimizer.zero_grad()
        loss, terms, new_carry = self.loss(seg, carry)
        loss.backward()
        grad_norm, lr = self.apply_gradients(terms, seg)
        self.finish(ids, new_carry, seg["reward"].numel())
        metrics = {f"losses/{k}": float(v) for k, v in terms.items()}
        metrics.update({"losses/total": float(loss.detach()), "losses/grad_norm": grad_norm, "lr": lr})
        return {**metrics, **self.diagnostics(new_carry)}
