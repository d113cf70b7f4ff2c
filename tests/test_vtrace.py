"""V-trace against the textbook definition, n-step returns, and episode-boundary handling."""

import torch

from rtrl_rl.agents.vtrace import rewards_and_discounts, vtrace


def _reference(behaviour_logp, target_logp, rewards, discounts, values, bootstrap):
    """Espeholt et al. (2018) eq. 1, the explicit sum, one stream and one step at a time."""
    T, B = rewards.shape
    ratio = torch.exp(target_logp - behaviour_logp)
    rho, c = ratio.clamp(max=1.0), ratio.clamp(max=1.0)
    V = torch.cat([values, bootstrap[None]], 0)
    vs = torch.zeros(T, B, dtype=values.dtype)
    for b in range(B):
        for s in range(T):
            total, weight = V[s, b].clone(), 1.0  # weight = prod_{i<t} gamma_i c_i
            for t in range(s, T):
                delta = rho[t, b] * (rewards[t, b] + discounts[t, b] * V[t + 1, b] - V[t, b])
                total += weight * delta
                weight = weight * discounts[t, b] * c[t, b]
            vs[s, b] = total
    next_vs = torch.cat([vs[1:], bootstrap[None]], 0)
    adv = rho * (rewards + discounts * next_vs - values)
    return vs, adv


def _random_inputs(T=7, B=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    behaviour, target = r(T, B) * 0.5, r(T, B) * 0.5
    discounts = 0.9 * (torch.rand(T, B, generator=g) > 0.2).double()
    return behaviour, target, r(T, B), discounts, r(T, B), r(B)


def test_vtrace_matches_textbook_sum():
    args = _random_inputs()
    out = vtrace(*args)
    vs, adv = _reference(*args)
    torch.testing.assert_close(out.vs, vs, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out.pg_advantages, adv, rtol=1e-12, atol=1e-12)


def test_vtrace_is_detached():
    b, t, r, d, v, bs = _random_inputs()
    v.requires_grad_(True)
    t.requires_grad_(True)
    out = vtrace(b, t, r, d, v, bs)
    assert not out.vs.requires_grad and not out.pg_advantages.requires_grad


def test_on_policy_reduces_to_n_step_returns():
    T, B, gamma = 6, 2, 0.9
    _, _, rewards, _, values, bootstrap = _random_inputs(T, B, seed=1)
    logp = torch.randn(T, B, dtype=torch.float64)
    discounts = torch.full((T, B), gamma, dtype=torch.float64)
    out = vtrace(logp, logp, rewards, discounts, values, bootstrap)
    for s in range(T):
        n = T - s
        ret = sum(gamma**k * rewards[s + k] for k in range(n)) + gamma**n * bootstrap
        torch.testing.assert_close(out.vs[s], ret, rtol=1e-12, atol=1e-12)
    # Advantage on-policy: r_t + gamma v_{t+1} - V_t.
    next_vs = torch.cat([out.vs[1:], bootstrap[None]], 0)
    torch.testing.assert_close(out.pg_advantages, rewards + gamma * next_vs - values)


def test_terminated_stops_bootstrap_and_trace():
    T, B, gamma = 5, 1, 0.9
    rewards = torch.arange(1.0, T + 1).double()[:, None]
    values = torch.full((T, B), 100.0, dtype=torch.float64)
    bootstrap = torch.full((B,), 1000.0, dtype=torch.float64)
    terminated = torch.zeros(T, B, dtype=torch.bool)
    terminated[2] = True
    next_first = terminated.clone()
    zero = torch.zeros(T, B, dtype=torch.bool)
    r, d = rewards_and_discounts(rewards, terminated, zero, next_first, gamma)
    logp = torch.zeros(T, B, dtype=torch.float64)
    vs = vtrace(logp, logp, r, d, values, bootstrap).vs[:, 0]
    # Steps 0..2 form an episode ending at 2: the targets are plain discounted sums.
    assert vs[2] == 3.0
    assert torch.isclose(vs[1], torch.tensor(2 + gamma * 3, dtype=torch.float64))
    assert torch.isclose(vs[0], torch.tensor(1 + gamma * 2 + gamma**2 * 3, dtype=torch.float64))
    # Steps 3..4 are the next episode and bootstrap from the value after the segment.
    assert torch.isclose(vs[4], torch.tensor(5 + gamma * 1000, dtype=torch.float64))


def test_truncated_adds_value_of_final_observation():
    T, B, gamma = 3, 2, 0.5
    rewards = torch.ones(T, B, dtype=torch.float64)
    values = torch.zeros(T, B, dtype=torch.float64)
    bootstrap = torch.full((B,), 8.0, dtype=torch.float64)
    truncated = torch.zeros(T, B, dtype=torch.bool)
    truncated[1, 0] = True
    terminated = torch.zeros(T, B, dtype=torch.bool)
    terminated[1, 1] = True
    truncated[1, 1] = True  # both set: termination wins, no bonus
    tv = torch.zeros(T, B, dtype=torch.float64)
    tv[1] = 4.0
    r, d = rewards_and_discounts(rewards, terminated, truncated, truncated | terminated, gamma, tv)
    logp = torch.zeros(T, B, dtype=torch.float64)
    vs = vtrace(logp, logp, r, d, values, bootstrap).vs
    assert vs[1, 0] == 1 + gamma * 4.0  # bootstraps from the final observation's value
    assert vs[1, 1] == 1.0  # really terminated
    assert vs[0, 0] == 1 + gamma * (1 + gamma * 4.0)  # same episode before the cut
    assert vs[2, 0] == 1 + gamma * 8.0  # new episode after the cut


def test_life_lost_and_reward_clip():
    T, B = 2, 1
    reward = torch.tensor([[5.0], [-3.0]], dtype=torch.float64)
    no = torch.zeros(T, B, dtype=torch.bool)
    life = torch.tensor([[True], [False]])
    r, d = rewards_and_discounts(reward, no, no, no, 0.9, life_lost=life, reward_clip=1.0)
    assert r.tolist() == [[1.0], [-1.0]]
    assert d.tolist() == [[0.0], [0.9]]
