"""The POPGym benchmark: MMER by hand, the grid's rules, the page from a tiny saved result, the peer."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from rtrl_rl import cli
from rtrl_rl.bench import popgym as pg
from rtrl_rl.bench.curves import mmer, window_means
from rtrl_rl.bench.grid import SEGMENT_LENGTH
from rtrl_rl.bench.popgym_page import write_page
from rtrl_rl.bench.popgym_targets import BEST_RTRL as BEST


def bench(argv: list[str]) -> int:
    """``rtrl-rl bench popgym ARGV``: its exit code, argparse's own refusals included."""
    try:
        return cli.main(["bench", "popgym", *argv])
    except SystemExit as exit_info:
        return exit_info.code


def test_mmer_is_the_best_window_mean_computed_by_hand():
    # windows of 10 steps: (0, 10] holds 0.0 and 1.0 -> 0.5; (10, 20] holds -1.0 -> -1;
    # (20, 30] is empty (skipped); (30, 40] holds 0.2, 0.4, 0.9 -> 0.5; MMER = 0.5
    curve = [(5, 0.1, 0.0), (10, 0.2, 1.0), (15, 0.3, -1.0), (31, 0.4, 0.2), (35, 0.5, 0.4), (40, 0.6, 0.9)]
    assert window_means(curve, 10) == [(10, 0.5), (20, -1.0), (40, pytest.approx(0.5))]
    assert mmer(curve, 10) == pytest.approx(0.5)
    assert mmer([(3, 0.0, 0.7)], 10) == 0.7 and mmer([], 10) is None
    assert mmer(curve, 100) == pytest.approx((0.0 + 1.0 - 1.0 + 0.2 + 0.4 + 0.9) / 6)


def test_rules_extend_by_core_name_and_the_episode_segment_is_per_task():
    rules = pg.rules(["elstm", "mingru", "lru"])
    assert list(rules)[:4] == [pg.BEST_RTRL, "rtrl-elstm", "rtrl-mingru", "rtrl-lru"]
    assert "agent.core=lru" in rules["rtrl-lru"].overrides
    assert "agent.input_mixer=true" in rules[pg.BEST_RTRL].overrides
    grid = pg.grid("t", ["RepeatFirstEasy", "MineSweeperEasy"], list(rules), [0, 1], 1000)
    specs = pg.specs(grid, rules)
    assert len(specs) == 2 * 2 * len(rules)
    episode = {(s["task"], s["rule"]): s["length"] for s in specs}
    assert episode[("RepeatFirstEasy", "tbptt-lstm-episode")] == 51
    assert episode[("MineSweeperEasy", "tbptt-lstm-episode")] == 14
    assert episode[("MineSweeperEasy", "tbptt-lstm")] == SEGMENT_LENGTH
    for s in specs:  # the segment is set once, from the rule, never parsed back from an override
        assert [o for o in s["overrides"] if o.startswith("train.segment_length=")] == [f"train.segment_length={s['length']}"]
    assert set(pg.TASKS) >= set(pg.GRIDS["quick"]().tasks) and len(pg.TASKS) == 13
    # every run gets the shared settings; a shared lever puts the library default back, after them
    lstm_runs = [s["overrides"] for s in specs if s["rule"] == "tbptt-lstm"]
    assert all(pg.SHARED[0] in o for o in lstm_runs)
    lever = next(s["overrides"] for s in specs if s["rule"] == "tbptt-lstm+entropy-1e-2")
    assert lever.index("train.entropy_cost=0.01") > lever.index(pg.SHARED[0])
    assert "tbptt-lstm+entropy-1e-2" not in pg.grid_rules() and "rtrl-lru+input-mixer" in rules


def test_episode_lengths_match_popgym():
    pytest.importorskip("popgym", reason='popgym is not installed: pip install "rtrl-rl[popgym]"')
    import gymnasium as gym

    from rtrl_rl.envs.popgym_suite import resolve_popgym

    for task in pg.TASKS.values():
        env = gym.make(resolve_popgym(task.name)).unwrapped
        if getattr(env, "max_episode_length", None):
            assert env.max_episode_length == task.episode, task.name


