"""The POPGym protocol: its grid and specs, the targets on synthetic aggregates, equal wall
time by hand, the page from a synthetic result (its missing cells named), the CLI's refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rtrl_rl import cli
from rtrl_rl.bench import popgym as pg
from rtrl_rl.bench import popgym_protocol as pp
from rtrl_rl.bench import popgym_protocol_targets as tg
from rtrl_rl.bench.curves import mmer, mmer_within
from rtrl_rl.bench.popgym_protocol_page import missing_cells, write_page
from rtrl_rl.bench.popgym_targets import BEST_RTRL as BEST
from rtrl_rl.bench.popgym_targets import PEER
from rtrl_rl.config import load_config
from rtrl_rl.config import resolve_config_path


def bench(argv: list[str]) -> int:
    """``rtrl-rl bench popgym-protocol ARGV``: its exit code, argparse's own refusals included."""
    try:
        return cli.main(["bench", "popgym-protocol", *argv])
    except SystemExit as exit_info:
        return exit_info.code


def test_the_grid_runs_the_replica_configs_as_written_and_the_rest_as_the_3m_grid():
    full = pp.GRIDS["full"]()
    specs = pg.specs(full, pp.rules())
    assert len(specs) == 13 * 5 * 3 and full.tasks == list(pg.TASKS)
    by = {(s["task"], s["rule"], s["seed"]): s for s in specs}
    best, replica = by[("RepeatFirstEasy", BEST, 0)], by[("RepeatFirstEasy", "replica-gru", 0)]
    # the best RTRL rule: the 3M grid's shared settings and segment, then its one list of overrides
    assert "config" not in best and best["length"] == 10 and pg.SHARED[0] in best["overrides"]
    assert best["overrides"][3:3 + len(pp.BEST_OVERRIDES)] == pp.BEST_OVERRIDES
    assert "train.truncation_bootstrap=false" in pp.BEST_OVERRIDES
    # a replica: its config as written (its segment, no shared entropy cost), the budget on top
    assert replica["config"] == "popgym/replica_cpu" and replica["length"] == 1024
    assert not any(o.startswith(("train.segment_length=", "train.entropy_cost=")) for o in replica["overrides"])
    run = load_config(resolve_config_path(replica["config"]), replica["overrides"])
    assert (run.env.id, run.train.total_steps, run.train.seed, run.train.threads) == \
        ("popgym:RepeatFirstEasy", 15_000_000, 0, 1)
    assert (run.agent.algorithm, run.agent.core, run.ppo.epochs, run.train.entropy_cost) == ("ppo", "gru", 2, 0.0)
    lstm = by[("CountRecallEasy", "replica-lstm", 2)]
    assert load_config(resolve_config_path(lstm["config"]), lstm["overrides"]).agent.core == "lstm"
    assert by[("CountRecallEasy", "replica-faithful", 1)]["config"] == "popgym/replica_faithful"
    # TBPTT LSTM is the 3M grid's rule exactly
    three_m = next(s for s in pg.specs(pg.GRIDS["full"]()) if s["rule"] == "tbptt-lstm" and s["task"] == "RepeatFirstEasy")
    assert by[("RepeatFirstEasy", "tbptt-lstm", 0)]["overrides"][:-8] == three_m["overrides"][:-8]
    # steps per update, as the page's cost table reads them
    described = pp.describe(full, pp.rules())["rules"]
    assert (described["replica-faithful"]["batch"], described["replica-gru"]["batch"], described[BEST]["batch"]) == \
        (65_536, 32_768, 1_280)
    # optimiser steps per update: 30 epochs x 8 minibatches, 2 x 1, one V-trace step
    assert (described["replica-faithful"]["optimizer_steps"], described["replica-gru"]["optimizer_steps"],
            described[BEST]["optimizer_steps"]) == (240, 2, 1)


def test_narrowed_grids_and_the_peer_specs():
    args = cli.build_parser().parse_args(["bench", "popgym-protocol", "--tasks", "MineSweeperEasy", "--rules",
                                          "replica-faithful", PEER, "--seeds", "1"])
    g = pp.build_grid(args)
    assert g.tasks == ["MineSweeperEasy"] and g.rules == ["replica-faithful"] and g.seeds == [1]
    peer = pp.peer_specs(["MineSweeperEasy"], [1], 312.5)[0]
    assert (peer["rule"], peer["wall_s_budget"], peer["total_steps"]) == (PEER, 312.5, pp.STEPS)
    assert peer["command"] == f"rtrl-rl bench popgym-protocol --rules {PEER} --tasks MineSweeperEasy --seeds 1 --resume"
    assert pp.best_wall_s({"runs": [{"rule": BEST, "wall_s": 100.0}, {"rule": BEST, "wall_s": 300.0},
                                    {"rule": BEST, "wall_s": 5.0, "error": "x"}, {"rule": "tbptt-lstm", "wall_s": 9}]}) \
        == 200.0
    assert pp.best_wall_s(None) is None


