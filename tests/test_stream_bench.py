"""The streaming report is rebuilt from its JSON alone (plumbing only; the numbers are measured
by ``python -m benchmarks.stream``)."""

import pytest

from benchmarks.stream import RULES, TASKS
from benchmarks.stream_report import beats_feedforward, write_report

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
    return {"meta": {"command": "python -m benchmarks.stream", "wall_s": 10.0, "load_end": "1 / 1 / 1", "jobs": 2,
                     "machine": {"nproc": 2, "cpu": "cpu", "load_start": "1 / 1 / 1"},
                     "versions": {"git_commit": "abc"}},
            "tasks": {t: TASKS[t] for t in tasks},
            "rules": {r: {"label": label, "overrides": o} for r, (label, o) in RULES.items()},
            "model": ["agent.hidden_size=16"], "steps": 100, "seeds": list(seeds), "runs": runs,
            "planned_runs": planned or len(runs),
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
    popgym_row = next(line for line in text.splitlines() if line.startswith(f"| {POPGYM} |"))
    assert "0.55 ± 0.07 (0.45 ± 0.07)" in popgym_row, "final greedy return (training MMER)"
    assert "| 12 | 300 |" in text and "1.00e-02" in text and "Incomplete" not in text
    assert "Budget: 100 environment steps per run" in text
    assert "one stream trains at 150–230 steps per CPU-second" in text, "the segment agent is not one stream"
    assert "| stream, RTRL eLSTM | 20 | 150 |" in text
    assert "evaluations included, 2 runs at a time, one torch thread each" in text
    assert "Left out of this grid to fit its compute budget: recall-blank-2, recall-blank, recall-distractors" in text


def test_only_a_clear_margin_beats_the_feed_forward_stream_and_a_partial_grid_says_so(tmp_path):
    winners = beats_feedforward(_data())
    assert winners == {"tmaze": ["stream, RTRL eLSTM"], POPGYM: ["stream, RTRL eLSTM"]}
    assert beats_feedforward(_data(seeds=(0,))) == {"tmaze": None, POPGYM: None}, "one seed: not judged"
    md = tmp_path / "page.md"
    write_report(_data(planned=99), tmp_path / "results", md)
    assert f"**Incomplete:** {2 * 2 * len(RULES)} of the 99 planned runs" in md.read_text()


@pytest.mark.parametrize("task", list(TASKS))
def test_every_task_names_its_metric_and_evaluations(task):
    t = TASKS[task]
    assert t["metric"] in ("success_rate", "mean_return") and t["evaluations"] >= 1 and t["eval_episodes"] > 0
    assert (t["chance"] is None) == (t["metric"] == "mean_return")


def test_resume_keeps_the_finished_runs_of_the_same_budget_only(tmp_path):
    import json

    from benchmarks.stream import _resumable

    old = _data(planned=99)
    old["meta"]["wall_s"] = 7.0
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps(old))
    grid = {"steps": 100, "model": old["model"], "tasks": {"tmaze": {}}, "rules": {"stream-feedforward": {}},
            "seeds": [1, 2]}
    done = _resumable(partial, grid)
    assert [(r["task"], r["rule"], r["seed"]) for r in done["runs"]] == [("tmaze", "stream-feedforward", 1)]
    assert done["drift"] == [{**row, "cpu": "cpu"} for row in old["drift"]] and done["wall_s"] == 7.0
    with pytest.raises(SystemExit, match="another budget"):
        _resumable(partial, {**grid, "steps": 200})
    assert _resumable(tmp_path / "none.json", grid) == {}


def test_resume_measures_only_the_rows_it_lacks():
    from benchmarks.stream import _kept_rows

    saved = [{"rule": "stream-rtrl-elstm", "sps": 1.0}, {"rule": "stream-feedforward", "sps": 2.0}]
    kept = _kept_rows(saved, "throughput", ["stream-rtrl-elstm", "stream-rtrl-rtu"])
    assert kept == {"stream-rtrl-elstm": saved[0]}, "a rule no longer asked for is dropped, a new one is not kept"
    assert _kept_rows([{"lr": 0.1}], "drift", [1.0, 0.1]) == {0.1: {"lr": 0.1}}


def test_rows_measured_on_another_machine_are_named(tmp_path, monkeypatch):
    import json

    from benchmarks.stream import _resumable

    old = _data()
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps(old))
    grid = {"steps": 100, "model": old["model"], "tasks": {"tmaze": {}}, "rules": {"stream-feedforward": {}},
            "seeds": [0]}
    done = _resumable(partial, grid)
    assert {r["cpu"] for r in [*done["runs"], *done["throughput"], *done["drift"]]} == {"cpu"}, "the old machine's"
    md = tmp_path / "page.md"
    write_report(_data(), tmp_path / "results", md)
    assert "More than one machine" not in md.read_text() and "| CPU |" not in md.read_text()
    mixed = _data()
    mixed["throughput"][0]["cpu"] = "Faster CPU"
    write_report(mixed, tmp_path / "results", md)
    text = md.read_text()
    assert "Faster CPU: 1 run (the throughput of stream, RTRL eLSTM); an unrecorded CPU: the other" in text
    assert "| stream, RTRL eLSTM | 20 | 150 | Faster CPU |" in text, "the throughput table names each row's CPU"
