"""The POPGym benchmark's targets, checked from the aggregate of a saved result.

Three comparisons, each per task on the MMER means over seeds (see :func:`verdicts`):

- against TBPTT LSTM with the same segment: the best RTRL rule is within ``TOLERANCE`` of it
  or above, on every task; on the tasks whose dependencies exceed the segment
  (:data:`LONG_TASKS`) it is above by at least ``MARGIN`` wherever TBPTT LSTM stays below
  ``SOLVED``;
- against TBPTT LSTM with a segment as long as the episode, on :data:`LONG_TASKS`: within
  ``TOLERANCE`` of it, at a lower wall time per environment step (from the side-by-side
  measurement, :mod:`rtrl_rl.bench.popgym_cost`, where it ran; else from the grid's
  runs, whose loads may differ);
- against the peer (SB3-contrib RecurrentPPO), given at least the best RTRL rule's wall time
  per run: above its MMER on at least ``PEER_WINS`` of the tasks.

A comparison whose runs are missing is reported as not measured, never as met.
"""

from __future__ import annotations

from rtrl_rl.bench.page import table

#: the rule the targets are about: the best RTRL agent of the benchmark (its settings:
#: ``popgym.BEST_OVERRIDES``)
BEST_RTRL = "rtrl-best"
#: tasks whose dependencies reach further back than the 10-step segment
LONG_TASKS = ("RepeatFirstEasy", "RepeatPreviousMedium", "CountRecallEasy", "AutoencodeEasy", "ConcentrationEasy")
TOLERANCE, MARGIN, SOLVED, PEER_WINS = 0.05, 0.1, 0.9, 10
#: the peer's rule name in the grid and the JSON
PEER = "sb3-recurrentppo"


def mmer_mean(cells: dict, rule: str) -> float | None:
    """The MMER mean over seeds of ``rule`` in a task's aggregated ``cells`` (None: not run)."""
    cell = cells.get(rule)
    return None if cell is None else cell["mmer"]["mean"]


def verdicts(agg: dict, best: str = BEST_RTRL, peer: str = PEER, cost: dict | None = None) -> dict:
    """task -> {rtrl, lstm, episode, peer (MMER means or None), near_lstm, beyond_segment,
    matches_episode, cheaper_than_episode, beats_peer (True/False/None: not measured or not
    applicable)}, plus ``summary``: per comparison, tasks met / tasks measured.

    ``cost``: a side-by-side measurement (``popgym_cost.measure``) of ``best`` against the
    episode-long rule; its ratio decides "cheaper" on the tasks it measured."""
    side_by_side = _side_by_side(cost, best)
    out: dict = {}
    for task, cells in agg.items():
        rtrl, lstm = mmer_mean(cells, best), mmer_mean(cells, "tbptt-lstm")
        episode, peer_mmer = mmer_mean(cells, "tbptt-lstm-episode"), mmer_mean(cells, peer)
        row = {"rtrl": rtrl, "lstm": lstm, "episode": episode, "peer": peer_mmer,
               "near_lstm": None, "beyond_segment": None, "matches_episode": None, "cheaper_than_episode": None,
               "beats_peer": None}
        if rtrl is not None and lstm is not None:
            row["near_lstm"] = rtrl >= lstm - TOLERANCE
            if task in LONG_TASKS and lstm < SOLVED:
                row["beyond_segment"] = rtrl >= lstm + MARGIN
        if task in LONG_TASKS and rtrl is not None and episode is not None:
            row["matches_episode"] = rtrl >= episode - TOLERANCE
            if task in side_by_side:
                row["cheaper_than_episode"] = side_by_side[task]["ratio"] < 1.0
            else:
                per_step = {r: cells[r]["wall_s"] / cells[r]["steps"] for r in (best, "tbptt-lstm-episode")}
                row["cheaper_than_episode"] = per_step[best] < per_step["tbptt-lstm-episode"]
        if rtrl is not None and peer_mmer is not None:
            row["beats_peer"] = rtrl > peer_mmer
        out[task] = row
    keys = ("near_lstm", "beyond_segment", "matches_episode", "cheaper_than_episode", "beats_peer")
    out_summary = {}
    for key in keys:
        measured = [row[key] for row in out.values() if row[key] is not None]
        out_summary[key] = (sum(measured), len(measured))
    return {"tasks": out, "summary": out_summary}


def _side_by_side(cost: dict | None, best: str) -> dict:
    """task -> cell of a side-by-side cost measurement of ``best`` against the episode-long rule
    (empty when none ran, or when it measured other rules)."""
    if not cost or cost.get("rules") != [best, "tbptt-lstm-episode"]:
        return {}
    return cost.get("tasks", {})


def _mark(value: bool | None) -> str:
    return "–" if value is None else ("yes" if value else "**no**")


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def targets_section(agg: dict, labels: dict[str, str], n_tasks: int, peer_budget: str,
                    best: str = BEST_RTRL, peer: str = PEER, cost: dict | None = None) -> list[str]:
    """The page's "Targets" section: one row per task, then one line per target, met or not.
    ``peer_budget`` says what the peer ran against the best RTRL rule's wall time; ``cost`` as
    in :func:`verdicts`."""
    v = verdicts(agg, best, peer, cost=cost)
    cost_source = ("measured side by side in one process: the cost table below" if _side_by_side(cost, best) else
                   "wall times of runs that may have run under different loads: the wall-time table above")
    rows, s = v["tasks"], v["summary"]
    lines = ["## Targets", "",
             f"The best RTRL rule here is **{labels.get(best, best)}**. MMER means over seeds; '–': not measured or "
             f"not applicable. Tasks whose dependencies exceed the segment: {', '.join(LONG_TASKS)}.", "",
             *table(["task", "RTRL", "TBPTT LSTM", "within 0.05 or above", "+0.1 beyond the segment",
                     "LSTM (T = episode)", "within 0.05 of it", "cheaper per step", "peer", "above the peer"],
                    [[task, _num(r["rtrl"]), _num(r["lstm"]), _mark(r["near_lstm"]), _mark(r["beyond_segment"]),
                      _num(r["episode"]), _mark(r["matches_episode"]), _mark(r["cheaper_than_episode"]),
                      _num(r["peer"]), _mark(r["beats_peer"])] for task, r in rows.items()])]

    def verdict(key: str, need: int | None = None) -> str:
        met, measured = s[key]
        if measured == 0:
            return "not measured"
        need = measured if need is None else need
        ok = met >= need and (key != "near_lstm" or measured == n_tasks)
        unmeasured = f" ({n_tasks - measured} of {n_tasks} tasks not measured)" if key == "near_lstm" and \
            measured < n_tasks else ""
        return f"{met} of {measured} measured tasks: {'met' if ok else '**not met**'}{unmeasured}"

    lines += [f"- Within {TOLERANCE} of TBPTT LSTM or above, on every task ({n_tasks}): {verdict('near_lstm')}.",
              f"- Above TBPTT LSTM by {MARGIN} where it stays below {SOLVED}, beyond the segment: "
              f"{verdict('beyond_segment')}.",
              f"- Within {TOLERANCE} of the episode-long BPTT baseline beyond the segment: {verdict('matches_episode')}; "
              f"at a lower wall time per step: {verdict('cheaper_than_episode')} ({cost_source}).",
              f"- Above the peer on at least {PEER_WINS} tasks (the peer's budget: {peer_budget}): "
              f"{verdict('beats_peer', PEER_WINS)}.", ""]
    return lines
