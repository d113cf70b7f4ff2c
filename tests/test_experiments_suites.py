"""The real-suite runner (rtrl-rl bench suites): runs stop on time, get evaluated with the
suite protocol, and the page is written from the recorded JSON only."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from rtrl_rl import cli
from rtrl_rl.bench import suites
from rtrl_rl.bench.suites_page import write_page

ROOT = Path(__file__).resolve().parents[1]


def _result(runs: list[dict]) -> dict:
    return {"meta": {"machine": None, "versions": {}, "history": [{"command": "test", "jobs": 1}]},
            "grid": suites.describe(list(dict.fromkeys(r["config"] for r in runs)), 16), "runs": runs}


def _start_and_wait_until_training(start):
    """``suites.start``; once the runs of all rules are started (``run_pair`` then sleeps
    for its budget), wait until each has written its config.yaml (it is then about to
    train). The 6 s budget below then counts training, not start-up: on a loaded machine
    importing torch alone can take that long, and a SIGINT before the trainer's handler is
    installed kills the run (exit -2). The wait is a generous 5 minutes."""
    pending = []

    def started(config, rule, run_dir):
        process = start(config, rule, run_dir)
        pending.append((process, run_dir))
        if len(pending) == len(suites.RULES):
            deadline = time.monotonic() + 300
            for proc, folder in pending:
                while not (folder / "config.yaml").is_file() and proc.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.05)
            time.sleep(0.5)  # from config.yaml to the first update
        return process
    return started


def test_pair_is_stopped_evaluated_and_reported(tmp_path, monkeypatch):
    # The memory config stands in for a suite: the plumbing is the same and it is fast.
    # The runs are `rtrl-rl` subprocesses: PYTHONPATH makes them run this checkout's code.
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setattr(suites, "start", _start_and_wait_until_training(suites.start))
    runs = suites.run_pair("memory/recall", minutes=0.1, work=tmp_path / "runs", episodes=2)
    assert [r["rule"] for r in runs] == list(suites.RULES)
    for run in runs:
        assert run["exit_code"] in (0, 130)
        assert run["steps"] > 0 and run["frames"] == run["steps"]
        assert run["evaluation"]["episodes"] == 2, run["evaluation"]
        assert run["evaluation_sampled"]["episodes"] == 2 and "--sample" in run["evaluation_sampled"]["command"]
        assert "--sample" not in run["evaluation"]["command"]
    data = _result(runs)
    json.dumps(data)  # what the runner saves must be plain JSON
    md, png = write_page(data, tmp_path / "results" / "suites.json", tmp_path / "page.md")
    page = md.read_text()
    assert png.stat().st_size > 0 and f"(results/{png.name})" in page
    for run in runs:
        assert f"| {run['config']} | {run['rule']} | 0.1 | {run['steps']:,} |" in page
        assert f"run_dir={suites.run_dir_of(tmp_path / 'runs', run['config'], run['rule'])}" in run["command"]
        assert f"rtrl-rl evaluate {suites.run_dir_of(tmp_path / 'runs', run['config'], run['rule'])} " in page, \
            "the page evaluates the directory the run trained into"

    # --evaluate-only: the recorded runs are evaluated again; a run whose directory is gone keeps its record.
    data["runs"].append({**data["runs"][0], "config": "atari/pong", "evaluation_sampled": {**runs[0]["evaluation"], "episodes": 99}})
    for run in data["runs"][:2]:
        del run["evaluation_sampled"]
    (tmp_path / "results").mkdir(exist_ok=True)
    (tmp_path / "results" / "suites.json").write_text(json.dumps(data))
    assert cli.main(["bench", "suites", "--evaluate-only", "--episodes", "3", "--out", str(tmp_path / "results"),
                     "--work-dir", str(tmp_path / "runs")]) == 0
    again = json.loads((tmp_path / "results" / "suites.json").read_text())["runs"]
    episodes = [(r["config"], r["evaluation"]["episodes"], r["evaluation_sampled"]["episodes"]) for r in again]
    assert sorted(episodes) == [("atari/pong", 2, 99), ("memory/recall", 3, 3), ("memory/recall", 3, 3)]


def test_a_run_replaces_the_runs_of_its_configs_and_keeps_the_others(tmp_path, monkeypatch):
    out = tmp_path / "results"
    out.mkdir()
    old = [{"config": c, "rule": rule, "minutes": 20.0, "steps": 1, "frames": 4, "wall_s": 1.0, "sps": 1.0,
            "curve": [[1, 0.0]], "exit_code": 130, "command": "x"} for c in ("atari/pong", "procgen/coinrun")
           for rule in suites.RULES]
    (out / "suites.json").write_text(json.dumps(_result(old)))
    rerun = [{**r, "minutes": 60.0, "steps": 3} for r in old if r["config"] == "procgen/coinrun"]
    monkeypatch.setattr(suites, "run_cell", lambda spec, work: {"rows": [dict(r) for r in rerun]})
    monkeypatch.setattr("rtrl_rl.bench.driver.run_grid",
                        lambda specs, work, jobs, on_result, runner: [on_result(runner(s, str(work))) for s in specs])
    assert cli.main(["bench", "suites", "--configs", "procgen/coinrun", "--minutes", "60", "--out", str(out),
                     "--work-dir", str(tmp_path / "runs")]) == 0
    data = json.loads((out / "suites.json").read_text())
    assert {(r["config"], r["steps"]) for r in data["runs"]} == {("atari/pong", 1), ("procgen/coinrun", 3)}
    assert len(data["runs"]) == 4 and data["grid"]["configs"] == ["atari/pong", "procgen/coinrun"]
    assert data["grid"]["full_steps"]["procgen/coinrun"] == 25_000_000, "the full budget is the config's"
    assert data["meta"]["history"][-1]["command"] == "rtrl-rl bench suites --configs procgen/coinrun --minutes 60"


def test_report_only_without_results_is_a_clear_error(tmp_path, capsys):
    assert cli.main(["bench", "suites", "--report-only", "--out", str(tmp_path)]) == 2
    assert "there is no" in capsys.readouterr().err


def test_committed_page_is_regenerated_from_its_json(tmp_path, monkeypatch):
    """docs/results_suites.md is exactly what the page code makes of docs/results/suites.json."""
    from pathlib import Path

    docs = Path(__file__).resolve().parents[1] / "docs"
    data = json.loads((docs / "results" / "suites.json").read_text())
    md, png = write_page(data, tmp_path / "results" / "suites.json", tmp_path / "results_suites.md")
    assert md.read_text() == (docs / "results_suites.md").read_text()
    assert png.stat().st_size > 0
    assert data["grid"]["full_steps"]["atari/breakout"] == 200_000_000, "Breakout's budget is its config's"
