"""Stream AC(λ): the update by hand (traces, ObGD bound, resets), the exact RTRL gradient
of one step with parameters held, the stream-x ingredients, and the CLI hook."""

import math

import pytest
import torch
from gymnasium import spaces

from rtrl_rl.agents import ActorCritic
from rtrl_rl.agents.cores import elementwise_cores
from rtrl_rl.agents.stream_learner import (
    FlatTraces,
    RunningMeanVar,
    StreamLearner,
    decay_traces,
    obgd_step,
    sparse_init_,
)
from rtrl_rl.agents.cores.verification import random_resets, relative_error
from rtrl_rl.config import StreamConfig, build_config, load_config
from rtrl_rl.training.stream_trainer import build_stream_agent

F64 = torch.float64


def test_traces_and_obgd_step_by_hand():
    p = torch.tensor([1.0, 2.0])
    z = [torch.tensor([[0.5, -1.0]])]
    decay_traces(z, [torch.tensor([[1.0, 1.0]])], 0.5)  # z = 0.5 z + g
    assert z[0].tolist() == [[1.25, 0.5]]
    # |z|_1 = 1.75, δ = 2 -> max(|δ|, 1) = 2; bound = lr κ 2 |z|_1 = 1 * 2 * 2 * 1.75 = 7 > 1
    step = obgd_step([p], z, torch.tensor([2.0]), lr=1.0, kappa=2.0)
    assert step == pytest.approx(1 / 7)
    torch.testing.assert_close(p, torch.tensor([1 + 2 * 1.25 / 7, 2 + 2 * 0.5 / 7]))
    # small TD error and step size: bound = 0.1 * 2 * 1 * 1.75 = 0.35 <= 1, the plain step
    q = torch.tensor([0.0, 0.0])
    assert obgd_step([q], z, torch.tensor([0.1]), lr=0.1, kappa=2.0) == pytest.approx(0.1)
    torch.testing.assert_close(q, 0.1 * 0.1 * z[0][0])


def test_obgd_with_several_streams_bounds_the_mean_update():
    p = torch.zeros(2)
    z = [torch.tensor([[1.0, 0.0], [0.0, 3.0]])]
    delta = torch.tensor([0.5, -2.0])
    # bound = lr κ mean_b(max(|δ_b|,1) |z_b|_1) = 1 * 1 * (1 * 1 + 2 * 3) / 2 = 3.5
    step = obgd_step([p], z, delta, lr=1.0, kappa=1.0)
    assert step == pytest.approx(1 / 3.5)
    torch.testing.assert_close(p, torch.tensor([0.5 * 1.0, -2.0 * 3.0]) / 2 / 3.5)


@pytest.mark.parametrize("streams", [1, 3])
def test_flat_traces_give_the_per_parameter_update_bit_for_bit(streams):
    # the learner keeps its traces flat for speed; decay, ObGD step and reset must stay
    # exactly decay_traces + obgd_step on per-parameter traces (same float sums)
    gen = torch.Generator().manual_seed(0)
    shapes = [(5, 3), (5,), (2, 5), (1,)]
    params = [torch.randn(s, generator=gen) for s in shapes]
    ref_params, ref_traces = [p.clone() for p in params], [torch.zeros(streams, *s) for s in shapes]
    flat = FlatTraces(params, streams)
    for t in range(4):
        grads = [[torch.randn(s, generator=gen) * 10 for s in shapes] for _ in range(streams)]
        delta = torch.randn(streams, generator=gen) * 3
        decay_traces(ref_traces, [torch.stack(g) for g in zip(*grads)], 0.72)
        flat.accumulate(grads, 0.72)
        assert flat.step(delta, 1.0, 2.0) == obgd_step(ref_params, ref_traces, delta, 1.0, 2.0)
        done = torch.arange(streams) == t % streams
        flat.reset(done)
        for z in ref_traces:
            z[done] = 0.0
        assert all(torch.equal(p, q) for p, q in zip(params, ref_params))
        assert all(torch.equal(z, r) for z, r in zip(flat.views, ref_traces))


def test_the_flat_update_check_finds_any_entry_that_is_not_finite():
    params = [torch.zeros(4, 3), torch.zeros(5)]
    flat = FlatTraces(params, 1)
    flat.accumulate([[torch.ones(4, 3), torch.ones(5)]], 0.5)
    flat.prepare(torch.tensor([2.0]), 1.0, 1.0)
    assert flat.update_is_finite() and torch.equal(flat.update, torch.full((17,), 2.0))
    for bad in ([math.nan], [math.inf], [-math.inf], [math.inf, -math.inf]):  # the last: inf - inf is NaN
        update = flat.update.clone()
        update[torch.arange(len(bad)) * 5] = torch.tensor(bad)
        flat.update.copy_(update)
        assert not flat.update_is_finite(), bad
        flat.update.fill_(1.0)
        assert flat.update_is_finite()


