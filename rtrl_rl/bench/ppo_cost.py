"""The cost part of ``rtrl-rl bench ppo``: PPO's and V-trace's updates side by side, one process.

Each rule gets its own environments, model and learner, built from the default config as
``rtrl-rl train`` builds them (one torch thread). Round by round (the order alternating),
each rule collects and learns ``updates`` segments; the time of the collection and of
the update are taken apart, and inside the update:

- V-trace: its forward pass (``Learner.loss``: the unroll from the carry, which also
  updates the sensitivities, and the targets), then backward and the optimizer step;
- PPO: the carry pass (``PPOLearner.targets``, no gradient: values, GAE, the next carry),
  the replays' forward passes (``PPOLearner.loss``, one per minibatch and epoch), their
  backward passes and optimizer steps (the rest of ``PPOLearner.step``).

Inside both forward passes, the time of the element-wise cores' sensitivity update
(``scan.segment_update``, the new carry's S_T) is taken apart too: in PPO's replays that
carry is computed and not used (the carry pass gives the next segment's).
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from contextlib import contextmanager

import torch



class Clock:
    """Wall and CPU seconds spent inside wrapped callables, by name; a wrapped callable inside
    another is counted under ``outer/inner`` (its immediate caller's name)."""

    def __init__(self) -> None:
        self.seconds: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
        self.active: list[str] = []

    def wrap(self, name: str, fn):
        def timed(*args, **kwargs):
            key = "/".join([*self.active[-1:], name])
            self.active.append(name)
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                total = self.seconds[key]
                total[0] += time.perf_counter() - wall
                total[1] += time.process_time() - cpu
                self.active.pop()
        return timed

    def take(self) -> dict[str, list[float]]:
        """The [wall, CPU] seconds counted since the last call, and start again."""
        out, self.seconds = dict(self.seconds), defaultdict(lambda: [0.0, 0.0])
        return out


@contextmanager
def _timed_sensitivity_updates(clock: Clock):
    from rtrl_rl.agents.cores import scan

    original = scan.segment_update
    scan.segment_update = clock.wrap("sensitivity update", original)
    try:
        yield
    finally:
        scan.segment_update = original


class Side:
    """One rule's environments, model, learner and collector, with its update parts timed."""

    def __init__(self, rule: str, overrides: list[str], clock: Clock) -> None:
        """``rule``: vtrace or ppo; ``overrides``: the rule's whole config (over the defaults)."""
        from rtrl_rl.config import load_config
        from rtrl_rl.training.rollout import Collector, allocate_segment
        from rtrl_rl.training.run_builder import build_agent, make_env, seed_everything

        self.rule, self.clock = rule, clock
        self.config = config = load_config(None, overrides)
        seed_everything(config.train.seed)
        self.venv = make_env(config, config.train.seed)
        obs, act = self.venv.single_observation_space, self.venv.single_action_space
        self.model, self.learner = build_agent(config, obs, act)
        T, B = config.train.segment_length, self.venv.num_envs
        self.collector = Collector(self.venv, self.model, T)
        self.segment = allocate_segment(obs, act, T, B)
        self.ids, self.steps = torch.arange(B), T * B
        learner = self.learner
        if rule == "vtrace":
            learner.loss = clock.wrap("forward", learner.loss)
        else:
            learner.targets = clock.wrap("carry pass", learner.targets)
            learner.loss = clock.wrap("replay forward", learner.loss)
            learner.step = clock.wrap("minibatch step", learner.step)

    def advance(self) -> tuple[float, float, float, float]:
        """Collect a segment and update on it: wall and CPU seconds of the collection, then
        of the update."""
        wall, cpu = time.perf_counter(), time.process_time()
        self.collector.collect(self.segment)
        wall_mid, cpu_mid = time.perf_counter(), time.process_time()
        self.learner.update(self.segment, self.ids)
        return wall_mid - wall, cpu_mid - cpu, time.perf_counter() - wall_mid, time.process_time() - cpu_mid

    def close(self) -> None:
        self.venv.close()


#: the parts of each rule's update: name in the JSON -> (clock key, clock key subtracted)
PARTS = {
    "vtrace": {"forward": ("forward", None), "forward_sensitivity_update": ("forward/sensitivity update", None)},
    "ppo": {"carry_pass": ("carry pass", None),
            "carry_pass_sensitivity_update": ("carry pass/sensitivity update", None),
            "epochs": ("minibatch step", None),
            "replay_forward": ("minibatch step/replay forward", None),
            "replay_sensitivity_update": ("replay forward/sensitivity update", None),
            "replay_backward_and_step": ("minibatch step", "minibatch step/replay forward")},
}


def _round(side: Side, updates: int) -> dict:
    """Time ``updates`` updates of ``side``. Per update, wall and CPU seconds (``wall``,
    ``cpu``) of the collection, the update and its parts; steps/s by wall and CPU time."""
    side.clock.take()
    totals = [0.0] * 4
    for _ in range(updates):
        totals = [t + x for t, x in zip(totals, side.advance())]
    parts = side.clock.take()
    row: dict = {}
    for i, kind in enumerate(("wall", "cpu")):
        collect, update = totals[i] / updates, totals[2 + i] / updates
        clocked = {name: (parts.get(key, [0.0, 0.0])[i] - (parts.get(minus, [0.0, 0.0])[i] if minus else 0.0))
                   / updates for name, (key, minus) in PARTS[side.rule].items()}
        row[kind] = {"collect_s": collect, "update_s": update, **{f"{k}_s": v for k, v in clocked.items()},
                     "steps_per_s": side.steps / (collect + update), "learner_steps_per_s": side.steps / update}
    return row


def measure(rounds: int, updates: int, overrides: dict[str, list[str]], warmup: int = 3) -> dict:
    """Interleave ``rounds`` rounds of ``updates`` updates per rule; the per-round figures
    and their medians (``summary``: per rule, and PPO's steps/s as a share of V-trace's).

    ``overrides``: the config overrides of "vtrace" and of "ppo" (over the defaults)."""
    torch.set_num_threads(1)
    clock = Clock()
    with _timed_sensitivity_updates(clock):
        sides = [Side(rule, overrides[rule], clock) for rule in ("vtrace", "ppo")]
        try:
            for side in sides:
                for _ in range(warmup):
                    side.advance()
            per_round: dict[str, list[dict]] = {side.rule: [] for side in sides}
            for r in range(rounds):
                for side in sides if r % 2 == 0 else sides[::-1]:  # neither always goes first
                    per_round[side.rule].append(_round(side, updates))
        finally:
            for side in sides:
                side.close()
    summary = {rule: {kind: {k: statistics.median(row[kind][k] for row in rows) for k in rows[0][kind]}
                      for kind in ("wall", "cpu")} for rule, rows in per_round.items()}
    for kind in ("wall", "cpu"):
        v, p = summary["vtrace"][kind], summary["ppo"][kind]
        summary[f"ppo_over_vtrace_{kind}"] = {"steps_per_s": p["steps_per_s"] / v["steps_per_s"],
                                               "update_s": p["update_s"] / v["update_s"]}
    ppo = sides[1].config.ppo
    return {"rounds": rounds, "updates_per_round": updates, "warmup_updates": warmup,
            "segment": {"length": sides[0].config.train.segment_length, "streams": sides[0].config.env.num_envs},
            "ppo": {"epochs": ppo.epochs, "minibatches": ppo.minibatches}, "per_round": per_round,
            "summary": summary}
