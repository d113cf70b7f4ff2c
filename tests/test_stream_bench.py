"""The streaming page is rebuilt from its JSON alone (plumbing only; the numbers are measured
by ``rtrl-rl bench stream``), and a resumed grid runs only what its JSON lacks."""

import json
from pathlib import Path

import pytest

from rtrl_rl import cli
from rtrl_rl.bench import stream
from rtrl_rl.bench.stream import GRIDS, RULES, TASKS, describe
from rtrl_rl.bench.stream_page import beats_feedforward, write_page

DOCS = Path(__file__).resolve().parents[1] / "docs"


def write_report(data: dict, out: Path, md: Path) -> None:
    write_page(data, out / "stream.json", md)

POPGYM = "RepeatFirstEasy"


def _run(task, rule, seed, score):
    memory = TASKS[task]["metric"] == "success_rate"
    return {"task": task, "rule": rule, "seed": seed, "steps": 100, "updates": 100, "wall_s": 2.0, "sps": 50.0,
            "success_rate": score if memory else None, "mean_return": score, "mmer": score - 0.1, "mmer_window": 25,
            "max_rss_mib": 300.0, "train_curve": [[25, 0.1], [50, score]],
            "evaluations": [{"step": 50, "success_rate": 0.5, "mean_return": 0.5},
                            {"step": 100, "success_rate": score, "mean_return": score}]}


def _data(tasks=("tmaze", POPGYM), seeds=(0, 1), planned=None):
    runs = [_run(task, rule, seed, 0.5 + 0.1 * seed + (0.3 if rule == "stream-rtrl-elstm" else 0.0))
            for task in tasks for rule in RULES for seed in seeds]
    grid = describe(GRIDS["full"].narrowed(tasks=list(tasks), seeds=list(seeds), steps=100))
    if planned:  # a grid stopped early: more seeds planned than finished
        grid["seeds"] = list(range(planned))
    return {"meta": {"machine": {"nproc": 2, "cpu": "cpu", "mem_gib": 1, "load_start": "1 / 1 / 1", "load_end": "2"},
                     "versions": {"git_commit": "abc"},
                     "history": [{"command": "rtrl-rl bench stream", "wall_s": 10.0, "jobs": 2, "cpu": "cpu"}]},
            "grid": grid, "runs": runs,
            "throughput": [{"rule": "stream-rtrl-elstm", "steps": 100, "sps": 20.0, "cpu_sps": 150.0},
                           {"rule": "stream-feedforward", "steps": 100, "sps": 30.0, "cpu_sps": 230.0},
                           {"rule": "segment-rtrl-elstm-128", "steps": 1280, "sps": 3000.0, "cpu_sps": 1400.0}],
            "drift": [{"lr": 1.0, "steps": 10, "median_rel_error": 0.01, "p90_rel_error": 0.1,
                       "max_rel_error": 0.5, "mean_effective_step": 0.01}],
            "memory": [{"delay": 10, "episode_length": 12, "steps": 100, "max_rss_mib": 300.0}]}


def test_report_has_every_rule_both_task_kinds_and_the_plot(tmp_path):
    md = tmp_path / "results_stream.md"
    write_report(_data(), tmp_path / "results", md)
    text = md.read_text()
    assert (tmp_path / "results" / "stream_curves.png").stat().st_size > 0
    assert "](results/stream_curves.png)" in text
    row = next(line for line in text.splitlines() if line.startswith("| tmaze (chance"))
    assert row.count("0.55 ± 0.07") == len(RULES) - 1 and "0.85 ± 0.07" in row
    popgym_row = next(line for line in text.splitlines() if line.startswith(f"| {POPGYM} |") and "±" in line)
    assert "0.55 ± 0.07 (0.45 ± 0.07)" in popgym_row, "final greedy return (training MMER)"
    assert "| 12 | 300 |" in text and "1.00e-02" in text and "Incomplete" not in text
    assert "Budget: 100 environment steps per run" in text
    assert "one stream trains at 150–230 steps per CPU-second" in text, "the segment agent is not one stream"
    assert "| stream, RTRL eLSTM | 20 | 150 |" in text
    assert "evaluations included, 2 runs at a time, one torch thread each" in text
    assert "Left out of this grid to fit its compute budget: recall-blank-2, recall-blank, recall-distractors" in text
    # the finding first: the chart and what beats the feed-forward stream lead, "Reproduce" closes the page
    assert text.index("(results/stream_curves.png)") < text.index("## What beats the feed-forward stream") \
        < text.index("## Memory tasks") < text.index("## Reproduce")


