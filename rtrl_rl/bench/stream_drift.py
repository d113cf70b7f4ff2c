"""How far the stream learner's online RTRL gradient drifts from the exact one.

The parameters change every step while the sensitivities carry derivatives taken under
older parameters. Each step of a one-stream run, the online gradient of V(s_t) for the
core's parameters (the value the learner's step just computed, differentiated through
the carried sensitivities) is compared with the exact gradient under the current
parameters (plain autograd through the episode so far).
"""

from __future__ import annotations

import statistics


def measure_drift(overrides: list[str], lr: float, steps: int, seed: int = 0) -> dict:
    """The relative error |g - g*| / |g*| over the steps that are not an episode's first
    (there both are the same-step gradient), at ``stream.lr = lr``."""
    import torch

    from rtrl_rl.agents.cores.verification import relative_error
    from rtrl_rl.config import load_config
    from rtrl_rl.training.run_builder import make_env, seed_everything
    from rtrl_rl.training.stream_trainer import build_stream_agent

    torch.set_num_threads(1)
    config = load_config(None, [*overrides, f"stream.lr={lr}", f"train.seed={seed}"])
    seed_everything(seed)
    venv = make_env(config, seed)
    model, learner = build_stream_agent(config, venv.single_observation_space, venv.single_action_space)
    core_params = list(model.core.parameters())
    flat = lambda gs: torch.cat([g.reshape(-1) for g in gs])  # noqa: E731 - one line, used twice
    batch, episode, errors, steps_taken = venv.reset(), [], [], []
    inputs = (torch.as_tensor(batch.obs), torch.zeros(1, dtype=torch.int64), torch.zeros(1),
              torch.as_tensor(batch.first))
    for _ in range(steps):
        episode = [inputs] if bool(inputs[3][0]) else episode + [inputs]
        carry = learner.carry  # the carry this step starts from: the learner's act replaces it
        action = learner.act(*inputs)
        obs, prev_a, prev_r, first = inputs
        _, values, _ = model.unroll(obs[None], prev_a[None], prev_r[None], first[None], carry)
        online = torch.autograd.grad(values[0][0], core_params, allow_unused=True)
        online = [torch.zeros_like(p) if g is None else g for g, p in zip(online, core_params)]
        obs_t, prev_a_t, prev_r_t, first_t = (torch.stack(part) for part in zip(*episode))
        with torch.no_grad():
            x = model.core_input(obs_t, prev_a_t, prev_r_t, first_t)
        y = model.core.reference_forward(x, torch.zeros(1, model.core.hidden_size), first_t)
        if config.stream.layer_norm:
            y = torch.nn.functional.layer_norm(y, y.shape[-1:])
        exact = torch.autograd.grad(model.value_head(y[-1])[0], core_params)
        if len(episode) > 1:
            errors.append(relative_error(flat(online), flat(exact)))
        batch = venv.step(action.numpy())
        reward = torch.as_tensor(batch.reward, dtype=torch.float32)
        done = torch.as_tensor(batch.terminated | batch.truncated)
        stats = learner.learn(reward, torch.as_tensor(batch.terminated), done, torch.as_tensor(batch.obs))
        steps_taken.append(stats["loss/step_value"])
        first = torch.as_tensor(batch.first)
        inputs = (torch.as_tensor(batch.obs), action * ~first, reward * ~first, first)
    venv.close()
    return {"lr": lr, "steps": steps, "median_rel_error": statistics.median(errors),
            "p90_rel_error": sorted(errors)[int(0.9 * len(errors))], "max_rel_error": max(errors),
            "mean_effective_step": statistics.fmean(steps_taken)}
