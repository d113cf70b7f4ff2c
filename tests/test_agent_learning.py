"""The agent learns a small memory task on its own (no envs/ or trainer): a cue held
across several segments, acted on by ``act`` and learned by ``Learner.update``."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from gymnasium import spaces

from rtrl_rl.agents import ActorCritic, Learner

@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one thread avoids OpenMP spin-waits on a busy machine (10x here)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


K, D = 2, 4  # symbols, delay: the cue must be held D + 1 = 5 steps, over 3 segments of T = 2


class TinyRecall:
    """B streams of: cue (one-hot + flag) at t=0, D blank steps, query flag at t=D+1;
    reward 1 for naming the cue at the query, which ends the episode (terminated)."""

    observation_space = spaces.Box(0, 1, (K + 2,), np.float32)
    action_space = spaces.Discrete(K)

    def __init__(self, batch: int, seed: int) -> None:
        self.g = torch.Generator().manual_seed(seed)
        self.t = torch.zeros(batch, dtype=torch.long)
        self.cue = torch.randint(0, K, (batch,), generator=self.g)

    def obs(self) -> torch.Tensor:
        o = torch.zeros(len(self.t), K + 2)
        start = self.t == 0
        o[start, self.cue[start]] = 1.0
        o[:, K] = start.float()
        o[:, K + 1] = (self.t == D + 1).float()
        return o

    def step(self, action: torch.Tensor):
        done = self.t == D + 1
        reward = (done & (action == self.cue)).float()
        self.t = torch.where(done, 0, self.t + 1)
        self.cue = torch.where(done, torch.randint(0, K, self.cue.shape, generator=self.g), self.cue)
        return reward, done


def collect(env, model, state, inputs, T):
    """One segment of T steps in the contract's layout; returns it and the acting state."""
    obs, first, prev_action, prev_reward = inputs
    rows = {"obs": [obs], "first": [first], "prev_action": [prev_action], "prev_reward": [prev_reward]}
    steps = {k: [] for k in ("action", "behaviour_logp", "reward", "terminated")}
    for _ in range(T):
        out = model.act(obs, prev_action, prev_reward, first, state)
        reward, done = env.step(out.action)
        state, first, obs = out.state, done, env.obs()
        prev_action, prev_reward = out.action * ~done, reward * ~done
        for k, v in zip(rows, (obs, first, prev_action, prev_reward)):
            rows[k].append(v)
        for k, v in zip(steps, (out.action, out.logp, reward, done)):
            steps[k].append(v)
    seg = {k: torch.stack(v) for k, v in {**rows, **steps}.items()}
    seg.update(truncated=torch.zeros_like(seg["terminated"]), life_lost=torch.zeros_like(seg["terminated"]),
               truncation_value=torch.zeros_like(seg["reward"]))
    return seg, state, (obs, first, prev_action, prev_reward)


def train_agent(core: str, learning: str, updates: int) -> float:
    """Sampled success over the last 400 episodes, stopping early at 95%."""
    torch.manual_seed(0)
    agent = SimpleNamespace(core=core, learning=learning, hidden_size=16, encoder="identity", encoder_size=16,
                            encoder_grad="segment", forget_bias=2.0, prev_action=True, prev_reward=True)
    train = SimpleNamespace(gamma=0.9, entropy_cost=0.01, baseline_cost=0.5, optimizer="adam", lr=1e-2,
                            lr_decay=False, rmsprop_alpha=0.99, rmsprop_eps=0.01, adam_eps=1e-8,
                            max_grad_norm=40.0, reward_clip=0.0, loss_reduction="mean", total_steps=10**6)
    B, T = 64, 2
    env = TinyRecall(B, seed=0)
    model = ActorCritic(env.observation_space, env.action_space, agent)
    learner = Learner(model, train, num_streams=B)
    inputs = (env.obs(), torch.ones(B, dtype=torch.bool), torch.zeros(B, dtype=torch.long), torch.zeros(B))
    state, ids, results = model.initial_state(B), torch.arange(B), []
    for _ in range(updates):
        seg, state, inputs = collect(env, model, state, inputs, T)
        learner.update(seg, ids)
        results += seg["reward"][seg["terminated"]].tolist()
        if len(results) >= 400 and np.mean(results[-400:]) >= 0.95:
            break
    return float(np.mean(results[-400:]))


@pytest.mark.parametrize("core", ["elstm", "mingru"])
def test_rtrl_agent_learns_to_hold_a_cue_across_segments(core):
    # About 110 updates are needed (seed 0); 1500 leaves a wide margin.
    assert train_agent(core, "rtrl", 1500) >= 0.95


@pytest.mark.parametrize("core,learning", [("elstm", "tbptt"), ("none", "none")])
def test_truncated_and_feed_forward_agents_stay_near_chance(core, learning):
    """Not vacuous: the task needs memory across segment boundaries (chance is 50%)."""
    assert train_agent(core, learning, 400) < 0.7
