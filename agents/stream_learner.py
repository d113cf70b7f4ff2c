"""Streaming actor-critic, stream AC(λ) (Elsayed, Vasan & Mahmood 2024), with a recurrent core.

One update per environment step from the step just taken: no rollout buffer, no
segments. Per stream b and step t, with the model's value v and policy π:

    δ_b   = r̃_b + γ (1 - terminated_b) V(s'_b) - V(s_b)                   TD error
    z^v_b ← γλ z^v_b + ∇ V(s_b)                                           value trace
    z^π_b ← γλ z^π_b + ∇ [log π(a_b|s_b) + τ sign(δ_b) H(π(s_b))]          policy trace
    θ     ← θ + α_eff^v mean_b δ_b z^v_b,  then  θ ← θ + α_eff^π mean_b δ_b z^π_b

with ObGD's bounded step α_eff = α / max(1, α κ mean_b(max(|δ_b|, 1) ‖z_b‖₁)) (for one
stream exactly ObGD; for several, the same bound on the mean update). Traces are kept
over all parameters of the model (policy and value share the encoder and the core) and
zeroed where an episode ends. The core runs one step at a time (T = 1, per-step RTRL):
∇V(s_b) and ∇ log π reach the core's parameters through the whole past of the episode
by the carried sensitivities. The encoder below the core gets the same-step gradient.
Parameters change every step, so the sensitivities mix derivatives taken under older
parameters: RTRL's usual online approximation (``docs/stream.md``).

The stream-x ingredients, each switchable in ``StreamConfig``: sparse initialisation,
LayerNorm (no affine) on the encoder and core outputs, observation normalisation (float
Box observations), reward scaling by the running std of the discounted return.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from rtrl_rl.agents.cores import Carry
from rtrl_rl.agents.divergence import Diverged
from rtrl_rl.agents.model import ActorCritic, Observation


class RunningMeanVar:
    """Running mean and variance (Welford) of vectors of a fixed shape, over all updates."""

    def __init__(self, shape: tuple[int, ...] = ()) -> None:
        self.count, self.mean, self.m2 = 0, torch.zeros(shape), torch.zeros(shape)

    def update(self, batch: Tensor) -> None:
        """Add the rows of ``batch`` (N, *shape)."""
        for row in batch.to(self.mean.dtype):
            self.count += 1
            delta = row - self.mean
            self.mean += delta / self.count
            self.m2 += delta * (row - self.mean)

    @property
    def var(self) -> Tensor:
        """Population variance (1 until two samples are seen)."""
        return self.m2 / (self.count - 1) if self.count > 1 else torch.ones_like(self.m2)

    def state_dict(self) -> dict:
        return {"count": self.count, "mean": self.mean.clone(), "m2": self.m2.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.count, self.mean, self.m2 = int(state["count"]), state["mean"].clone(), state["m2"].clone()


def sparse_init_(model: nn.Module, sparsity: float) -> None:
    """Sparse initialisation: every weight matrix (dim >= 2) drawn U(±1/sqrt(fan_in)) with
    a fraction ``sparsity`` of each output unit's inputs set to zero; nn.Linear biases zero.
    The core's own biases (forget bias) and diagonal recurrent weights keep their init."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Linear) and module.bias is not None:
                module.bias.zero_()
        for p in model.parameters():
            if p.dim() < 2:
                continue
            rows = p.view(p.shape[0], -1)
            fan_in = rows.shape[1]
            rows.uniform_(-1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))
            zeros = int(sparsity * fan_in)
            for row in rows:
                row[torch.randperm(fan_in)[:zeros]] = 0.0


def add_layer_norm(model: ActorCritic) -> None:
    """LayerNorm without learned parameters on the encoder's output (by a forward hook, so the
    model's state dict is unchanged) and on the core's (the agent's ``core_norm``)."""
    def encoder_hook(module, inputs, output):
        return nn.functional.layer_norm(output, output.shape[-1:])

    model.encoder.register_forward_hook(encoder_hook)
    model.core_norm = True  # the core's output: the agent's own option (ActorCritic.features)