def test_equal_wall_time_mmer_from_a_synthetic_curve():
    # windows of 10 steps; within 2.5 s: (0,10] holds 0.0 and 1.0 -> 0.5, (10,20] holds -1.0 (the 2.5 s cut
    # drops 0.9 at 3.0 s) -> MMER 0.5; the whole curve: (10,20] holds -1.0 and 0.9 -> -0.05, so still 0.5 ...
    curve = [[5, 1.0, 0.0], [10, 2.0, 1.0], [15, 2.5, -1.0], [20, 3.0, 0.9], [25, 4.0, 0.8]]
    assert mmer_within(curve, 2.5, 10) == pytest.approx(0.5)
    assert mmer(curve, 10) == pytest.approx(0.8)  # ... but the whole curve reaches the window (20, 30]
    assert mmer_within(curve, 0.5, 10) is None
    runs = [{"task": "T", "rule": BEST, "seed": 0, "wall_s": 2.0}, {"task": "T", "rule": BEST, "seed": 1, "wall_s": 3.0},
            {"task": "T", "rule": tg.REPLICA, "seed": 0, "curve": curve},
            {"task": "T", "rule": tg.REPLICA, "seed": 1, "curve": [[5, 0.1, -0.2]]},
            {"task": "U", "rule": tg.REPLICA, "seed": 0, "curve": curve}]
    walls = tg.equal_wall(runs, ["T", "U"], 10)
    # W = 2.5 s (the best rule's mean): seed 0 gives 0.5, seed 1 gives -0.2
    assert walls == {"T": {"wall_s": 2.5, "mmer": pytest.approx(0.15), "seeds": 2}}


def _cell(mean: float) -> dict:
    return {"mmer": {"mean": mean, "std": None}}


