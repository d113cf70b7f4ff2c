"""The streaming report is rebuilt from its JSON alone (plumbing only; the numbers are measured
by ``python -m benchmarks.stream``)."""

from benchmarks.stream import RULES, TASKS
from benchmarks.stream_report import write_report


def _data():
    runs = [{"task": "tmaze", "rule": rule, "seed": seed, "steps": 100, "wall_s": 2.0, "sps": 50.0,
             "success_rate": 0.5 + 0.1 * seed, "max_rss_mib": 300.0,
             "evaluations": [{"step": 50, "success_rate": 0.5}, {"step": 100, "success_rate": 0.5 + 0.1 * seed}]}
            for rule in RULES for seed in (0, 1)]
    return {"meta": {"command": "python -m benchmarks.stream", "wall_s": 10.0, "load_end": "1 / 1 / 1",
                     "machine": {"nproc": 2, "cpu": "cpu", "load_start": "1 / 1 / 1"},
                     "versions": {"git_commit": "abc"}},
            "tasks": {"tmaze": {"overrides": TASKS["tmaze"][0], "chance": 0.5}},
            "rules": {r: {"label": label, "overrides": o} for r, (label, o) in RULES.items()},
            "model": ["agent.hidden_size=16"], "steps": 100, "seeds": [0, 1], "runs": runs,
            "drift": [{"lr": 1.0, "steps": 10, "median_rel_error": 0.01, "p90_rel_error": 0.1,
                       "max_rel_error": 0.5, "mean_effective_step": 0.01}],
            "memory": [{"delay": 10, "episode_length": 12, "steps": 100, "max_rss_mib": 300.0}]}


def test_report_has_every_rule_and_the_plot(tmp_path):
    md = tmp_path / "results_stream.md"
    write_report(_data(), tmp_path / "results", md)
    text = md.read_text()
    assert (tmp_path / "results" / "stream_curves.png").stat().st_size > 0
    assert "](results/stream_curves.png)" in text
    row = next(line for line in text.splitlines() if line.startswith("| tmaze (chance"))
    assert row.count("0.55 ± 0.07") == len(RULES)
    assert "| 12 | 300 |" in text and "1.00e-02" in text
