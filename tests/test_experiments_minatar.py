"""The MinAtar benchmark: its grid, the final return and targets by hand, the quick grid end to end,
the committed page from its committed JSON."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest

from rtrl_rl import cli
from rtrl_rl.bench import minatar as mb
from rtrl_rl.bench.minatar_page import PUBLISHED_NAME, final_return, targets, write_page

DOCS = Path(__file__).resolve().parents[1] / "docs"


def bench(argv: list[str]) -> int:
    try:
        return cli.main(["bench", "minatar", *argv])
    except SystemExit as exit_info:
        return exit_info.code


def test_full_grid_is_five_games_four_rules_three_seeds_at_5m_frames():
    specs = mb.specs(mb.GRIDS["full"]())
    assert len(specs) == 5 * 4 * 3
    assert {s["total_steps"] for s in specs} == {5_000_000}
    first = specs[0]
    assert first["config"] == "minatar/segment" and first["overrides"][0] == f"env.id=minatar:{first['task']}"
    stream_ff = next(s for s in specs if s["rule"] == "stream-ff")
    assert stream_ff["config"] == "minatar/stream" and "agent.core=none" in stream_ff["overrides"]
    assert all("log.tensorboard=true" in s["overrides"] and "log.eval_episodes=0" in s["overrides"] for s in specs)


def _args(**kw) -> argparse.Namespace:
    return argparse.Namespace(**{"grid": "full", "games": None, "rules": None, "seeds": None, **kw})


def test_a_narrowed_invocation_names_the_whole_grid_so_it_resumes_into_the_same_result():
    part = mb.build_grid(_args(games=["Breakout", "Asterix"], rules=["segment-rtrl"], seeds=[0]))
    assert [(s["task"], s["rule"], s["seed"]) for s in mb.specs(part)] == [
        ("Breakout", "segment-rtrl", 0), ("Asterix", "segment-rtrl", 0)]  # in the order asked
    assert mb.describe(part) == mb.describe(mb.GRIDS["full"]())
    assert mb.describe(part)["total_steps"] == {"segment": 5_000_000, "stream": 5_000_000}


def test_cost_runs_go_to_their_own_list():
    specs = mb.cost_specs(["stream-rtrl"], 100)
    assert specs[0]["into"] == "cost" and specs[0]["total_steps"] == 100 and specs[0]["task"] == "Breakout"


def test_final_return_is_the_mean_over_the_last_5_percent_of_steps():
    run = {"curve": [[0, 0.0, 100.0], [940, 1.0, 5.0], [950, 2.0, 1.0], [999, 3.0, 3.0]]}
    assert final_return(run, 0.05, 1000) == pytest.approx(2.0)  # steps >= 950: 1 and 3
    assert final_return({"curve": [[10, 0.0, 1.0]]}, 0.05, 1000) is None


def _result(finals: dict[str, float], wall_s: float = 600.0) -> dict:
    grid = mb.describe(mb.GRIDS["full"]())
    runs = [{"task": g, "rule": "segment-rtrl", "seed": 0, "steps": 5_000_000, "sps": 8000.0, "process_wall_s": wall_s,
             "curve": [[4_990_000, 1.0, v]]} for g, v in finals.items()]
    return {"grid": grid, "runs": runs}


def _published(dqn: dict[str, float | None]) -> dict:
    return {"sources": [{"key": "minatar-dqn", "source": "a paper", "note": "", "values": dqn},
                        {"key": "stream-ac-lambda", "source": "another", "note": "plots only",
                         "values": dict.fromkeys(dqn)}]}


def test_targets_by_hand():
    games = mb.GAME_NAMES
    data = _result({g: 10.0 for g in games}, wall_s=700.0)
    # DQN 9 on three games (matched), 11 on two (missed): 3 of 5 -> met
    rows = targets(data, _published({g: 9.0 if i < 3 else 11.0 for i, g in enumerate(games)}))
    assert "met on 3 of 5" in rows[0][1] and "**met**" in rows[0][1]
    assert "**cannot be judged**" in rows[1][1] and "no published figure" in rows[1][1]
    assert rows[2][1].startswith("**met**")
    rows = targets(_result({g: 10.0 for g in games}, wall_s=1000.0), _published({g: 11.0 for g in games}))
    assert "**not met**" in rows[0][1] and rows[2][1].startswith("**not met**")
    rows = targets(_result({"Breakout": 10.0}), _published(dict.fromkeys(games)))
    assert "**cannot be judged**" in rows[0][1] and "measured on 1 of 5 games" in rows[0][1]


def test_the_quick_grid_runs_end_to_end(tmp_path):
    pytest.importorskip("minatar", reason='minatar is not installed: pip install "rtrl-rl[minatar]"')
    out = tmp_path / "results"
    out.mkdir()
    shutil.copy(DOCS / "results" / PUBLISHED_NAME, out / PUBLISHED_NAME)
    assert bench(["--quick", "--jobs", "2", "--out", str(out)]) == 0
    data = json.loads((out / "minatar.json").read_text())
    assert {r["rule"] for r in data["runs"]} == {"segment-rtrl", "stream-ff"}
    for run in data["runs"]:
        assert run["steps"] >= data["grid"]["total_steps"][run["rule"].split("-")[0]]
        assert "error" not in run and run["command"].startswith("rtrl-rl train --config minatar/")
        assert all(len(point) == 3 for point in run["curve"])
    page = (tmp_path / "results_minatar.md").read_text()
    assert "## Missing cells" in page and "- none: every cell of the grid has a finished run" in page
    assert "feed-forward" in page and "segment agent, feed-forward" not in page  # only the grid's rules
    assert (out / "minatar_curves.png").stat().st_size > 0


def test_the_experiment_is_a_bench_target_and_refuses_bad_input(tmp_path, capsys):
    assert bench(["--report-only", "--out", str(tmp_path)]) == 2
    assert "no " in capsys.readouterr().err
    assert bench(["--no-grid", "--out", str(tmp_path)]) == 2


def test_committed_page_is_regenerated_from_its_json(tmp_path):
    """docs/results_minatar.md is exactly what the page code makes of docs/results/minatar.json."""
    data = json.loads((DOCS / "results" / "minatar.json").read_text())
    (tmp_path / "results").mkdir()
    shutil.copy(DOCS / "results" / PUBLISHED_NAME, tmp_path / "results" / PUBLISHED_NAME)
    md, png = write_page(data, tmp_path / "results" / "minatar.json", tmp_path / "results_minatar.md")
    assert md.read_text() == (DOCS / "results_minatar.md").read_text()
    assert png.stat().st_size > 0
    assert data["grid"]["name"] == "full" and data["grid"]["total_steps"]["segment"] == 5_000_000