def test_targets_on_synthetic_aggregates_say_met_not_met_and_not_measured():
    assert tg.verdict({"a": True, "b": True}) == (tg.MET, "2 of 2 tasks")
    assert tg.verdict({"a": True, "b": None}) == (tg.NOT_MEASURED, "1 of 2 tasks (1 not measured)")
    assert tg.verdict({"a": False, "b": None})[0] == tg.NOT_MET  # one measured task already fails "every task"
    assert tg.verdict({"a": True, "b": None, "c": None}, 1)[0] == tg.MET
    assert tg.verdict({"a": False, "b": None, "c": None}, 2)[0] == tg.NOT_MEASURED
    assert tg.verdict({"a": False, "b": False, "c": None}, 2)[0] == tg.NOT_MET
    assert tg.verdict({}, 3)[0] == tg.NOT_MET and tg.verdict({"a": None})[0] == tg.NOT_MEASURED

    published = {"A": {"gru": 0.5, "best": 0.9}, "B": {"gru": 0.2, "best": 0.2}}
    agg = {"A": {BEST: _cell(0.46), tg.REPLICA: _cell(0.58)},  # within 0.05 of the GRU; replica within 0.1
           "B": {BEST: _cell(0.25), tg.REPLICA: _cell(0.05)},  # above both; the replica 0.15 off
           "C": {tg.REPLICA: _cell(0.0)}}                      # no published figure, RTRL missing
    walls = {"A": {"mmer": 0.40}, "B": {"mmer": 0.3}}
    checks = tg.per_task(agg, walls, published, ["A", "B", "C"])
    assert checks["near_gru"] == {"A": True, "B": True} and checks["above_best"] == {"A": False, "B": True}
    assert checks["reproduces"] == {"A": True, "B": False}
    assert checks["above_replica"] == {"A": False, "B": True, "C": None}
    assert checks["above_replica_wall"] == {"A": True, "B": False, "C": None}
    # a mean compares at the published precision: 0.99996 prints as 1.000, 0.9994 as 0.999
    near = tg.per_task({"D": {BEST: _cell(0.99996)}, "E": {BEST: _cell(0.9994)}}, {},
                       {"D": {"gru": 1.0, "best": 1.0}, "E": {"gru": 1.0, "best": 1.0}}, ["D", "E"])
    assert near["above_best"] == {"D": True, "E": False}
    rows = tg.targets(agg, walls, published, ["A", "B", "C"], [], set(), None)
    status = [r[1] for r in rows]
    assert status[0] == tg.MET and status[1] == tg.NOT_MET  # 1 of 2 above the best, 3 needed, none missing
    assert status[3] == tg.NOT_MET  # B already fails equal wall time
    assert status[6] == tg.NOT_MEASURED  # no side-by-side cost

    finite = {"task": "A", "rule": BEST, "seed": 0}
    # a verdict on means over part of the seeds says so
    half = {("A", BEST, 0), ("A", BEST, 1), ("A", tg.REPLICA, 0)}
    assert tg.so_far((tg.MET, "1 of 1 tasks"), [finite], half, (BEST,), ["A"]) == \
        ("met so far", f"1 of 1 tasks; 1 cells of {BEST} not finished")
    assert tg.so_far((tg.NOT_MET, "0 of 1 tasks"), [finite], half, (BEST,), ["A"])[0] == "**not met** so far"
    assert tg.so_far((tg.MET, "d"), [finite], {("A", BEST, 0), ("A", tg.REPLICA, 0)}, (BEST,), ["A"]) == \
        (tg.MET, "d")
    assert tg.so_far((tg.NOT_MEASURED, "d"), [], half, (BEST,), ["A"]) == (tg.NOT_MEASURED, "d")
    # an unfinished cell of a task the target does not judge (no published figure) does not count
    unjudged = half | {("Z", BEST, 0), ("Z", BEST, 1)}
    assert tg.so_far((tg.MET, "1 of 1 tasks"), [finite], unjudged, (BEST,), ["A"])[1].endswith(
        f"1 cells of {BEST} not finished")
    assert tg.so_far((tg.MET, "d"), [finite, {**finite, "seed": 1}], unjudged, (BEST,), ["A"]) == (tg.MET, "d")
    assert tg.finite_verdict([finite], {("A", BEST, 0)})[0] == tg.MET
    assert tg.finite_verdict([finite], {("A", BEST, 0), ("A", BEST, 1)})[0] == tg.NOT_MEASURED
    diverged = {**finite, "seed": 1, "error": "FloatingPointError: non-finite gradient norm at update 3"}
    assert tg.finite_verdict([finite, diverged], {("A", BEST, 0), ("A", BEST, 1)})[0] == tg.NOT_MET
    assert tg.non_finite({"curve": [[1, 0.0, float("nan")]]}) and not tg.non_finite({"error": "the process died"})
    cost = {"rules": [BEST, tg.REPLICA, "replica-faithful"], "tasks": {"A": {"ratio": 0.8}}}
    assert tg.cost_verdict(cost)[0] == tg.MET and tg.cost_verdict({**cost, "tasks": {"A": {"ratio": 1.2}}})[0] == \
        tg.NOT_MET
    assert tg.cost_verdict({**cost, "rules": ["replica-faithful", BEST]})[0] == tg.NOT_MEASURED


def _synthetic(runs: list[dict]) -> dict:
    grid = pp.describe(pp.GRIDS["full"](), pp.rules())
    return {"meta": {"machine": {"nproc": 2, "cpu": "cpu", "mem_gib": 1}, "versions": {"torch": "2"},
                     "peer": "SB3 defaults", "history": [{"command": "rtrl-rl bench popgym-protocol", "jobs": 2}]},
            "grid": grid, "runs": runs}


def _run(task: str, rule: str, seed: int, value: float, wall: float = 300.0) -> dict:
    """A finished row as a training cell gives it (its key: task, length, rule, seed, config)."""
    curve = [[65_536 * k, wall * k / 3, value] for k in (1, 2, 3)]
    rule_ = pp.rules().get(rule)
    where = {"length": 1024, "config": rule_.config} if rule_ and rule_.config else {"length": 10}
    return {"task": task, "rule": rule, "seed": seed, **where, "steps": 15_000_000, "wall_s": wall, "sps": 5e4,
            "curve": curve, "mmer": mmer(curve, pp.WINDOW_STEPS), "final_return": value}