def obgd_scale(l1: Tensor, delta: Tensor, lr: float, kappa: float) -> float:
    """ObGD's bounded step α_eff = lr / max(1, lr κ mean_b(max(|δ_b|,1) ‖z_b‖₁)), from the
    traces' ℓ1 norms per stream l1 (B,) and the TD errors delta (B,)."""
    bound = lr * kappa * (delta.abs().clamp(min=1.0) * l1).mean()
    return lr / max(1.0, float(bound))


def obgd_step(params: list[Tensor], traces: list[Tensor], delta: Tensor, lr: float, kappa: float) -> float:
    """ObGD: θ += α_eff mean_b δ_b z_b with α_eff from :func:`obgd_scale`.

    params: tensors (*p); traces: per parameter (B, *p); delta (B,). Returns α_eff.
    """
    B = delta.shape[0]
    step = obgd_scale(sum(z.reshape(B, -1).abs().sum(1) for z in traces), delta, lr, kappa)
    with torch.no_grad():
        for p, z in zip(params, traces):
            p.add_((delta.view(B, *([1] * p.dim())) * z).mean(0), alpha=step)
    return step


def decay_traces(traces: list[Tensor], grads: list[Tensor], gamma_lambda: float) -> None:
    """z ← γλ z + g in place, for traces (B, *p) and per-stream gradients (B, *p)."""
    for z, g in zip(traces, grads):
        z.mul_(gamma_lambda).add_(g)


class FlatTraces:
    """The traces of B streams over all parameters as one (B, P) tensor, so that each step's
    decay, ℓ1 norm, update and reset are one tensor operation each instead of one per
    parameter (the per-step cost of a one-stream learner is mostly such small operations).
    ``views`` are the per-parameter traces (B, *p), views into the same storage."""

    def __init__(self, params: list[Tensor], num_streams: int) -> None:
        self.params, self.B = params, num_streams
        self.sizes = [p.numel() for p in params]
        self.flat = params[0].new_zeros((num_streams, sum(self.sizes)))
        self.views = self._split(self.flat, (num_streams,))
        self.update = self.flat.new_zeros(self.flat.shape[1])
        self.update_views = self._split(self.update, ())  # the step, per parameter
        self.grads = torch.empty_like(self.flat)

    def _split(self, flat: Tensor, lead: tuple[int, ...]) -> list[Tensor]:
        return [part.view(*lead, *p.shape) for part, p in zip(flat.split(self.sizes, dim=-1), self.params)]

    def accumulate(self, grads: list[list[Tensor]], gamma_lambda: float) -> None:
        """z ← γλ z + g, from per-stream lists of per-parameter gradients."""
        for b, per_param in enumerate(grads):
            torch.cat([g.reshape(-1) for g in per_param], out=self.grads[b])
        self.flat.mul_(gamma_lambda).add_(self.grads)

    def step(self, delta: Tensor, lr: float, kappa: float) -> float:
        """ObGD: θ += α_eff mean_b δ_b z_b (:func:`obgd_step` on the flat traces)."""
        step = self.prepare(delta, lr, kappa)
        self.apply(step)
        return step

    def prepare(self, delta: Tensor, lr: float, kappa: float) -> float:
        """The step of :meth:`step` without applying it: fills :attr:`update`, returns α_eff."""
        # ℓ1 per parameter, summed in parameter order: the same float sums as obgd_step's
        step = obgd_scale(sum(part.sum(1) for part in self.flat.abs().split(self.sizes, dim=1)), delta, lr, kappa)
        with torch.no_grad():
            if self.B == 1:  # the mean of one row is the row: one pass instead of a product and a mean
                torch.mul(self.flat[0], delta[0], out=self.update)
            else:
                torch.mean(delta.view(self.B, 1) * self.flat, 0, out=self.update)
        return step

    def update_is_finite(self) -> bool:
        """Whether every entry of :attr:`update` is finite. One sum instead of an elementwise
        test (about 25x cheaper on a CPU): NaN and ±inf entries make the sum NaN or ±inf; so
        does a sum beyond the float range, which needs entries far beyond any sane step."""
        return bool(torch.isfinite(self.update.sum()))

    def apply(self, step: float) -> None:
        """θ += α_eff · :attr:`update` (after :meth:`prepare`)."""
        with torch.no_grad():
            torch._foreach_add_(self.params, self.update_views, alpha=step)

    def reset(self, done: Tensor) -> None:
        """Zero the traces of the streams whose episode ended."""
        if bool(done.any()):
            self.flat[done] = 0.0

    def load(self, traces: list[Tensor]) -> None:
        """Copy per-parameter traces (B, *p) in."""
        for view, z in zip(self.views, traces):
            view.copy_(z)


