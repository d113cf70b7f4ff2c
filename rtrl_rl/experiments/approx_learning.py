"""Learning with the approximations: the dense LSTM trained by each learning rule, side by side.

A grid of (task, rule, seed) runs, each a plain ``rtrl-rl train`` run with segments of
T = 10 and one step budget per task family. Memory tasks (recall with distractors, recall
with blank delays, the T-maze, all with a delay beyond the segment) are scored by greedy
success, through the memory experiment's runner; POPGym tasks by MMER and the final greedy
return, through the POPGym benchmark's runner. Runs go seed-major (see
:meth:`Grid.specs`), so a grid stopped early has whole seeds.

Every LSTM rule trains the same network (:data:`LSTM_N` units on a :data:`LSTM_ENCODER`-wide
encoder): exact RTRL of a dense LSTM costs O(n⁴) per step, which fixes how large it can be.
The RTRL eLSTM runs at the agent's default size, as the library's reference.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rtrl_rl.experiments import memory
from rtrl_rl.experiments import popgym as pg

SEGMENT_LENGTH = 10
#: hidden size and encoder width of every dense-LSTM rule: exact RTRL keeps n x 4n(n + d + 1)
#: influence entries per stream and costs O(n⁴) per step, which sets how large they can be
LSTM_N = 8
LSTM_ENCODER = 16

#: rule -> (label, overrides of every task, extra overrides on POPGym tasks)
RULES: dict[str, tuple[str, list[str], list[str]]] = {
    "lstm-tbptt": (f"TBPTT LSTM (n = {LSTM_N})", ["agent.core=lstm", "agent.learning=tbptt"], []),
    "lstm-snap1": (f"SnAp-1 LSTM (n = {LSTM_N})", ["agent.core=lstm", "agent.learning=snap1"], []),
    "lstm-uoro": (f"UORO LSTM (n = {LSTM_N})", ["agent.core=lstm", "agent.learning=uoro"], []),
    "lstm-kfrtrl": (f"KF-RTRL LSTM (n = {LSTM_N})", ["agent.core=lstm", "agent.learning=kfrtrl"], []),
    "lstm-rtrl": (f"exact RTRL LSTM (n = {LSTM_N})", ["agent.core=lstm", "agent.learning=rtrl"], []),
    # the eLSTM keeps the agent's default size; on POPGym the POPGym benchmark's input-gradient setting
    "rtrl-elstm": ("RTRL eLSTM (n = 64, default)", ["agent.core=elstm", "agent.learning=rtrl"], pg.RTRL_EXTRA),
    # a reference for POPGym only (memory tasks have an analytic chance level)
    "feedforward": ("feed-forward", ["agent.core=none", "agent.learning=none"], []),
}
LSTM_RULES = [r for r in RULES if r.startswith("lstm-")]

#: memory task -> the length L (delay or corridor): beyond the segment T = 10, so no truncated
#: gradient spans it, and short enough that the RTRL eLSTM learns it within the budget
MEMORY_TASKS = {"recall-distractors": 12, "recall-blank": 12, "tmaze": 12}
#: POPGym tasks: one learnt by RTRL cores at this library's POPGym budget, one control task
POPGYM_TASKS = ["RepeatPreviousEasy", "PositionOnlyCartPoleEasy"]


def _rule_overrides(rule: str, popgym: bool) -> list[str]:
    _, common, on_popgym = RULES[rule]
    size = [f"agent.hidden_size={LSTM_N}", f"agent.encoder_size={LSTM_ENCODER}"] if rule in LSTM_RULES else []
    return [*common, *size, *(on_popgym if popgym else [])]


@dataclass
class Grid:
    """What to run: tasks, rules (POPGym-only rules apart), seeds, a step budget per family."""

    name: str
    memory_tasks: dict[str, int]
    popgym_tasks: list[str]
    rules: list[str]
    seeds: list[int]
    memory_steps: int
    popgym_steps: int
    eval_interval_steps: int
    eval_episodes: int = 256
    popgym_only: list[str] = field(default_factory=lambda: ["feedforward"])
    extra: list[str] = field(default_factory=list)  # overrides of every run (the tests shrink runs)

    def memory_overrides(self, task: str, rule: str, seed: int) -> list[str]:
        """The ``rtrl-rl train`` overrides of a memory run (env.id first: it resets env.options)."""
        t = memory.TASKS[task]
        opts = [f"env.options.{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in t.options.items()]
        return [f"env.id={t.env_id}", *opts, f"env.options.{t.length_option}={self.memory_tasks[task]}",
                *_rule_overrides(rule, popgym=False), f"train.segment_length={SEGMENT_LENGTH}",
                f"train.total_steps={self.memory_steps}", "train.target_success=0", "train.threads=1",
                f"train.seed={seed}", f"log.eval_interval_steps={self.eval_interval_steps}",
                f"log.eval_episodes={self.eval_episodes}", "log.progress=false", "log.tensorboard=false",
                *self.extra]

    def popgym_grid(self) -> pg.Grid:
        """The POPGym benchmark's grid with this grid's rules (its overrides, its runner)."""
        rules = {r: (RULES[r][0], _rule_overrides(r, popgym=True)) for r in self.rules}
        return pg.Grid(self.name, self.popgym_tasks, rules, self.seeds, self.popgym_steps,
                       eval_episodes=self.eval_episodes, extra=self.extra)

    def specs(self) -> list[dict]:
        """One dict per run, seed-major, so that a grid stopped early has whole seeds.

        Within a seed: memory tasks, then POPGym, by every rule but exact RTRL, then exact
        RTRL (an order of magnitude costlier per step than any other rule here).
        """
        popgym = self.popgym_grid()
        out = []
        for seed in self.seeds:
            for exact in (False, True):
                rules = [r for r in self.rules if (r == "lstm-rtrl") == exact]
                for task, length in self.memory_tasks.items():
                    for rule in (r for r in rules if r not in self.popgym_only):
                        out.append({"task": task, "length": length, "rule": rule, "seed": seed, "family": "memory",
                                    "overrides": self.memory_overrides(task, rule, seed)})
                for task in self.popgym_tasks:
                    for rule in rules:
                        out.append({"task": task, "length": SEGMENT_LENGTH, "rule": rule, "seed": seed,
                                    "family": "popgym", "overrides": popgym.overrides(task, rule, seed)})
        return out

    def describe(self) -> dict:
        """The grid as plain data for the JSON."""
        return {"name": self.name, "segment_length": SEGMENT_LENGTH, "lstm_n": LSTM_N, "lstm_encoder": LSTM_ENCODER, "seeds": self.seeds,
                "memory_steps": self.memory_steps, "popgym_steps": self.popgym_steps,
                "eval_interval_steps": self.eval_interval_steps, "eval_episodes": self.eval_episodes,
                "window_steps": pg.WINDOW_STEPS, "extra_overrides": self.extra,
                "memory_tasks": {t: {"length": L, "chance": memory.TASKS[t].chance, "what": memory.TASKS[t].what}
                                 for t, L in self.memory_tasks.items()},
                "popgym_tasks": {t: {"why": pg.TASKS[t].why, "episode": pg.TASKS[t].episode}
                                 for t in self.popgym_tasks},
                "rules": {r: {"label": RULES[r][0], "overrides": _rule_overrides(r, False),
                              "popgym_overrides": _rule_overrides(r, True)} for r in self.rules},
                "popgym_only": self.popgym_only}


def run_spec(spec: dict, work_dir: str) -> dict:
    """Train one spec: the memory runner for memory tasks, the POPGym runner (MMER) otherwise."""
    if spec["family"] == "memory":
        result = memory.run_one(spec, work_dir)
    else:
        result = pg.run_task(spec, work_dir)
        result.pop("curve", None)  # MMER is kept; the per-update curve stays in the run's TensorBoard
    result["family"] = spec["family"]
    return result


ALL_RULES = [*LSTM_RULES, "rtrl-elstm", "feedforward"]

#: The grid of the page: 3 seeds, 200k steps per memory run and 100k per POPGym run.
FULL = Grid("full", MEMORY_TASKS, POPGYM_TASKS, ALL_RULES, seeds=[0, 1, 2], memory_steps=200_000,
            popgym_steps=100_000, eval_interval_steps=50_000)
#: One seed of the full grid at half its budget.
QUICK = Grid("quick", MEMORY_TASKS, POPGYM_TASKS, ALL_RULES, seeds=[0], memory_steps=100_000,
             popgym_steps=50_000, eval_interval_steps=50_000)
#: The full grid's budget tells no rule apart (the RTRL eLSTM alone learns, partly): the same
#: rules but feed-forward on recall-blank only, at ten times the budget, 3 seeds.
LONG = Grid("long", {"recall-blank": 12}, [], [*LSTM_RULES, "rtrl-elstm"], seeds=[0, 1, 2],
            memory_steps=2_000_000, popgym_steps=0, eval_interval_steps=250_000, popgym_only=[])
#: A seconds-long grid for the tests of the plumbing.
TINY = Grid("tiny", {"recall-distractors": 12}, ["RepeatPreviousEasy"], ["lstm-snap1", "rtrl-elstm", "feedforward"],
            seeds=[0], memory_steps=1_280, popgym_steps=1_280, eval_interval_steps=640, eval_episodes=8,
            extra=["env.num_envs=16"])
#: the file name of the long grid's results, beside the full grid's (the page's section reads both)
LONG_JSON_NAME = "approx_learning_long.json"
GRIDS = {"full": FULL, "long": LONG, "quick": QUICK, "tiny": TINY}
