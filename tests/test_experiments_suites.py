"""The real-suite runner (python -m benchmarks.suites): runs stop on time, get evaluated
with the suite protocol, and the page is written from the recorded JSON only."""

from __future__ import annotations

import json
import time
from pathlib import Path

from rtrl_rl.experiments import suites
from rtrl_rl.experiments.suites_report import write_page

ROOT = Path(__file__).resolve().parents[1]


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
    data = suites.merge(None, runs, {"batch_command": "test", "started": "now", "minutes": 0.1})
    json.dumps(data)  # what the runner saves must be plain JSON
    md, png = write_page(data, tmp_path, tmp_path / "page.md")
    page = md.read_text()
    assert png.stat().st_size > 0 and f"({tmp_path.name}/{png.name})" in page
    for run in runs:
        assert f"| {run['config']} | {run['rule']} | 0.1 | {run['steps']:,} |" in page

    # --evaluate-only: the recorded runs are evaluated again; a run whose directory is gone keeps its record.
    data["runs"].append({**data["runs"][0], "config": "atari/pong", "evaluation_sampled": {**runs[0]["evaluation"], "episodes": 99}})
    for run in data["runs"][:2]:
        del run["evaluation_sampled"]
    (tmp_path / "suites.json").write_text(json.dumps(data))
    assert suites.main(["--evaluate-only", "--episodes", "3", "--out", str(tmp_path),
                        "--work-dir", str(tmp_path / "runs")]) == 0
    again = json.loads((tmp_path / "suites.json").read_text())["runs"]
    episodes = [(r["config"], r["evaluation"]["episodes"], r["evaluation_sampled"]["episodes"]) for r in again]
    assert sorted(episodes) == [("atari/pong", 2, 99), ("memory/recall", 3, 3), ("memory/recall", 3, 3)]


def _run(config: str, rule: str, steps: int) -> dict:
    return {"config": config, "rule": rule, "steps": steps}


def test_merge_replaces_rerun_configs_and_keeps_the_others_with_their_batch():
    # The layout of a file written before runs carried their invocation.
    old = {"command": "first", "started": "t0", "minutes": 20.0,
           "runs": [_run("atari/pong", rule, 1) for rule in suites.RULES]
           + [_run("procgen/coinrun", rule, 2) for rule in suites.RULES]}
    new = [_run("procgen/coinrun", rule, 3) for rule in suites.RULES] + [_run("atari/breakout", "RTRL eLSTM", 4)]
    merged = suites.merge(old, new, {"batch_command": "second", "started": "t1", "minutes": 60.0})
    by_config = {(r["config"], r["rule"]): r for r in merged["runs"]}
    assert len(merged["runs"]) == 5
    assert by_config[("atari/pong", "RTRL eLSTM")] == {**_run("atari/pong", "RTRL eLSTM", 1), "batch_command": "first",
                                                       "started": "t0", "minutes": 20.0}
    assert {r["steps"] for r in merged["runs"] if r["config"] == "procgen/coinrun"} == {3}
    assert by_config[("atari/breakout", "RTRL eLSTM")]["minutes"] == 60.0
    assert [r["config"] for r in merged["runs"]] == ["atari/pong", "atari/pong", "atari/breakout",
                                                    "procgen/coinrun", "procgen/coinrun"]
    assert suites.merge(merged, [], {}) == merged  # idempotent: --report-only rewrites nothing


def test_report_only_without_results_is_a_clear_error(tmp_path, capsys):
    import pytest

    with pytest.raises(SystemExit) as exit_info:
        suites.main(["--report-only", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "run without --report-only first" in capsys.readouterr().err


def test_committed_page_is_regenerated_from_its_json(tmp_path, monkeypatch):
    """docs/results_suites.md is exactly what the page code makes of docs/results/suites.json."""
    from pathlib import Path

    docs = Path(__file__).resolve().parents[1] / "docs"
    data = json.loads((docs / "results" / "suites.json").read_text())
    monkeypatch.chdir(tmp_path)  # the page names its JSON by the relative --out path
    out = Path("docs/results")
    out.mkdir(parents=True)
    md, png = write_page(data, out, Path("docs/results_suites.md"))
    assert md.read_text() == (docs / "results_suites.md").read_text()
    assert png.stat().st_size > 0