class StreamLearner:
    """Holds the carry, the traces and the normalisers of B streams; one ``act`` then
    one ``learn`` per environment step (see the module docstring)."""

    def __init__(self, model: ActorCritic, stream_config: Any, gamma: float, num_streams: int) -> None:
        self.model, self.cfg, self.gamma, self.B = model, stream_config, gamma, num_streams
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.traces_value, self.traces_policy = FlatTraces(self.params, num_streams), FlatTraces(self.params, num_streams)
        self._zeros = [torch.zeros_like(p) for p in self.params]  # the gradient of a parameter not reached
        self.carry = model.initial_carry(num_streams)
        space = model.observation_space
        self.obs_stats = (RunningMeanVar(tuple(space.shape)) if stream_config.obs_norm and _is_float_box(space)
                          else None)
        if self.obs_stats is not None:
            model.encoder.register_forward_pre_hook(self._normalise_hook)
        self.return_stats, self.returns = RunningMeanVar(), torch.zeros(num_streams)
        self._pending: tuple | None = None
        self._norm: tuple | None = None  # (mean, std, count): the normaliser, kept while the stats hold
        self.updates = 0

    def _normalise_hook(self, module, inputs):
        (obs,) = inputs
        if self._norm is None or self._norm[2] != self.obs_stats.count:  # the stats changed since
            std = (self.obs_stats.var + 1e-8).sqrt().to(obs.device)
            mean = self.obs_stats.mean.to(obs.device, self.model.dtype)
            self._norm = (mean, std.to(mean.dtype), self.obs_stats.count)
        mean, std, _ = self._norm
        return ((obs.to(mean.dtype) - mean) / std,)

    def act(self, obs: Observation, prev_action: Tensor, prev_reward: Tensor, first: Tensor) -> Tensor:
        """Observe (B streams, batch-first), advance the carry with gradients, sample actions (B, ...)."""
        if self.obs_stats is not None:
            self.obs_stats.update(torch.as_tensor(obs).float())
        params, values, self.carry = self.model.unroll(_lead(obs), prev_action[None], prev_reward[None],
                                                       first[None], self.carry)
        policy = self.model.policy
        action = policy.sample(params[0].detach())
        self._pending = (values[0], policy.log_prob(params[0], action), policy.entropy(params[0]), action)
        return action

    def learn(self, reward: Tensor, terminated: Tensor, done: Tensor, next_obs: Observation) -> dict:
        """Update from the step just taken: reward, terminated, done = terminated | truncated
        (B,) and the observation the next value is taken from (for a truncated episode its
        final observation). Resets the traces of the streams whose episode ended."""
        value, logp, entropy, action = self._pending
        reward = reward.float()
        with torch.no_grad():
            next_value = self.model.bootstrap_value(next_obs, action, reward, self.carry.state())
        if not (torch.isfinite(reward).all() and torch.isfinite(next_value).all()):  # before the scaler sees it
            raise Diverged(self._report("the reward or the next value is not finite", reward, value, next_value))
        delta = (self._scale_reward(reward, done) + self.gamma * (~terminated).float() * next_value
                 - value.detach()).detach()
        if not torch.isfinite(delta).all():
            raise Diverged(self._report("the TD error is not finite", reward, value, next_value, delta))
        grads_v, grads_pi = [], []
        for b in range(self.B):
            objective = logp[b] + self.cfg.entropy_cost * torch.sign(delta[b]) * entropy[b]
            grads_v.append(self._grads(value[b]))
            grads_pi.append(self._grads(objective))
        gl = self.gamma * self.cfg.trace_lambda
        self.traces_value.accumulate(grads_v, gl)
        self.traces_policy.accumulate(grads_pi, gl)
        step_v = self.traces_value.prepare(delta, self.cfg.lr, self.cfg.kappa_value)
        step_pi = self.traces_policy.prepare(delta, self.cfg.lr, self.cfg.kappa_policy)
        for kind, traces in (("value", self.traces_value), ("policy", self.traces_policy)):
            if not traces.update_is_finite():
                self.restart_episodes()  # the traces hold the overflow; the parameters stay as they were
                raise Diverged(self._report(f"the {kind} update is not finite", reward, value, next_value, delta))
        self.traces_value.apply(step_v)
        self.traces_policy.apply(step_pi)
        self.traces_value.reset(done)
        self.traces_policy.reset(done)
        self._pending = None
        self.updates += 1
        return {"loss/td_error": float(delta.abs().mean()), "loss/step_value": step_v, "loss/step_policy": step_pi}

    def _report(self, what: str, *per_stream: Tensor) -> str:
        """The message of a diverged step, naming the first stream with a non-finite value among
        ``per_stream`` = (reward, value, next value[, TD error]), each (B,)."""
        finite = torch.stack([torch.isfinite(x.detach()) for x in per_stream]).all(0)
        b = int((~finite).nonzero()[0]) if not finite.all() else 0
        names = ("reward", "value", "next value", "TD error")
        shown = ", ".join(f"{name} {float(x[b].detach()):.3g}" for name, x in zip(names, per_stream))
        return (f"the stream learner diverged at update {self.updates + 1}: {what} (stream {b}: {shown}); the "
                "parameters were left unchanged. Remedies (docs/stream.md, \"Limits\"): lower stream.lr or the "
                "kappa bounds, keep stream.reward_scale and stream.obs_norm on, scale large observations")

    def _grads(self, output: Tensor) -> list[Tensor]:
        grads = torch.autograd.grad(output, self.params, retain_graph=True, allow_unused=True)
        return [zero if g is None else g for g, zero in zip(grads, self._zeros)]

    @property
    def z_value(self) -> list[Tensor]:
        """The value traces per parameter (B, *p)."""
        return self.traces_value.views

    @property
    def z_policy(self) -> list[Tensor]:
        """The policy traces per parameter (B, *p)."""
        return self.traces_policy.views

    def _scale_reward(self, reward: Tensor, done: Tensor) -> Tensor:
        """r / std of the discounted return (per-stream returns, shared statistics)."""
        if not self.cfg.reward_scale:
            return reward
        self.returns = self.gamma * self.returns + reward
        self.return_stats.update(self.returns)
        self.returns[done] = 0.0
        return reward / (self.return_stats.var + 1e-8).sqrt()

    def state_dict(self) -> dict:
        """Traces, carry, normalisers and counters, for checkpoints."""
        return {"z_value": [z.clone() for z in self.z_value], "z_policy": [z.clone() for z in self.z_policy],
                "carry": dict(self.carry),
                "returns": self.returns, "return_stats": self.return_stats.state_dict(), "updates": self.updates,
                "obs_stats": self.obs_stats.state_dict() if self.obs_stats is not None else None}

    def restart_episodes(self) -> None:
        """Forget every stream's episode in progress: zero the traces, the carry and the
        discounted returns of the reward scaler, as at an episode's end. A resumed run
        restarts its environments, so what belonged to the old episodes must not carry
        over; the parameters, the normalisers' statistics and the counters stay."""
        every = torch.ones(self.B, dtype=torch.bool)
        self.traces_value.reset(every)
        self.traces_policy.reset(every)
        self.carry = self.model.initial_carry(self.B)
        self.returns = torch.zeros(self.B)
        self._pending = None

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` wrote."""
        self.traces_value.load(state["z_value"])
        self.traces_policy.load(state["z_policy"])
        self.carry, self.returns, self.updates = Carry(state["carry"]), state["returns"], int(state["updates"])
        self.return_stats.load_state_dict(state["return_stats"])
        if self.obs_stats is not None and state["obs_stats"] is not None:
            self.obs_stats.load_state_dict(state["obs_stats"])
            self._norm = None


def _is_float_box(space) -> bool:
    from gymnasium import spaces

    return isinstance(space, spaces.Box) and space.dtype.kind == "f"


def _lead(obs: Observation) -> Observation:
    return {k: v[None] for k, v in obs.items()} if isinstance(obs, dict) else obs[None]
