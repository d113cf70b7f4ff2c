"""PPO's maths (Schulman et al. 2017): GAE(λ) advantages and the clipped losses, time-major (T, B).

GAE (Schulman et al. 2016) over one segment, with per-step discounts ``gamma_t`` (gamma
times "the episode goes on", from :func:`rtrl_rl.agents.vtrace.rewards_and_discounts`),
values ``V_t`` and the bootstrap value ``V_T`` of the observation after the segment:

    delta_t = r_t + gamma_t * V_{t+1} - V_t
    A_t     = delta_t + gamma_t * lambda * A_{t+1}        (A_T = 0)
    R_t     = A_t + V_t                                  (the value target)

``gamma_t = 0`` at an episode's end stops both the bootstrap and the sum, so no advantage
looks across a boundary. With the probability ratio ``rho = pi(a|x) / mu(a|x)`` against
the behaviour policy mu, clip range ``eps``, advantages ``Â`` (``A`` normalised per
minibatch when asked) and old values ``V_old`` (those GAE used):

    policy  = reduce( max(-Â rho, -Â clip(rho, 1 - eps, 1 + eps)) )
    value   = reduce( 0.5 * max((V - R)^2, (V_old + clip(V - V_old, -c, c) - R)^2) )   (c = value clip;
              0.5 * (V - R)^2 when c = 0)
    entropy = reduce( H[pi(.|x)] )

``reduce`` is ``train.loss_reduction`` over the steps of the minibatch (see
:func:`rtrl_rl.agents.segment_learner.reduce_steps`). Everything here but the losses' dependence on
the new log-probabilities, values and entropies is a constant (no gradient).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from rtrl_rl.agents.segment_learner import reduce_steps

#: added to the advantages' standard deviation when normalising (CleanRL's value)
NORM_EPS = 1e-8


class Targets(NamedTuple):
    """What the epochs of one update learn towards, all (T, B) and detached.

    advantages: GAE A_t; returns: R_t = A_t + V_t; values: V_t, the values GAE used
    (the old values of the value clip).
    """

    advantages: torch.Tensor
    returns: torch.Tensor
    values: torch.Tensor

    def columns(self, cols: torch.Tensor) -> Targets:
        """The targets of the streams ``cols`` (a minibatch)."""
        return Targets(*(t[:, cols] for t in self))


@torch.no_grad()
def gae(rewards: torch.Tensor, discounts: torch.Tensor, values: torch.Tensor, bootstrap_value: torch.Tensor,
        lam: float) -> Targets:
    """GAE(λ) advantages and returns by a backward recursion over the T steps.

    Shapes: ``rewards``, ``discounts``, ``values`` (T, B); ``bootstrap_value`` (B,).
    ``discounts`` already holds gamma times the "episode goes on" mask.
    """
    values = values.detach()
    next_values = torch.cat([values[1:], bootstrap_value.detach().unsqueeze(0)], dim=0)
    deltas = rewards + discounts * next_values - values
    advantages = torch.empty_like(deltas)
    acc = torch.zeros_like(bootstrap_value)
    for t in range(deltas.shape[0] - 1, -1, -1):
        acc = deltas[t] + discounts[t] * lam * acc
        advantages[t] = acc
    return Targets(advantages, advantages + values, values)


def normalise(advantages: torch.Tensor) -> torch.Tensor:
    """(A - mean) / (std + 1e-8) over all entries (std with Bessel's correction, as CleanRL)."""
    return (advantages - advantages.mean()) / (advantages.std() + NORM_EPS)


class Losses(NamedTuple):
    """The reduced loss terms of one minibatch (with gradients) and its statistics (detached).

    policy, value (0.5 * squared error, before ``baseline_cost``), entropy; clip_fraction:
    the share of steps with |rho - 1| > eps; approx_kl: mean of (rho - 1) - log rho, the
    estimator of KL(mu || pi) that CleanRL logs; old_approx_kl: mean of -log rho.
    """

    policy: torch.Tensor
    value: torch.Tensor
    entropy: torch.Tensor
    clip_fraction: torch.Tensor
    approx_kl: torch.Tensor
    old_approx_kl: torch.Tensor


def ppo_losses(logp: torch.Tensor, behaviour_logp: torch.Tensor, entropy: torch.Tensor, values: torch.Tensor,
               targets: Targets, clip: float, value_clip: float, norm_advantages: bool, reduction: str) -> Losses:
    """The clipped losses of the module docstring for one minibatch; every argument (T, B).

    ``logp``, ``entropy`` and ``values`` come from the current parameters (with gradients),
    ``behaviour_logp`` from the policy that acted.
    """
    log_ratio = logp - behaviour_logp.detach()
    ratio = log_ratio.exp()
    adv = normalise(targets.advantages) if norm_advantages else targets.advantages
    policy = torch.max(-adv * ratio, -adv * ratio.clamp(1.0 - clip, 1.0 + clip))
    squared = (values - targets.returns).pow(2)
    if value_clip > 0:
        clipped = targets.values + (values - targets.values).clamp(-value_clip, value_clip)
        squared = torch.max(squared, (clipped - targets.returns).pow(2))
    with torch.no_grad():
        log_ratio, ratio = log_ratio.detach(), ratio.detach()
        clip_fraction = ((ratio - 1.0).abs() > clip).to(ratio.dtype).mean()
        approx_kl = ((ratio - 1.0) - log_ratio).mean()
        old_approx_kl = (-log_ratio).mean()
    return Losses(reduce_steps(policy, reduction), reduce_steps(0.5 * squared, reduction),
                  reduce_steps(entropy, reduction), clip_fraction, approx_kl, old_approx_kl)


@torch.no_grad()
def explained_variance(values: torch.Tensor, returns: torch.Tensor) -> float:
    """1 - Var(R - V) / Var(R) over all entries; NaN when the returns do not vary."""
    var = returns.var()
    return float("nan") if var == 0 else float(1.0 - (returns - values).var() / var)
