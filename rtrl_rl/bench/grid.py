"""What an experiment runs: blocks of tasks x rules (x lengths), every seed, one budget per block.

A cell is one training run (or one measurement); its spec is a plain dict with at least
``task``, ``rule``, ``seed`` and, for a training run, the ``rtrl-rl train`` overrides. The
results JSON holds one row per finished cell, so a grid that stopped part-way resumes by
running the cells whose rows are missing (:func:`missing`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

#: the segment length T of every truncated rule and of RTRL's updates, in every experiment:
#: memory spans below and above it are the point of the grids
SEGMENT_LENGTH = 10


@dataclass(frozen=True)
class Budget:
    """How long each run of a block trains and how it is evaluated."""

    total_steps: int
    eval_interval_steps: int = 0  # 0: one greedy evaluation, at the end
    eval_episodes: int = 256
    tensorboard: bool = False  # the training curve (POPGym's MMER reads it)

    def overrides(self, seed: int) -> list[str]:
        """The ``rtrl-rl train`` overrides of a run of this budget: no early stop, one thread."""
        every = self.eval_interval_steps or 10 * self.total_steps
        return [f"train.total_steps={self.total_steps}", "train.target_success=0", "train.threads=1",
                f"train.seed={seed}", f"log.eval_interval_steps={every}", f"log.eval_episodes={self.eval_episodes}",
                "log.progress=false", f"log.tensorboard={str(self.tensorboard).lower()}"]


@dataclass(frozen=True)
class Block:
    """Every task x length x rule of the block, at one budget. ``lengths``: the memory length L
    of each task (a delay or a corridor); (None,) where the task has no such option."""

    tasks: tuple[str, ...]
    rules: tuple[str, ...]
    budget: Budget
    lengths: tuple[int | None, ...] = (None,)
    family: str = ""


@dataclass(frozen=True)
class Cell:
    """One run of a grid, before its overrides are known."""

    task: str
    length: int | None
    rule: str
    seed: int
    block: Block


@dataclass
class Grid:
    """Blocks and seeds. Cells run seed-major (every block of seed 0 first), so a grid
    stopped early leaves whole seeds; within a seed, blocks in order (the costliest last)."""

    name: str
    blocks: list[Block]
    seeds: list[int]
    extra: list[str] = field(default_factory=list)  # overrides of every run (the tests shrink runs)

    def cells(self) -> list[Cell]:
        return [Cell(task, length, rule, seed, block) for seed in self.seeds for block in self.blocks
                for task in block.tasks for length in block.lengths for rule in block.rules]

    def specs(self, build: Callable[[Cell], dict]) -> list[dict]:
        """One spec per cell, ``build`` turning a cell into its spec (its overrides)."""
        return [build(cell) for cell in self.cells()]

    @property
    def tasks(self) -> list[str]:
        return list(dict.fromkeys(t for b in self.blocks for t in b.tasks))

    @property
    def rules(self) -> list[str]:
        return list(dict.fromkeys(r for b in self.blocks for r in b.rules))

    def narrowed(self, tasks: list[str] | None = None, rules: list[str] | None = None,
                 seeds: list[int] | None = None, steps: int | None = None) -> "Grid":
        """The cells of this grid among ``tasks`` and ``rules``, with other ``seeds`` or
        ``steps`` per run (None: as the grid has them)."""
        blocks = []
        for b in self.blocks:
            kept = replace(b, tasks=tuple(t for t in b.tasks if tasks is None or t in tasks),
                           rules=tuple(r for r in b.rules if rules is None or r in rules))
            if steps is not None:
                kept = replace(kept, budget=replace(kept.budget, total_steps=steps))
            if kept.tasks and kept.rules:
                blocks.append(kept)
        return replace(self, blocks=blocks, seeds=list(seeds) if seeds is not None else self.seeds)


def plan(specs: list[dict]) -> dict:
    """What a grid holds, for a page to say what it would take: its cells, the steps of each
    rule's runs summed (specs name their ``total_steps``) and the seconds of the runs that
    stop on a wall-time budget instead (``wall_s_budget``)."""
    steps: dict[str, int] = {}
    seconds = 0.0
    for s in specs:
        if s.get("wall_s_budget"):
            seconds += s["wall_s_budget"]
        else:
            steps[s["rule"]] = steps.get(s["rule"], 0) + s["total_steps"]
    return {"runs": len(specs), "tasks": list(dict.fromkeys(s["task"] for s in specs)),
            "rules": list(dict.fromkeys(s["rule"] for s in specs)), "seeds": sorted({s["seed"] for s in specs}),
            "steps": steps, "seconds": seconds}


#: the fields that name what a cell measured (a training run, or a drift, memory or throughput row)
KEY_FIELDS = ("into", "config", "task", "length", "rule", "seed", "lr", "delay")


def key(row: dict) -> tuple:
    """What a spec or a result row is, for matching one to the other."""
    return tuple(row.get(k) for k in KEY_FIELDS)


def missing(specs: list[dict], rows: list[dict], done: Callable[[dict], bool] = lambda r: "error" not in r,
            cell: Callable[[dict], tuple] = key) -> list[dict]:
    """The specs with no finished row among ``rows``: what a resumed grid still runs. ``cell``
    names the cell of a spec or a row (a cell may give several rows)."""
    have = {cell(r) for r in rows if done(r)}
    return [s for s in specs if cell(s) not in have]