def _tiny(core="elstm", learning="rtrl", **stream):
    space, actions = spaces.Box(-1.0, 1.0, (2,)), spaces.Discrete(2)
    agent = {"core": core, "learning": learning, "hidden_size": 3, "encoder": "identity", "prev_action": False,
                 "prev_reward": False}
    cfg = load_config(None, [f"agent.{k}={v}" for k, v in agent.items()]
                      + [f"stream.{k}={v}" for k, v in stream.items()] + ["env.num_envs=2"])
    torch.manual_seed(0)
    model, learner = build_stream_agent(cfg, space, actions)
    return cfg, model.double(), learner


def _rebuild(cfg, model):
    """A learner whose traces follow the model's (float64) parameters."""
    return StreamLearner(model, cfg.stream, cfg.train.gamma, cfg.env.num_envs)


def test_learner_traces_decay_accumulate_and_reset_at_episode_ends():
    cfg, model, _ = _tiny(lr=1e-3, reward_scale=False, obs_norm=False)
    learner = _rebuild(cfg, model)
    gl = cfg.train.gamma * cfg.stream.trace_lambda
    gen = torch.Generator().manual_seed(1)
    obs = lambda: torch.rand(2, 2, generator=gen, dtype=F64)
    first = torch.ones(2, dtype=torch.bool)
    expected = [torch.zeros_like(z) for z in learner.z_value]
    for t in range(3):
        learner.act(obs(), torch.zeros(2, dtype=torch.int64), torch.zeros(2), first)
        value = learner._pending[0]
        grads = [torch.stack(g) for g in zip(*(learner._grads(value[b]) for b in range(2)))]
        before = [p.detach().clone() for p in learner.params]
        done = torch.tensor([False, t == 1])  # stream 1's episode ends at step 1
        stats = learner.learn(torch.tensor([1.0, 0.0]), done, done, obs())
        for e, g in zip(expected, grads):
            e.mul_(gl).add_(g)
        for z, e in zip(learner.z_value, expected):
            torch.testing.assert_close(z[0], e[0])
            torch.testing.assert_close(z[1], torch.zeros_like(e[1]) if t == 1 else e[1])
        for e in expected:
            e[done] = 0.0
        # ObGD's bound held: lr κ mean_b(max(|δ|,1)|z|_1) * step / lr <= 1
        assert 0 < stats["loss/step_value"] <= cfg.stream.lr
        assert any(not torch.equal(p, q) for p, q in zip(learner.params, before))
        first = done


@pytest.mark.parametrize("core", elementwise_cores())
def test_one_step_gradient_with_held_parameters_is_full_stream_bptt(core):
    # an update step of 1e-300 leaves float64 parameters bit-for-bit unchanged, so the
    # learner's per-stream gradient of V(s_t) must equal autograd through the whole stream
    cfg, model, _ = _tiny(core, lr=1e-300, obs_norm=False, sparse_init=0.0)
    learner = _rebuild(cfg, model)
    T, gen = 6, torch.Generator().manual_seed(2)
    xs = torch.rand(T, 2, 2, generator=gen, dtype=F64)
    resets = random_resets(T, 2, 2, gen)
    resets[0] = True
    start = [p.detach().clone() for p in learner.params]
    zeros = torch.zeros(2, dtype=torch.int64)
    for t in range(T):
        learner.act(xs[t], zeros, torch.zeros(2), resets[t])
        if t < T - 1:
            learner.learn(torch.ones(2), resets[t + 1], resets[t + 1], xs[t + 1])
    # held: unchanged, but for parameters initialised at exactly 0 (LRU), which the step moves by ~1e-300
    assert all(torch.allclose(p, q, rtol=0, atol=1e-250) for p, q in zip(learner.params, start))
    value, logp = learner._pending[0], learner._pending[1]
    got = [learner._grads(value[b]) for b in range(2)] + [learner._grads(logp[b]) for b in range(2)]
    x = model.core_input(xs, zeros.expand(T, 2), torch.zeros(T, 2), resets)
    (s0,) = model.initial_state(2).values()  # zeros, n per stream (2n for LRU's complex pairs)
    y = model.core.reference_forward(x, s0, resets)
    y = torch.nn.functional.layer_norm(y, y.shape[-1:])
    ref_value, ref_logits = model.value_head(y[-1]), model.policy(y[-1])
    ref_logp = model.policy.log_prob(ref_logits, learner._pending[3])
    for i, out in enumerate([ref_value[0], ref_value[1], ref_logp[0], ref_logp[1]]):
        want = torch.autograd.grad(out, learner.params, retain_graph=True, allow_unused=True)
        for g, w, p in zip(got[i], want, learner.params):
            assert relative_error(g, torch.zeros_like(p) if w is None else w) < 1e-10