def _tiny_result() -> dict:
    curve = [(1280 * i, 0.5 * i, -0.5 + 0.1 * i) for i in range(1, 4)]
    run = {"task": "RepeatPreviousEasy", "seed": 0, "steps": 3840, "wall_s": 2.0, "sps": 1920.0, "curve": curve,
           "mmer": mmer(curve), "final_return": -0.25, "command": "rtrl-rl train ..."}
    grid = pg.describe(pg.grid("tiny", ["RepeatPreviousEasy"], ["rtrl-elstm"], [0, 1], 3840), pg.rules())
    return {
        "meta": {"machine": {"nproc": 2, "cpu": "cpu", "mem_gib": 1, "load_start": "1", "load_end": "2"},
                 "versions": {"torch": "2"}, "peer": "defaults",
                 "history": [{"command": "rtrl-rl bench popgym --grid tiny", "started": "now", "wall_s": 60.0,
                              "jobs": 2, "cpu": "cpu"}]},
        "grid": grid, "not_measured": ["the rest"],
        "runs": [{**run, "rule": "rtrl-elstm"}, {**run, "rule": "rtrl-elstm", "seed": 1, "mmer": 0.1,
                                                "final_return": 0.35},
                 {**run, "rule": pg.PEER, "final_return": None},
                 {"task": "memory:recall", "rule": "rtrl-rl-default", "seed": 0, "steps": 10, "wall_s": 50.0,
                  "evaluations": [{"success_rate": 0.96, "wall_s": 40.0}], "time_to_target_s": 40.0},
                 {"task": "memory:recall", "rule": pg.PEER, "seed": 0, "steps": 10, "wall_s": 90.0,
                  "evaluations": [{"success_rate": 0.3, "wall_s": 80.0}], "time_to_target_s": None}],
    }


def test_report_from_a_tiny_saved_result(tmp_path):
    data = _tiny_result()
    md = tmp_path / "results_popgym.md"
    files = write_page(data, tmp_path / "results" / "popgym.json", md)
    assert all(f.is_file() and f.stat().st_size > 0 for f in files)
    assert {f.name for f in files} == {"results_popgym.md", "popgym_tasks.png", "popgym_steps.png", "popgym_wall.png"}
    text = md.read_text()
    mmer0 = mmer(data["runs"][0]["curve"])  # one window holds all three points: mean -0.3
    assert mmer0 == pytest.approx(-0.3)
    # two seeds: MMER -0.3 and 0.1 -> mean -0.10 ± 0.28; final -0.25 and 0.35 -> 0.05 ± 0.42
    assert "| RepeatPreviousEasy | -0.10 ± 0.28 (0.05 ± 0.42) |" in text
    assert "-0.30 (–)" in text  # the peer: one seed, no final evaluation
    assert "| 40 | 0.960 |" in text and "not reached" in text
    assert "**RTRL elstm**: `agent.core=elstm agent.learning=rtrl agent.encoder_grad=segment`" in text
    assert "**TBPTT GRU" not in text, "a rule that did not run is not in the rules list"
    assert "the rest" in text and f"then `{pg.SHARED[0]}` for every rule" in text
    # the targets section: RTRL lru was not run here, so no target can read as met
    assert "## Targets" in text and ": met" not in text
    # the finding first: the per-task chart and the targets lead, "Reproduce" closes the page
    assert text.index("(results/popgym_tasks.png)") < text.index("## Targets") < text.index("## Every rule") \
        < text.index("## Reproduce")
    assert text.split("## Reproduce")[1].count("- `rtrl-rl bench popgym") == 3
    assert "aggregate" not in data, "the page stores nothing derived in the JSON"


