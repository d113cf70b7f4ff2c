"""The POPGym benchmark: this library's learning rules side by side on POPGym's memory tasks.

A grid of (task, rule, seed) runs, each a plain synchronous ``rtrl-rl train`` run (the
memory experiment's runner, :func:`rtrl_rl.experiments.memory.run_one`, on its process
pool) with the same budget of environment steps, TensorBoard on (the training curve) and
one greedy evaluation at the end. The metric is POPGym's MMER (:func:`mmer`) plus that
final evaluation return.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from rtrl_rl.experiments.aggregate import _std
from rtrl_rl.experiments.popgym_targets import BEST_RTRL

#: segment length of every truncated rule (and of RTRL's updates), as in the other experiments
SEGMENT_LENGTH = 10
#: MMER windows: this many environment steps each (POPGym averages over train batches)
WINDOW_STEPS = 100_000


@dataclass(frozen=True)
class Task:
    """A POPGym task of the benchmark: its ``popgym:`` name and its episode length (steps).

    ``episode`` is the longest episode in steps (popgym's ``max_episode_length``; for HigherLower
    and Concentration, which do not define it, the length measured with random play: 51 and
    104, their decks' lengths): the segment
    of the episode-long BPTT rule. ``why`` says what memory the task needs.
    """

    name: str
    episode: int
    why: str


TASKS: dict[str, Task] = {t.name: t for t in [
    Task("RepeatPreviousEasy", 51, "output the card seen 4 steps ago"),
    Task("RepeatFirstEasy", 51, "output the first card of the episode"),
    Task("AutoencodeEasy", 103, "watch a sequence, then play it back in reverse"),
    Task("CountRecallEasy", 51, "how often has this card been seen"),
    Task("HigherLowerEasy", 51, "will the next card be higher (counting cards helps)"),
    Task("ConcentrationEasy", 104, "remember face-down cards to find pairs"),
    Task("PositionOnlyCartPoleEasy", 200, "infer the velocities from positions"),
    Task("NoisyPositionOnlyCartPoleEasy", 200, "the same with noisy positions"),
    Task("VelocityOnlyCartpoleEasy", 200, "infer the positions from velocities"),
    Task("MineSweeperEasy", 14, "remember the revealed cells"),
    Task("BattleshipEasy", 64, "remember the shots and hits"),
    Task("MultiarmedBanditEasy", 200, "remember which arm paid"),
    Task("RepeatPreviousMedium", 103, "output the card seen 32 steps ago (beyond any cheap segment)"),
]}

#: the RTRL cores of the grid, one rule each (``rtrl-<core>``); a new exact core joins with
#: ``--rtrl-cores elstm mingru <name>`` (any name ``agent.core`` accepts)
RTRL_CORES = ["lru", "elstm", "mingru"]
#: RTRL's input-gradient setting on POPGym: the ``step`` default starves the encoder here
RTRL_EXTRA = ["agent.encoder_grad=segment"]
#: settings of every run of every rule (after the task, before the rule's own overrides).
#: POPGym's per-step rewards are small (±1/episode length), so the default entropy cost 0.01
#: outweighs the policy gradient; 0.001 was chosen on RepeatFirstEasy and CountRecallEasy
#: (for RTRL lru and TBPTT LSTM alike: the page's "Levers" table) and held fixed for all tasks.
SHARED = ["train.entropy_cost=0.001"]
#: the overrides of the best RTRL agent found (:data:`BEST_RTRL`, the rule the targets judge):
#: lru with the input mixer (a linear recurrence needs a non-linear layer to store an input
#: gated by the episode start). Chosen on RepeatFirstEasy, CountRecallEasy and MineSweeperEasy
#: (the levers on the page); LayerNorm on the core output (the ``core-norm`` levers) kept lru
#: from diverging on MineSweeperEasy but cost RepeatFirstEasy 0.5 of MMER, so it is left out.
BEST_OVERRIDES = ["agent.core=lru", "agent.learning=rtrl", *RTRL_EXTRA, "agent.input_mixer=true"]


#: variants of the RTRL LRU rule (the levers tried on the tuning tasks): name -> (what changes, overrides)
LEVERS: dict[str, tuple[str, list[str]]] = {
    "identity-encoder": ("no encoder (one-hot observation straight into the core)", ["agent.encoder=identity"]),
    "step-encoder-grad": ("encoder gradient of the same step only", ["agent.encoder_grad=step"]),
    "two-layers": ("a stack of two LRU layers", ["agent.core_layers=2"]),
    "start-flag": ("an episode-start flag as input", ["agent.start_flag=true"]),
    "wide": ("n = 128 units", ["agent.hidden_size=128"]),
    "lr-1e-3": ("Adam learning rate 1e-3", ["train.lr=0.001"]),
    "input-mixer": ("a ReLU layer over the whole step input before the core", ["agent.input_mixer=true"]),
    "core-norm": ("LayerNorm on the core output", ["agent.core_norm=true"]),
    "mixer-norm": ("the input mixer and LayerNorm on the core output",
                   ["agent.input_mixer=true", "agent.core_norm=true"]),
    # tried on MineSweeperEasy, where the best rule (the mixer) stays below TBPTT LSTM and diverges once
    "mixer-wide": ("the input mixer, n = 128 units", ["agent.input_mixer=true", "agent.hidden_size=128"]),
    "mixer-lr-1e-3": ("the input mixer, Adam learning rate 1e-3", ["agent.input_mixer=true", "train.lr=0.001"]),
    "mixer-two-layers": ("the input mixer, a stack of two LRU layers", ["agent.input_mixer=true", "agent.core_layers=2"]),
}
#: variants of every grid rule (``<rule>+<lever>``): the shared settings put back to the library's
SHARED_LEVERS: dict[str, tuple[str, list[str]]] = {
    "entropy-1e-2": ("entropy cost 0.01 (the library's default)", ["train.entropy_cost=0.01"]),
}


def rules(rtrl_cores: list[str] | None = None) -> dict[str, tuple[str, list[str]]]:
    """rule -> (label, overrides). ``{episode}`` in an override is the task's episode length.

    Beyond the grid's rules, one ``rtrl-lru+<lever>`` rule per :data:`LEVERS` entry and one
    ``<rule>+<lever>`` per grid rule and :data:`SHARED_LEVERS` entry (run them with ``--rules``;
    the full grid leaves them out)."""
    out = {BEST_RTRL: ("RTRL lru, input mixer", BEST_OVERRIDES)}
    out.update({f"rtrl-{core}": (f"RTRL {core}", [f"agent.core={core}", "agent.learning=rtrl", *RTRL_EXTRA])
                for core in (rtrl_cores or RTRL_CORES)})
    out["tbptt-lstm"] = (f"TBPTT LSTM (T = {SEGMENT_LENGTH})", ["agent.core=lstm", "agent.learning=tbptt"])
    out["tbptt-gru"] = (f"TBPTT GRU (T = {SEGMENT_LENGTH})", ["agent.core=gru", "agent.learning=tbptt"])
    out["tbptt-lstm-episode"] = ("TBPTT LSTM (T = episode)", ["agent.core=lstm", "agent.learning=tbptt",
                                                              "train.segment_length={episode}"])
    out["feedforward"] = ("feed-forward", ["agent.core=none", "agent.learning=none"])
    lru = ["agent.core=lru", "agent.learning=rtrl", *RTRL_EXTRA]
    base = dict(out)
    out.update({f"rtrl-lru+{name}": (f"RTRL lru, {what}", [*lru, *extra]) for name, (what, extra) in LEVERS.items()})
    out.update({f"{rule}+{name}": (f"{label}, {what}", [*overrides, *extra])
                for rule, (label, overrides) in base.items() for name, (what, extra) in SHARED_LEVERS.items()})
    return out


def grid_rules(rtrl_cores: list[str] | None = None) -> dict[str, tuple[str, list[str]]]:
    """The rules a grid runs unless ``--rules`` names others: all but the levers."""
    return {k: v for k, v in rules(rtrl_cores).items() if "+" not in k}


@dataclass
class Grid:
    """What to run: tasks, rules, seeds, one step budget for every run."""

    name: str
    tasks: list[str]
    rules: dict[str, tuple[str, list[str]]]
    seeds: list[int]
    total_steps: int
    eval_episodes: int = 256
    extra: list[str] = field(default_factory=list)  # overrides of every run (the tests shrink runs)

    def overrides(self, task: str, rule: str, seed: int) -> list[str]:
        """The ``rtrl-rl train`` overrides of one run (env.id first: it resets env.options)."""
        t = TASKS[task]
        rule_overrides = [o.format(episode=t.episode) for o in self.rules[rule][1]]
        return [f"env.id=popgym:{t.name}", f"train.segment_length={SEGMENT_LENGTH}", *SHARED, *rule_overrides,
                f"train.total_steps={self.total_steps}", "train.target_success=0", "train.threads=1",
                f"train.seed={seed}", f"log.eval_interval_steps={10 * self.total_steps}",
                f"log.eval_episodes={self.eval_episodes}", "log.progress=false", "log.tensorboard=true",
                *self.extra]

    def specs(self) -> list[dict]:
        """One dict per run (the memory runner's fields; ``length`` is the run's segment).

        Seed-major, then task, then rule: the rules of a task run side by side (under the same
        load, so their wall times compare), and an interrupted grid has whole seeds."""
        out = []
        for seed in self.seeds:
            for task in self.tasks:
                for rule in self.rules:
                    overrides = self.overrides(task, rule, seed)
                    segment = [o for o in overrides if o.startswith("train.segment_length=")][-1]
                    out.append({"task": task, "rule": rule, "seed": seed, "length": int(segment.split("=")[1]),
                                "overrides": overrides})
        return out


def full_grid(rtrl_cores: list[str] | None = None) -> Grid:
    """Every task, every rule, 3 seeds, 3M steps per run."""
    return Grid("full", list(TASKS), grid_rules(rtrl_cores), [0, 1, 2], 3_000_000)


def quick_grid(rtrl_cores: list[str] | None = None) -> Grid:
    """Three tasks (a dependency inside the segment, one beyond it, counting), one seed, 1M steps."""
    return Grid("quick", ["RepeatPreviousEasy", "RepeatFirstEasy", "CountRecallEasy"], grid_rules(rtrl_cores), [0],
                1_000_000)


def tiny_grid() -> Grid:
    """Seconds-long plumbing check for the tests."""
    return Grid("tiny", ["RepeatPreviousEasy", "MineSweeperEasy"], {k: v for k, v in rules().items()
                                                                      if k in ("rtrl-elstm", "tbptt-lstm-episode")},
                [0], 2_560, eval_episodes=8, extra=["env.num_envs=16"])


def training_curve(run_dir: str | Path) -> list[tuple[int, float, float]]:
    """(step, wall time in s since the first logged point, mean return) from TensorBoard.

    Each point is one update's ``charts/episodic_return``: the mean return of the episodes
    that ended during that update's segment.
    """
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    if "charts/episodic_return" not in acc.Tags()["scalars"]:
        return []
    events = acc.Scalars("charts/episodic_return")
    t0 = events[0].wall_time
    return [(int(e.step), round(e.wall_time - t0, 3), float(e.value)) for e in events]


def window_means(curve: list[tuple[int, float, float]], window: int = WINDOW_STEPS) -> list[tuple[int, float]]:
    """(window end step, mean of the curve's values in it) for windows (k*window, (k+1)*window].

    Points are (step, wall, value) or (step, value); empty windows are skipped.
    """
    buckets: dict[int, list[float]] = {}
    for point in curve:
        buckets.setdefault((point[0] - 1) // window, []).append(point[-1])
    return [((k + 1) * window, statistics.fmean(v)) for k, v in sorted(buckets.items())]


def mmer(curve: list[tuple[int, float, float]], window: int = WINDOW_STEPS) -> float | None:
    """POPGym's max-mean episodic return: the largest window mean of the training curve.

    None when no episode ended. Window means are means of the per-update means (every
    update of a run has the same T x B steps), not of the individual episodes.
    """
    means = window_means(curve, window)
    return max(v for _, v in means) if means else None


#: the peer's rule name in the grid and the JSON
PEER = "sb3-recurrentppo"
PEER_LABEL = "SB3-contrib RecurrentPPO (MlpLstmPolicy)"
#: the embedded default task, on which wall time to 95% greedy success is compared
RECALL = {"spec": "memory:recall", "options": {"delay": 40, "num_symbols": 4, "distractors": True},
          "target": 0.95, "eval_interval_steps": 20_000, "eval_episodes": 256}


def peer_specs(tasks: list[str], seeds: list[int], total_steps: int, wall_s: float = 0.0) -> list[dict]:
    """The peer's runs on POPGym tasks: the same ids and seeds as the grid, ``total_steps``
    each, or (``wall_s > 0``) as many steps as ``wall_s`` seconds of training allow."""
    return [{"task": t, "rule": PEER, "seed": s, "kind": "peer", "total_steps": total_steps, "wall_s_budget": wall_s}
            for t in tasks for s in seeds]


def recall_specs(peer_steps: int, seeds: list[int]) -> list[dict]:
    """``rtrl-rl train`` (the defaults) and the peer on the default task, to 95% greedy success."""
    out = [{"task": "memory:recall", "rule": "rtrl-rl-default", "seed": s, "length": 10,
            "overrides": [f"train.seed={s}", "train.threads=1", "log.progress=false", "log.tensorboard=false"]}
           for s in seeds]
    return out + [{"task": "memory:recall", "rule": PEER, "seed": s, "kind": "peer-recall", "total_steps": peer_steps}
                  for s in seeds]


def _time_to(evaluations: list[dict], target: float) -> float | None:
    """Wall time of the first evaluation at or above ``target`` greedy success; None if never."""
    return next((e["wall_s"] for e in evaluations if (e.get("success_rate") or 0.0) >= target), None)


def _peer(spec: dict) -> dict:
    """Run the peer for one spec (``kind`` peer or peer-recall)."""
    from rtrl_rl.experiments.peers import run_recurrent_ppo

    if spec["kind"] == "peer":
        return run_recurrent_ppo(f"popgym:{TASKS[spec['task']].name}", spec["total_steps"], spec["seed"],
                                 eval_episodes=spec.get("eval_episodes", 256),
                                 wall_budget_s=spec.get("wall_s_budget", 0.0))
    return run_recurrent_ppo(RECALL["spec"], spec["total_steps"], spec["seed"], options=RECALL["options"],
                             eval_episodes=RECALL["eval_episodes"],
                             eval_interval_steps=RECALL["eval_interval_steps"], target_success=RECALL["target"])


def run_task(spec: dict, work_dir: str) -> dict:
    """One run of the grid: the memory runner (or the peer), then curve, MMER, final return."""
    import contextlib
    import traceback

    from rtrl_rl.experiments.memory import run_one

    started = time.time()
    if spec.get("kind", "train") == "train":
        result = run_one(spec, work_dir)
    else:
        result = {k: spec[k] for k in ("task", "rule", "seed")}
        budget = (f"{spec['wall_s_budget']:.0f} s of training" if spec.get("wall_s_budget")
                  else f"{spec['total_steps']:,} steps")
        result["command"] = f"python -m benchmarks.popgym (peer adapter, {budget})"
        log = Path(work_dir) / f"{spec['task'].replace(':', '-')}-{spec['rule']}-s{spec['seed']}.log"
        with open(log, "w") as out, contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            try:
                result.update(_peer(spec))
            except Exception:  # noqa: BLE001 - reported in the results, never hidden
                result["error"] = traceback.format_exc()
    result["started_unix"] = round(started, 1)
    if "error" in result:
        return result
    if result["task"] == RECALL["spec"]:
        result["time_to_target_s"] = _time_to(result.get("evaluations", []), RECALL["target"])
        return result
    curve = result["curve"] if "curve" in result else training_curve(result["run_dir"])
    # wall times to 3 and returns to 5 decimals: the saved grid stays small, and MMER comes from what is saved
    result["curve"] = [[step, round(wall, 3), round(ret, 5)] for step, wall, ret in curve]
    result["mmer"] = mmer(result["curve"])
    final = result["evaluations"][-1] if result.get("evaluations") else {}
    result["final_return"] = final.get("mean_return")
    return result


def aggregate(runs: list[dict], tasks: list[str], rule_names: list[str]) -> dict:
    """task -> rule -> MMER and final return (mean, std over seeds, values), wall time, sps."""
    out: dict = {}
    for task in tasks:
        for rule in rule_names:
            group = sorted((r for r in runs if r["task"] == task and r["rule"] == rule and "error" not in r),
                           key=lambda r: r["seed"])
            if not group:
                continue
            cell = {"seeds": [r["seed"] for r in group], "steps": group[0]["steps"],
                    "wall_s": statistics.fmean(r["wall_s"] for r in group),
                    "sps": statistics.fmean(r["sps"] for r in group)}
            for key in ("mmer", "final_return"):
                values = [r[key] for r in group if r.get(key) is not None]
                cell[key] = {"mean": statistics.fmean(values) if values else None,
                             "std": _std(values), "values": values}
            out.setdefault(task, {})[rule] = cell
    return out
