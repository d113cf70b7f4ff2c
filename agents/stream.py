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
from typing import Any, Optional

import torch
from torch import Tensor, nn

from rtrl_rl.agents.cores import Carry
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
    """LayerNorm without learned parameters on the encoder's and the core's outputs (by
    forward hooks, so the model's state dict is unchanged)."""
    def encoder_hook(module, inputs, output):
        return nn.functional.layer_norm(output, output.shape[-1:])

    def core_hook(module, inputs, output):
        y, carry = output
        return nn.functional.layer_norm(y, y.shape[-1:]), carry

    model.encoder.register_forward_hook(encoder_hook)
    model.core.register_forward_hook(core_hook)


def obgd_step(params: list[Tensor], traces: list[Tensor], delta: Tensor, lr: float, kappa: float) -> float:
    """ObGD: θ += α_eff mean_b δ_b z_b with α_eff = lr / max(1, lr κ mean_b(max(|δ_b|,1) ‖z_b‖₁)).

    params: tensors (*p); traces: per parameter (B, *p); delta (B,). Returns α_eff.
    """
    B = delta.shape[0]
    l1 = sum(z.reshape(B, -1).abs().sum(1) for z in traces)  # (B,)
    bound = lr * kappa * (delta.abs().clamp(min=1.0) * l1).mean()
    step = lr / max(1.0, float(bound))
    with torch.no_grad():
        for p, z in zip(params, traces):
            p.add_((delta.view(B, *([1] * p.dim())) * z).mean(0), alpha=step)
    return step


def decay_traces(traces: list[Tensor], grads: list[Tensor], gamma_lambda: float) -> None:
    """z ← γλ z + g in place, for traces (B, *p) and per-stream gradients (B, *p)."""
    for z, g in zip(traces, grads):
        z.mul_(gamma_lambda).add_(g)


class StreamLearner:
    """Holds the carry, the traces and the normalisers of B streams; one ``act`` then
    one ``learn`` per environment step (see the module docstring)."""

    def __init__(self, model: ActorCritic, stream_config: Any, gamma: float, num_streams: int) -> None:
        self.model, self.cfg, self.gamma, self.B = model, stream_config, gamma, num_streams
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.z_value = [p.new_zeros((num_streams, *p.shape)) for p in self.params]
        self.z_policy = [p.new_zeros((num_streams, *p.shape)) for p in self.params]
        self.carry = model.initial_carry(num_streams)
        space = model.observation_space
        self.obs_stats = (RunningMeanVar(tuple(space.shape)) if stream_config.obs_norm and _is_float_box(space)
                          else None)
        if self.obs_stats is not None:
            model.encoder.register_forward_pre_hook(self._normalise_hook)
        self.return_stats, self.returns = RunningMeanVar(), torch.zeros(num_streams)
        self._pending: Optional[tuple] = None
        self.updates = 0

    def _normalise_hook(self, module, inputs):
        (obs,) = inputs
        std = (self.obs_stats.var + 1e-8).sqrt().to(obs.device)
        mean = self.obs_stats.mean.to(obs.device, self.model.dtype)
        return ((obs.to(mean.dtype) - mean) / std.to(mean.dtype),)

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
        scaled = self._scale_reward(reward, done)
        with torch.no_grad():
            next_value = self.model.bootstrap_value(next_obs, action, reward, self.carry.state())
        delta = (scaled + self.gamma * (~terminated).float() * next_value - value.detach()).detach()
        grads_v, grads_pi = [], []
        for b in range(self.B):
            objective = logp[b] + self.cfg.entropy_cost * torch.sign(delta[b]) * entropy[b]
            grads_v.append(self._grads(value[b]))
            grads_pi.append(self._grads(objective))
        gl = self.gamma * self.cfg.trace_lambda
        decay_traces(self.z_value, [torch.stack(g) for g in zip(*grads_v)], gl)
        decay_traces(self.z_policy, [torch.stack(g) for g in zip(*grads_pi)], gl)
        step_v = obgd_step(self.params, self.z_value, delta, self.cfg.lr, self.cfg.kappa_value)
        step_pi = obgd_step(self.params, self.z_policy, delta, self.cfg.lr, self.cfg.kappa_policy)
        for z in (*self.z_value, *self.z_policy):
            z[done] = 0.0
        self._pending = None
        self.updates += 1
        return {"loss/td_error": float(delta.abs().mean()), "loss/step_value": step_v, "loss/step_policy": step_pi}

    def _grads(self, output: Tensor) -> list[Tensor]:
        grads = torch.autograd.grad(output, self.params, retain_graph=True, allow_unused=True)
        return [torch.zeros_like(p) if g is None else g for g, p in zip(grads, self.params)]

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
        return {"z_value": self.z_value, "z_policy": self.z_policy, "carry": dict(self.carry),
                "returns": self.returns, "return_stats": self.return_stats.state_dict(), "updates": self.updates,
                "obs_stats": self.obs_stats.state_dict() if self.obs_stats is not None else None}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` wrote."""
        self.z_value, self.z_policy = list(state["z_value"]), list(state["z_policy"])
        self.carry, self.returns, self.updates = Carry(state["carry"]), state["returns"], int(state["updates"])
        self.return_stats.load_state_dict(state["return_stats"])
        if self.obs_stats is not None and state["obs_stats"] is not None:
            self.obs_stats.load_state_dict(state["obs_stats"])


def _is_float_box(space) -> bool:
    from gymnasium import spaces

    return isinstance(space, spaces.Box) and space.dtype.kind == "f"


def _lead(obs: Observation) -> Observation:
    return {k: v[None] for k, v in obs.items()} if isinstance(obs, dict) else obs[None]