def test_truncated_core_ablation_has_no_sensitivities_and_feed_forward_none():
    _, _, ablation = _tiny(learning="tbptt")
    assert not ablation.carry.has_sensitivities and "c" in ablation.carry
    _, _, ff = _tiny(core="none", learning="none")
    assert len(ff.carry) == 0


def test_sparse_init_zeroes_the_stated_fraction_and_keeps_the_forget_bias():
    agent = load_config(None, ["agent.hidden_size=10", "agent.encoder_size=10"]).agent
    model = ActorCritic(spaces.Box(-1, 1, (20,)), spaces.Discrete(3), agent)
    sparse_init_(model, 0.9)
    weight = model.encoder.net[0].weight  # (10, 20): 18 of each row's 20 inputs are zero
    assert ((weight == 0).sum(1) >= 18).all() and (model.encoder.net[0].bias == 0).all()
    assert (model.core.bias[10:] == 3.0).all()


def test_running_mean_var_and_reward_scaling():
    stats = RunningMeanVar((2,))
    data = torch.tensor([[1.0, 0.0], [3.0, 0.0], [5.0, 6.0]])
    stats.update(data)
    torch.testing.assert_close(stats.mean, data.mean(0))
    torch.testing.assert_close(stats.var, data.var(0))
    cfg, model, _ = _tiny()
    learner = _rebuild(cfg, model)
    learner.returns = torch.tensor([1.0, 2.0])
    scaled = learner._scale_reward(torch.tensor([1.0, -1.0]), torch.tensor([False, True]))
    returns = torch.tensor([cfg.train.gamma + 1.0, 2 * cfg.train.gamma - 1.0])
    torch.testing.assert_close(scaled, torch.tensor([1.0, -1.0]) / math.sqrt(returns.var().item() + 1e-8))
    assert learner.returns.tolist()[1] == 0.0, "a finished episode restarts its return"


def test_stream_config_validation(tmp_path):
    from rtrl_rl import cli

    assert cli.main(["train", "agent.algorithm=streaming"]) == 2
    assert cli.main(["train", "agent.algorithm=stream", "runtime.actors=2", f"run_dir={tmp_path}/a"]) == 2
    assert cli.main(["train", "agent.algorithm=stream", "stream.sparse_init=1.5", f"run_dir={tmp_path}/b"]) == 2
    assert StreamConfig().lr == 1.0


def test_one_stream_learns_a_small_memory_task_above_chance(tmp_path):
    # recall with 2 symbols and 2 blank steps: the cue is gone when the query comes, so
    # chance is 0.5. Measured: greedy success 1.00 over 200 episodes after 800 steps of
    # one stream in seeds 0, 1 and 2; asserted >= 0.8
    from rtrl_rl.training.stream_trainer import train_stream

    cfg = load_config(None, [
        "agent.algorithm=stream", "env.num_envs=1", "env.options.delay=2", "env.options.num_symbols=2",
        "env.options.distractors=false", "agent.hidden_size=16", "agent.encoder_size=16",
        "train.total_steps=800", "log.eval_episodes=200", "log.eval_interval_steps=1000000",
        "log.progress=false", "log.tensorboard=false", f"run_dir={tmp_path / 'run'}"])
    summary = train_stream(cfg)
    assert summary["steps"] == 800 and summary["success_rate"] >= 0.8


@pytest.mark.parametrize("agent", [*([f"agent.core={core}"] for core in elementwise_cores()),
                                   ["agent.learning=tbptt"],
                                   ["agent.core=none", "agent.learning=none"]])
def test_every_core_and_the_baselines_run_with_several_streams(tmp_path, agent):
    from rtrl_rl.training.stream_trainer import train_stream

    cfg = load_config(None, ["agent.algorithm=stream", "env.num_envs=3", "env.options.delay=2",
                             "agent.hidden_size=8", "agent.encoder_size=8", "train.total_steps=60",
                             "log.eval_episodes=4", "log.progress=false", "log.tensorboard=false",
                             f"run_dir={tmp_path / 'run'}", *agent])
    summary = train_stream(cfg)
    assert summary["steps"] == 60 and summary["updates"] == 20
    assert (tmp_path / "run" / "model.pt").exists()