def test_the_page_from_a_synthetic_result_names_its_missing_cells(tmp_path):
    runs = [_run("RepeatFirstEasy", BEST, s, 0.9) for s in (0, 1, 2)]
    runs += [_run("RepeatFirstEasy", "replica-gru", s, 0.5, wall=600.0) for s in (0, 1)]
    runs.append({**_run("MineSweeperEasy", BEST, 0, 0.0), "error": "FloatingPointError: non-finite gradient norm"})
    data = _synthetic(runs)
    missing = missing_cells(data)
    assert missing["replica-gru"]["RepeatFirstEasy"] == [2] and "RepeatFirstEasy" not in missing[BEST]
    assert missing[BEST]["MineSweeperEasy"] == [0, 1, 2], "a failed run is a missing cell"
    assert missing[PEER]["RepeatFirstEasy"] == [0, 1, 2] and len(missing["replica-faithful"]) == 13
    md = tmp_path / "results_popgym.md"
    files = write_page(data, tmp_path / "results" / "popgym_protocol.json", md)
    assert {f.name for f in files} == {"results_popgym.md", "popgym_protocol_tasks.png", "popgym_protocol_steps.png"}
    text = md.read_text()
    # the chart first, then the targets, the missing cells, the cost, the details, "Reproduce" last
    order = ["(results/popgym_protocol_tasks.png)", "## Targets", "## Missing cells", "## Cost per run",
             "## The metric", "## Reproduce"]
    assert [text.index(s) for s in order] == sorted(text.index(s) for s in order)
    assert "(`replica-gru`), 37 cells: every task but RepeatFirstEasy (seeds 0, 1, 2); RepeatFirstEasy (seed 2)" in text
    assert "(`replica-faithful`), 39 cells: every task (seeds 0, 1, 2)" in text
    assert "MineSweeperEasy rtrl-best seed 0: `FloatingPointError: non-finite gradient norm`" in text
    assert ": met" not in text and "| no run ends non-finite | **not met** |" in text
    # equal wall time: the replica's curve (points at 200, 400, 600 s) up to the best rule's 300 s: its first point
    assert "| RepeatFirstEasy | 0.90 ± 0.00 | 0.50 ± 0.00 | 0.50 (300 s) | 1.000†" in text
    assert "† transcribed, not checked" in text or "†" in text.split("Published figures:")[1]
    assert text.split("## Reproduce")[1].count("- `rtrl-rl bench popgym-protocol") == 3
    assert "Not measured side by side yet" in text


def test_a_cost_block_gives_the_cost_table(tmp_path):
    cost = {"steps": 65_536, "rounds": 1, "rules": list(pp.COST_RULES),
            "tasks": {"CountRecallEasy": {BEST: [2e-5], "replica-gru": [1.6e-4], "replica-faithful": [2.7e-3],
                                          "replica-lstm": [2e-4], "tbptt-lstm": [3e-5], "ratio": 0.125}}}
    data = _synthetic([]) | {"cost": cost}
    md = tmp_path / "p.md"
    write_page(data, tmp_path / "results" / "popgym_protocol.json", md)
    text = md.read_text()
    # 20 us per step x 15M = 300 s = 0.08 h; the faithful replica's 65,536 steps are one of its updates, and
    # its run takes 15M / 65,536 x 30 epochs x 8 minibatches optimiser steps, the cpu replica's 15M / 32,768 x 2
    assert "| replica, cpu (GRU) | 32,768 | 2 | 916 |" in text
    assert "| replica, faithful (GRU) | 65,536 | 1 | 54,932 | 2,700.0 | 11.25 h | 135.00 | 219.4 h |" in text
    assert "| best RTRL costs no more per step than the cpu replica (side by side) | met |" in text
    # the grid (39 runs of each rule) from the cost alone: 39 x 15M x (20 + 160 + 2700 + 200 + 30) us / 2 runs at a time
    assert "195 runs): about 252.7 h with 2 runs at a time" in text.split("## Reproduce")[1]


@pytest.mark.parametrize("args, message", [
    (["--rules", "nope"], "unknown rule"), (["--tasks", "Nope"], "invalid choice"),
    (["--steps", "0"], "must be positive"), (["--no-grid"], "runs nothing"), (["--bogus"], "unrecognized"),
    (["--rules", PEER], "needs --resume"), (["--resume"], "no "), (["--report-only"], "no ")])