def test_the_full_grid_note_is_decided_from_the_runs():
    from rtrl_rl.bench.popgym_page import missing_from_full_grid, missing_notes

    data = _tiny_result()
    full = pg.GRIDS["full"]()
    n_runs = len(full.tasks) * len(full.seeds)
    missing = missing_from_full_grid(data)
    assert missing["rtrl-elstm"] == n_runs - 2 and missing[pg.PEER] == n_runs - 1 and "rtrl-lru+wide" not in missing
    assert "missing from this page" in missing_notes(data, pg.PEER)[2]
    run = data["runs"][0]
    data["runs"] = [{**run, "task": t, "rule": r, "seed": s} for t in pg.TASKS for s in (0, 1, 2)
                    for r in [*full.rules, pg.PEER]]
    data["runs"][0] = {k: v for k, v in data["runs"][0].items() if k not in ("mmer", "curve")} | {"error": "diverged"}
    assert missing_from_full_grid(data) == {}, "a run that failed was still run"
    assert "missing from this page" not in "\n".join(missing_notes(data, pg.PEER))


def test_a_result_of_levers_only_still_gets_its_page(tmp_path):
    # the curves plots leave the levers out: their panels are empty, and the page must still be written
    data = _tiny_result()
    data["runs"] = [{**data["runs"][0], "rule": "rtrl-lru+input-mixer"},
                    {**data["runs"][0], "rule": "tbptt-lstm+entropy-1e-2", "mmer": 0.5}]
    md = tmp_path / "results_popgym.md"
    write_page(data, tmp_path / "results" / "popgym.json", md)
    text = md.read_text()
    # each variant sits under its own rule's row (which did not run here: dashes)
    rows = [line for line in text.splitlines() if line.startswith("| RTRL lru") or line.startswith("| TBPTT LSTM")
            or line.startswith("| &nbsp;")]
    assert rows[:4] == ["| RTRL lru | – (–) |",
                        "| &nbsp;&nbsp;RTRL lru, a ReLU layer over the whole step input before the core | -0.30 (-0.25) |",
                        "| TBPTT LSTM (T = 10) | – (–) |",
                        "| &nbsp;&nbsp;TBPTT LSTM (T = 10), entropy cost 0.01 (the library's default) | 0.50 (-0.25) |"]


@pytest.mark.parametrize("args, message", [(["--rtrl-cores", "nope"], "unknown core"),
                                           (["--tasks", "Nope"], "invalid choice"), (["--steps", "0"], "must be positive"),
                                           (["--rules", "tbptt-nope"], "unknown rule"),
                                           (["--resume"], "no "), (["--report-only"], "no ")])