def test_evaluate_rebuilds_a_stream_run_as_it_learned(tmp_path, capsys):
    # the stream model's LayerNorm and observation normaliser live in hooks outside the state
    # dict: `rtrl-rl evaluate` must rebuild them, or it plays a different policy than the run's
    import json

    from rtrl_rl.cli import main
    from rtrl_rl.training.stream_trainer import train_stream

    cfg = load_config(None, [
        "agent.algorithm=stream", "env.num_envs=1", "env.options.delay=2", "env.options.num_symbols=2",
        "env.options.distractors=false", "agent.hidden_size=16", "agent.encoder_size=16",
        "train.total_steps=800", "log.eval_episodes=200", "log.eval_interval_steps=1000000",
        "log.progress=false", "log.tensorboard=false", f"run_dir={tmp_path / 'run'}"])
    trained = train_stream(cfg)["success_rate"]
    assert main(["evaluate", str(tmp_path / "run"), "--episodes", "200", "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)["success_rate"]
    assert trained >= 0.8 and evaluated >= 0.8  # chance is 0.5


def test_evaluation_model_normalises_observations_by_the_saved_statistics(tmp_path):
    from rtrl_rl.commands.evaluate import evaluation_model
    from rtrl_rl.config import build_config
    from rtrl_rl.run.checkpoint import load_checkpoint
    from rtrl_rl.training.stream_trainer import train_stream

    cfg = load_config(None, ["agent.algorithm=stream", "env.id=gym:CartPole-v1", "env.num_envs=1",
                             "agent.hidden_size=8", "agent.encoder_size=8", "train.total_steps=200",
                             "log.eval_episodes=0", "log.progress=false", "log.tensorboard=false",
                             f"run_dir={tmp_path / 'run'}"])
    train_stream(cfg)
    payload = load_checkpoint(tmp_path / "run" / "model.pt")
    stats = payload["learner"]["obs_stats"]
    assert stats is not None and stats["count"] > 0
    model = evaluation_model(payload, build_config(payload["config"]), *_cartpole_spaces())
    seen = []
    model.encoder.register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0]))
    obs = torch.tensor([[0.5, -1.0, 0.1, 2.0]])
    with torch.no_grad():
        model.encoder(obs)
    var = stats["m2"] / max(stats["count"] - 1, 1)
    torch.testing.assert_close(seen[-1], (obs - stats["mean"]) / (var + 1e-8).sqrt(), rtol=1e-4, atol=1e-5)


def test_a_stream_run_resumes_from_its_checkpoint_with_new_episodes(tmp_path):
    # `rtrl-rl train --resume` continues a stream run: counters, parameters and normaliser
    # statistics come back, and the traces and carry restart with the new episodes
    from rtrl_rl.cli import main
    from rtrl_rl.run.checkpoint import load_checkpoint

    run = tmp_path / "run"
    common = ["agent.hidden_size=8", "agent.encoder_size=8", "log.eval_episodes=0", "log.progress=false",
              "log.tensorboard=false"]
    assert main(["train", "agent.algorithm=stream", "env.id=gym:CartPole-v1", "env.num_envs=1",
                 "train.total_steps=200", f"run_dir={run}", *common]) == 0
    first = load_checkpoint(run / "model.pt")
    assert main(["train", "--resume", str(run), "train.total_steps=400"]) == 0
    second = load_checkpoint(run / "model.pt")
    assert (first["step"], second["step"]) == (200, 400) and second["learner"]["updates"] == 400
    count = first["learner"]["obs_stats"]["count"], second["learner"]["obs_stats"]["count"]
    assert count == (200, 400), "one observation per step acted on: the statistics continue, they do not restart"
    assert any(not torch.equal(first["model"][k], second["model"][k]) for k in first["model"])

    model, learner = build_stream_agent(build_config(first["config"]), *_cartpole_spaces())
    learner.load_state_dict(first["learner"])
    mean = learner.obs_stats.mean.clone()
    learner.restart_episodes()
    assert all(not z.any() for z in [*learner.z_value, *learner.z_policy]) and not learner.returns.any()
    assert torch.equal(learner.obs_stats.mean, mean) and learner.obs_stats.count == 200 and learner.updates == 200


def _cartpole_spaces():
    import gymnasium as gym

    env = gym.make("CartPole-v1")
    try:
        return env.observation_space, env.action_space
    finally:
        env.close()
