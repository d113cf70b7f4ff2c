"""V-trace off-policy targets (Espeholt et al. 2018, "IMPALA"), time-major (T, B).

For one segment of T steps with behaviour policy mu (the actor's) and target policy pi (the
learner's), importance ratios ``rho_t = min(rho_bar, pi/mu)`` and ``c_t = min(c_bar, pi/mu)``,
per-step discounts ``gamma_t`` and values ``V_t = V(x_t)``, ``V_T`` the bootstrap value:

    delta_t = rho_t * (r_t + gamma_t * V_{t+1} - V_t)
    v_t     = V_t + delta_t + gamma_t * c_t * (v_{t+1} - V_{t+1})        (v_T = V_T)
    A_t     = rho_t * (r_t + gamma_t * v_{t+1} - V_t)                   (policy-gradient advantage)

Episode boundaries enter only through ``gamma_t`` (see :func:`rewards_and_discounts`):
``gamma_t = 0`` stops both the bootstrap and the trace at step t, so no target ever looks
across the end of an episode. Everything here is a constant for the loss (no gradient).
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class VTraceReturns(NamedTuple):
    """V-trace outputs, both (T, B) and detached.

    vs: value targets v_t; pg_advantages: A_t, the weight of -log pi(a_t|x_t) in the loss.
    """

    vs: torch.Tensor
    pg_advantages: torch.Tensor


@torch.no_grad()
def vtrace(
    behaviour_logp: torch.Tensor,
    target_logp: torch.Tensor,
    rewards: torch.Tensor,
    discounts: torch.Tensor,
    values: torch.Tensor,
    bootstrap_value: torch.Tensor,
    rho_bar: float = 1.0,
    c_bar: float = 1.0,
) -> VTraceReturns:
    """V-trace targets and advantages by a backward recursion over the T steps.

    Shapes: every argument is (T, B) except ``bootstrap_value`` (B,), the value of the
    observation after the last step. ``discounts`` already holds gamma times the "episode
    goes on" mask. The result is detached.
    """
    ratios = torch.exp(target_logp.detach() - behaviour_logp.detach())
    rhos = ratios.clamp(max=rho_bar)
    cs = ratios.clamp(max=c_bar)
    values = values.detach()
    next_values = torch.cat([values[1:], bootstrap_value.detach().unsqueeze(0)], dim=0)
    deltas = rhos * (rewards + discounts * next_values - values)
    corrections = torch.zeros_like(deltas)  # v_t - V_t
    acc = torch.zeros_like(bootstrap_value)
    for t in range(values.shape[0] - 1, -1, -1):
        acc = deltas[t] + discounts[t] * cs[t] * acc
        corrections[t] = acc
    vs = values + corrections
    next_vs = torch.cat([vs[1:], bootstrap_value.detach().unsqueeze(0)], dim=0)
    pg_advantages = rhos * (rewards + discounts * next_vs - values)
    return VTraceReturns(vs=vs, pg_advantages=pg_advantages)


@torch.no_grad()
def rewards_and_discounts(
    reward: torch.Tensor,
    terminated: torch.Tensor,
    truncated: torch.Tensor,
    next_first: torch.Tensor,
    gamma: float,
    truncation_value: torch.Tensor | None = None,
    life_lost: torch.Tensor | None = None,
    reward_clip: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-step rewards and discounts for :func:`vtrace` from a segment's flags, all (T, B).

    - ``reward_clip > 0`` clips rewards to [-c, c] (IMPALA's Atari setting); 0 leaves them.
    - terminated: the episode really ended; nothing follows, discount 0.
    - truncated (and not terminated): the episode was cut by a time limit; the chain stops
      (discount 0, the next observation belongs to a new episode) but the reward gets
      ``gamma * truncation_value``, the value of the episode's final observation, which
      is what bootstrapping would have added had the episode gone on.
    - life_lost (Atari option): discount 0, so targets do not look past a lost life; the
      recurrent state is not reset (the episode goes on) and nothing is added.
    - next_first (``first[1:]``): the next observation starts a new episode. It equals
      terminated | truncated under the env contract; it is included so that a boundary
      flagged only by ``first`` still cuts the chain.
    """
    reward = reward.clamp(-reward_clip, reward_clip) if reward_clip > 0 else reward
    ends = terminated | truncated | next_first
    if life_lost is not None:
        ends = ends | life_lost
    discounts = gamma * (~ends).to(reward.dtype)
    if truncation_value is not None:
        bonus = (truncated & ~terminated).to(reward.dtype) * truncation_value.to(reward.dtype)
        reward = reward + gamma * bonus
    return reward, discounts