def test_only_a_clear_margin_beats_the_feed_forward_stream_and_a_partial_grid_says_so(tmp_path):
    winners = beats_feedforward(_data())
    assert winners == {"tmaze": ["stream, RTRL eLSTM"], POPGYM: ["stream, RTRL eLSTM"]}
    assert beats_feedforward(_data(seeds=(0,))) == {"tmaze": None, POPGYM: None}, "one seed: not judged"
    md = tmp_path / "page.md"
    write_report(_data(planned=9), tmp_path / "results", md)
    assert f"**Incomplete:** {2 * 2 * len(RULES)} of the {2 * 9 * len(RULES)} planned runs" in md.read_text()


@pytest.mark.parametrize("task", list(TASKS))
def test_every_task_names_its_metric_and_evaluations(task):
    t = TASKS[task]
    assert t["metric"] in ("success_rate", "mean_return") and t["evaluations"] >= 1 and t["eval_episodes"] > 0
    assert (t["chance"] is None) == (t["metric"] == "mean_return")


def test_resume_runs_only_the_cells_the_json_lacks(tmp_path, monkeypatch, capsys):
    from rtrl_rl.bench import driver

    out = tmp_path / "results"
    out.mkdir()
    saved = _data(tasks=("tmaze",), seeds=(0,))
    saved["grid"] = describe(GRIDS["full"].narrowed(tasks=["tmaze"], rules=["stream-feedforward"], seeds=[0, 1],
                                                    steps=100))
    saved["runs"] = [r for r in saved["runs"] if r["rule"] == "stream-feedforward"]
    (out / "stream.json").write_text(json.dumps(saved))
    asked: list[dict] = []
    monkeypatch.setattr(driver, "run_grid", lambda specs, *a, **k: asked.extend(specs))
    argv = ["bench", "stream", "--resume", "--tasks", "tmaze", "--rules", "stream-feedforward", "stream-rtrl-elstm",
            "--seeds", "0", "1", "--steps", "100", "--out", str(out)]
    assert cli.main(argv) == 0
    learning = [(s["rule"], s["seed"]) for s in asked if "into" not in s]
    assert learning == [("stream-rtrl-elstm", 0), ("stream-rtrl-elstm", 1), ("stream-feedforward", 1)]
    assert {s.get("lr") for s in asked if s.get("into") == "drift"} == {0.1, 0.01}, "lr 1.0 is measured already"
    assert {s.get("delay") for s in asked if s.get("into") == "memory"} == {100, 1000}
    assert not [s for s in asked if s.get("into") == "throughput"], "both rules' throughput rows are saved"
    asked.clear()
    assert cli.main([*argv[:-4], "--steps", "200", "--out", str(out)]) == 2, "another budget is refused"
    assert "the saved grid has steps = 100, this invocation 200" in capsys.readouterr().err and not asked


def test_rows_measured_on_another_machine_are_named(tmp_path):
    md = tmp_path / "page.md"
    write_report(_data(), tmp_path / "results", md)
    assert "More than one machine" not in md.read_text() and "| CPU |" not in md.read_text()
    mixed = _data()
    for row in [*mixed["runs"], *mixed["throughput"], *mixed["drift"], *mixed["memory"]]:
        row["cpu"] = "cpu"
    mixed["throughput"][0]["cpu"] = "Faster CPU"
    write_report(mixed, tmp_path / "results", md)
    text = md.read_text()
    assert "Faster CPU: 1 run (the throughput of stream, RTRL eLSTM); cpu: the other" in text
    assert "| stream, RTRL eLSTM | 20 | 150 | Faster CPU |" in text, "the throughput table names each row's CPU"


def test_the_drift_cell_measures_the_online_gradient(tmp_path):
    row = stream.run_cell({"into": "drift", "lr": 0.1, "steps": 30}, str(tmp_path))
    assert row["into"] == "drift" and row["lr"] == 0.1 and row["steps"] == 30
    assert 0 <= row["median_rel_error"] <= row["p90_rel_error"] <= row["max_rel_error"]


def test_committed_page_is_regenerated_from_its_json(tmp_path):
    data = json.loads((DOCS / "results" / "stream.json").read_text())
    write_report(data, tmp_path / "results", tmp_path / "results_stream.md")
    assert (tmp_path / "results_stream.md").read_text() == (DOCS / "results_stream.md").read_text()