def test_cli_refuses_bad_input_before_running(tmp_path, capsys, args, message):
    assert bench([*args, "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # refused before anything was written


def test_the_experiment_is_a_bench_target(capsys):
    assert bench(["--help"]) == 0
    out = capsys.readouterr().out
    assert "--quick" in out and "--peer" in out and "--resume" in out


@pytest.mark.slow  # two spawned training processes: tens of seconds on a shared machine
def test_the_tiny_grid_runs_end_to_end(tmp_path):
    pytest.importorskip("popgym", reason='popgym is not installed: pip install "rtrl-rl[popgym]"')
    out = tmp_path / "results"
    assert bench(["--grid", "tiny", "--tasks", "RepeatPreviousEasy", "--out", str(out), "--work-dir",
                  str(tmp_path / "w")]) == 0
    data = json.loads((out / "popgym.json").read_text())
    assert {r["rule"] for r in data["runs"]} == {"rtrl-elstm", "tbptt-lstm-episode"}
    for run in data["runs"]:
        assert run["curve"] and run["mmer"] == mmer(run["curve"]) and run["final_return"] is not None
    assert (tmp_path / "results_popgym_3m.md").is_file()


def test_peer_adapter_on_a_few_hundred_steps():
    pytest.importorskip("sb3_contrib", reason='sb3-contrib is not installed: pip install "rtrl-rl[peers]"')
    pytest.importorskip("popgym", reason='popgym is not installed: pip install "rtrl-rl[popgym]"')
    from rtrl_rl.bench.popgym_peer import run_recurrent_ppo

    for name in ("AutoencodeEasy", "CountRecallEasy"):  # Tuple and MultiDiscrete observations, flattened for SB3
        result = run_recurrent_ppo(f"popgym:{name}", 256, seed=0, eval_episodes=2, n_steps=32, batch_size=64,
                                   n_epochs=1)
        assert result["steps"] >= 256 and result["evaluations"][-1]["episodes"] == 2
    recall = run_recurrent_ppo("memory:recall", 256, options={"delay": 2}, eval_episodes=8, eval_interval_steps=256,
                               target_success=0.95, n_steps=32, batch_size=64, n_epochs=1)
    assert recall["curve"] and 0.0 <= recall["evaluations"][0]["success_rate"] <= 1.0
    assert mmer(recall["curve"]) is not None
    # a wall budget stops training long before the step budget (equal-wall-time comparisons)
    short = run_recurrent_ppo("popgym:RepeatPreviousEasy", 10_000_000, eval_episodes=2, wall_budget_s=0.5,
                              n_steps=32, batch_size=64, n_epochs=1)
    assert short["steps"] < 10_000_000 and short["wall_budget_s"] == 0.5 and short["evaluations"]


def _cell(mmer: float, wall_s: float = 100.0, steps: int = 3_000_000) -> dict:
    return {"mmer": {"mean": mmer}, "wall_s": wall_s, "steps": steps}


def test_targets_verdicts_by_hand():
    from rtrl_rl.bench.popgym_targets import verdicts

    agg = {
        # inside the segment: 0.86 is within 0.05 of 0.90; the peer is beaten
        "RepeatPreviousEasy": {BEST: _cell(0.86), "tbptt-lstm": _cell(0.90), pg.PEER: _cell(-0.5)},
        # beyond the segment, LSTM below 0.9: +0.08 is not the +0.1 asked; the episode rule is matched
        # (0.30 >= 0.40 - 0.05 fails) and costs more per step
        "RepeatFirstEasy": {BEST: _cell(0.30), "tbptt-lstm": _cell(0.22),
                            "tbptt-lstm-episode": _cell(0.40, wall_s=400.0), pg.PEER: _cell(0.5)},
        # beyond the segment but LSTM solves it (>= 0.9): the +0.1 rule does not apply
        "CountRecallEasy": {BEST: _cell(0.95), "tbptt-lstm": _cell(0.92)},
        # RTRL missing: nothing is judged
        "MineSweeperEasy": {"tbptt-lstm": _cell(0.1)},
    }
    v = verdicts(agg)
    rows = v["tasks"]
    assert rows["RepeatPreviousEasy"]["near_lstm"] is True and rows["RepeatPreviousEasy"]["beyond_segment"] is None
    assert rows["RepeatPreviousEasy"]["beats_peer"] is True and rows["RepeatFirstEasy"]["beats_peer"] is False
    assert rows["RepeatFirstEasy"]["beyond_segment"] is False and rows["RepeatFirstEasy"]["matches_episode"] is False
    assert rows["RepeatFirstEasy"]["cheaper_than_episode"] is True
    assert rows["CountRecallEasy"]["beyond_segment"] is None and rows["CountRecallEasy"]["near_lstm"] is True
    assert all(value is None for key, value in rows["MineSweeperEasy"].items() if key not in ("lstm",))
    assert v["summary"]["near_lstm"] == (3, 3) and v["summary"]["beyond_segment"] == (0, 1)
    assert v["summary"]["beats_peer"] == (1, 2)


def test_resume_joins_grids_and_refuses_another_budget():
    from rtrl_rl.bench.driver import join_grids

    saved = _tiny_result()["grid"]
    fresh = pg.describe(pg.grid("tiny", ["RepeatFirstEasy"], ["tbptt-gru"], [2], 3840), pg.rules())
    joined = join_grids(saved, fresh)
    assert joined["tasks"] == ["RepeatPreviousEasy", "RepeatFirstEasy"] and joined["seeds"] == [0, 1, 2]
    assert joined["episodes"] == {"RepeatPreviousEasy": 51, "RepeatFirstEasy": 51}
    with pytest.raises(ValueError, match="total_steps"):
        join_grids(saved, {**fresh, "total_steps": 1})
    with pytest.raises(ValueError, match="shared"):
        join_grids(saved, {**fresh, "shared": []})


def _saved_tiny(out: Path) -> dict:
    """The tiny grid's result with RepeatPreviousEasy rtrl-elstm seeds 0 and 1, saved in ``out``."""
    out.mkdir()
    saved = _tiny_result()
    saved["grid"] = pg.describe(pg.GRIDS["tiny"](), pg.rules())
    saved["runs"] = [{**r, "length": SEGMENT_LENGTH} for r in saved["runs"][:2]]
    (out / "popgym.json").write_text(json.dumps(saved))
    return saved


def test_resume_runs_only_what_the_saved_json_lacks(tmp_path, monkeypatch):
    from rtrl_rl.bench import driver

    out = tmp_path / "results"
    saved = _saved_tiny(out)
    asked: list[dict] = []
    monkeypatch.setattr(driver, "run_grid", lambda specs, *a, **k: asked.extend(specs))
    assert bench(["--grid", "tiny", "--resume", "--seeds", "0", "1", "--tasks", "RepeatPreviousEasy", "--out",
                  str(out)]) == 0
    assert [(s["rule"], s["seed"]) for s in asked] == [("tbptt-lstm-episode", 0), ("tbptt-lstm-episode", 1)]
    again = json.loads((out / "popgym.json").read_text())
    assert len(again["runs"]) == 2 and [h["command"] for h in again["meta"]["history"]][-1] == \
        "rtrl-rl bench popgym --grid tiny --resume --seeds 0 1 --tasks RepeatPreviousEasy"


def test_a_resume_with_nothing_to_run_leaves_the_history_as_it_was(tmp_path, monkeypatch, capsys):
    from rtrl_rl.bench import driver

    out = tmp_path / "results"
    saved = _saved_tiny(out)
    monkeypatch.setattr(driver, "run_grid", lambda specs, *a, **k: pytest.fail(f"ran {specs}") if specs else None)
    assert bench(["--grid", "tiny", "--resume", "--seeds", "0", "--tasks", "RepeatPreviousEasy", "--rules",
                  "rtrl-elstm", "--out", str(out)]) == 0
    assert "nothing to run" in capsys.readouterr().out
    assert json.loads((out / "popgym.json").read_text())["meta"] == saved["meta"]
    # a resume that runs something is recorded
    asked: list[dict] = []
    monkeypatch.setattr(driver, "run_grid", lambda specs, *a, **k: asked.extend(specs))
    assert bench(["--grid", "tiny", "--resume", "--seeds", "2", "--tasks", "RepeatPreviousEasy", "--rules",
                  "rtrl-elstm", "--out", str(out)]) == 0
    assert asked and len(json.loads((out / "popgym.json").read_text())["meta"]["history"]) == \
        len(saved["meta"]["history"]) + 1


def test_the_peer_versions_are_read_without_importing_the_old_gym():
    # stable-baselines3 imports the old gym, whose banner opened every bench invocation's output
    import subprocess
    import sys

    pytest.importorskip("sb3_contrib", reason='sb3-contrib is not installed: pip install "rtrl-rl[peers]"')
    code = ("import sys; from rtrl_rl.bench.popgym_peer import peer_versions, sb3_missing; "
            "v = peer_versions(); print(sorted(v), sb3_missing(), 'gym' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split("\n")[0] == "['sb3_contrib', 'stable_baselines3'] None False"
    assert "unmaintained" not in out.stderr


def test_a_peer_run_names_a_command_that_runs_it():
    spec = pg.peer_specs(["RepeatFirstEasy"], [1], 3_000_000, 270.0)[0]
    assert pg.peer_command(spec) == "rtrl-rl bench popgym --no-grid --peer --peer-wall-s 270 --tasks " \
                                    "RepeatFirstEasy --seeds 1"
    args = cli.build_parser().parse_args(pg.peer_command(spec).split()[1:])
    assert args.no_grid and args.peer and args.peer_wall_s == 270 and args.tasks == ["RepeatFirstEasy"]


def test_the_history_holds_commands_without_the_places_of_files():
    from rtrl_rl.bench.record import without_places

    typed = "rtrl-rl bench popgym --out /tmp/x/results --page=/tmp/x/p.md --seeds 0 --work-dir /tmp/w; then x"
    assert without_places(typed) == "rtrl-rl bench popgym --seeds 0; then x"


def test_side_by_side_cost_decides_cheaper_per_step():
    from rtrl_rl.bench.popgym_page import cost_section
    from rtrl_rl.bench.popgym_targets import targets_section, verdicts

    # by the grid's wall times RTRL is cheaper (100 s against 400 s); measured side by side it is not
    agg = {"RepeatFirstEasy": {BEST: _cell(0.30), "tbptt-lstm": _cell(0.22),
                               "tbptt-lstm-episode": _cell(0.40, wall_s=400.0)}}
    cost = {"steps": 1000, "rounds": 2, "rules": [BEST, "tbptt-lstm-episode"],
            "tasks": {"RepeatFirstEasy": {BEST: [3e-5, 5e-5], "tbptt-lstm-episode": [2e-5, 2e-5],
                                          "ratio": 2.0}}}
    assert verdicts(agg)["tasks"]["RepeatFirstEasy"]["cheaper_than_episode"] is True
    assert verdicts(agg, cost=cost)["tasks"]["RepeatFirstEasy"]["cheaper_than_episode"] is False
    other = {**cost, "rules": ["rtrl-elstm", "tbptt-lstm-episode"]}  # a measurement of another rule is not used
    assert verdicts(agg, cost=other)["tasks"]["RepeatFirstEasy"]["cheaper_than_episode"] is True
    text = "\n".join(targets_section(agg, {}, 1, "270 s", cost=cost))
    assert "lower wall time per step: 0 of 1 measured tasks: **not met** (measured side by side" in text
    table = "\n".join(cost_section(cost, {BEST: "RTRL lru"}))
    assert "| RepeatFirstEasy | 40.0 | 20.0 | 2.00 |" in table and "| RTRL lru |" in table
    assert cost_section(None, {}) == []


@pytest.mark.slow  # four short training runs in this process
def test_cost_measurement_alternates_the_rules_in_one_process():
    pytest.importorskip("popgym", reason='popgym is not installed: pip install "rtrl-rl[popgym]"')
    from rtrl_rl.bench.popgym_cost import COST_RULES, measure

    lines = []
    g = pg.grid("cost", ["RepeatPreviousEasy"], list(COST_RULES), [0], 640, 0, ["env.num_envs=16", "log.tensorboard=false"])
    runs = {"RepeatPreviousEasy": {s["rule"]: s for s in pg.specs(g)}}
    cost = measure(runs, steps=640, rounds=2, log=lines.append)
    cell = cost["tasks"]["RepeatPreviousEasy"]
    assert cost["rules"] == [BEST, "tbptt-lstm-episode"] and len(cell[BEST]) == 2
    assert all(0 < s < 1 for r in cost["rules"] for s in cell[r])
    medians = [statistics.median(cell[r]) for r in cost["rules"]]
    assert cell["ratio"] == pytest.approx(medians[0] / medians[1], rel=1e-3)
    assert lines and "RepeatPreviousEasy" in lines[0]


def test_committed_page_is_regenerated_from_its_json(tmp_path):
    """docs/results_popgym_3m.md is exactly what the page code makes of docs/results/popgym.json."""
    docs = Path(__file__).resolve().parents[1] / "docs"
    data = json.loads((docs / "results" / "popgym.json").read_text())
    write_page(data, tmp_path / "results" / "popgym.json", tmp_path / "results_popgym_3m.md")
    assert (tmp_path / "results_popgym_3m.md").read_text() == (docs / "results_popgym_3m.md").read_text()
    assert "/work/" not in json.dumps(data) and "run_dir" not in data["runs"][0], "no local paths in the JSON"
