"""The real-suite runner (python -m benchmarks.suites): runs stop on time, get evaluated
with the suite protocol, and the page is written from the recorded JSON only."""

from __future__ import annotations

import json

from rtrl_rl.experiments import suites
from rtrl_rl.experiments.suites_report import write_page


def test_pair_is_stopped_evaluated_and_reported(tmp_path):
    # The memory config stands in for a suite: the plumbing is the same and it is fast.
    runs = suites.run_pair("memory/recall", minutes=0.1, work=tmp_path / "runs", episodes=2)
    assert [r["rule"] for r in runs] == list(suites.RULES)
    for run in runs:
        assert run["exit_code"] in (0, 130)
        assert run["steps"] > 0 and run["frames"] == run["steps"]
        assert run["evaluation"]["episodes"] == 2, run["evaluation"]
    data = {"command": "test", "started": "now", "minutes": 0.1, "runs": runs, "published": suites.PUBLISHED,
            "full_steps": suites.FULL_STEPS, "frames_per_step": suites.FRAMES_PER_STEP}
    json.dumps(data)  # what the runner saves must be plain JSON
    md, png = write_page(data, tmp_path, tmp_path / "page.md")
    page = md.read_text()
    assert png.stat().st_size > 0 and f"({tmp_path.name}/{png.name})" in page
    for run in runs:
        assert f"| {run['config']} | {run['rule']} | {run['steps']:,} |" in page