def test_cli_refuses_bad_input_before_writing_anything(tmp_path, capsys, args, message):
    assert bench([*args, "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_the_peer_waits_for_a_measured_best_rule(tmp_path, capsys, monkeypatch):
    from rtrl_rl.bench import driver

    (tmp_path / "popgym_protocol.json").write_text(json.dumps(_synthetic([])))
    assert bench(["--rules", PEER, "--resume", "--out", str(tmp_path)]) == 2
    assert "no finished rtrl-best run yet" in capsys.readouterr().err
    pytest.importorskip("sb3_contrib", reason='sb3-contrib is not installed: pip install "rtrl-rl[peers]"')
    (tmp_path / "popgym_protocol.json").write_text(json.dumps(_synthetic([_run("RepeatFirstEasy", BEST, 0, 0.9, 250.0)])))
    asked: list[dict] = []
    monkeypatch.setattr(driver, "run_grid", lambda specs, *a, **k: asked.extend(specs))
    assert bench(["--rules", PEER, "--resume", "--tasks", "RepeatFirstEasy", "--out", str(tmp_path), "--page",
                  str(tmp_path / "p.md")]) == 0
    assert [(s["rule"], s["wall_s_budget"]) for s in asked] == [(PEER, 250.0)] * 3


def test_resume_runs_only_the_missing_cells_of_a_narrowed_part(tmp_path, monkeypatch):
    from rtrl_rl.bench import driver

    saved = _synthetic([_run("RepeatFirstEasy", BEST, 0, 0.9)])
    (tmp_path / "popgym_protocol.json").write_text(json.dumps(saved))
    asked: list[dict] = []
    monkeypatch.setattr(driver, "run_grid", lambda specs, *a, **k: asked.extend(specs))
    assert bench(["--resume", "--tasks", "RepeatFirstEasy", "--rules", BEST, "replica-gru", "--seeds", "0", "1",
                  "--out", str(tmp_path), "--page", str(tmp_path / "p.md")]) == 0
    # seed-major: seed 0's missing replica, then seed 1's two cells
    assert [(s["rule"], s["seed"]) for s in asked] == [("replica-gru", 0), (BEST, 1), ("replica-gru", 1)]
    again = json.loads((tmp_path / "popgym_protocol.json").read_text())
    assert len(again["runs"]) == 1 and again["meta"]["history"][-1]["command"].startswith(
        "rtrl-rl bench popgym-protocol --resume --tasks RepeatFirstEasy")
    assert bench(["--resume", "--steps", "1000", "--out", str(tmp_path)]) == 2, "another budget is refused"


@pytest.mark.slow  # two spawned training processes
def test_the_tiny_grid_runs_end_to_end(tmp_path):
    pytest.importorskip("popgym", reason='popgym is not installed: pip install "rtrl-rl[popgym]"')
    out = tmp_path / "results"
    assert bench(["--grid", "tiny", "--out", str(out), "--work-dir", str(tmp_path / "w")]) == 0
    data = json.loads((out / "popgym_protocol.json").read_text())
    assert {r["rule"] for r in data["runs"]} == {BEST, "replica-gru"}
    for run in data["runs"]:
        assert "error" not in run and run["curve"] and run["mmer"] == mmer(run["curve"], pp.WINDOW_STEPS)
        assert run["curve"][0][1] > 0, "the curve's wall times count from the run's start"
    replica = next(r for r in data["runs"] if r["rule"] == "replica-gru")
    assert replica["config"] == "popgym/replica_cpu" and replica["command"].startswith(
        "rtrl-rl train --config popgym/replica_cpu env.id=popgym:RepeatPreviousEasy")
    assert "## Missing cells" in (tmp_path / "results_popgym.md").read_text()


def test_the_curve_can_count_wall_time_from_the_runs_start(tmp_path):
    pytest.importorskip("tensorboard")
    import time

    from torch.utils.tensorboard import SummaryWriter

    from rtrl_rl.bench.curves import training_curve

    writer = SummaryWriter(str(tmp_path))
    opened = time.time()
    for k, value in enumerate((0.1, 0.2)):
        writer.add_scalar("charts/episodic_return", value, 100 * (k + 1), walltime=opened + 50 + 10 * k)
    writer.close()
    assert [w for _, w, _ in training_curve(tmp_path)] == [0.0, 10.0]
    walls = [w for _, w, _ in training_curve(tmp_path, from_start=True)]
    assert 50 <= walls[0] < 51 and walls[1] - walls[0] == pytest.approx(10.0)


def test_committed_page_is_regenerated_from_its_json(tmp_path):
    """docs/results_popgym.md is exactly what the page code makes of docs/results/popgym_protocol.json."""
    docs = Path(__file__).resolve().parents[1] / "docs"
    data = json.loads((docs / "results" / "popgym_protocol.json").read_text())
    write_page(data, tmp_path / "results" / "popgym_protocol.json", tmp_path / "results_popgym.md")
    assert (tmp_path / "results_popgym.md").read_text() == (docs / "results_popgym.md").read_text()
    assert "/work/" not in json.dumps(data), "no local paths in the JSON"
