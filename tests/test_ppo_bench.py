"""``rtrl-rl bench ppo`` end to end on its tiny grid (plumbing only; the figures of
``docs/results_ppo.md`` are measured by the full grid), and the committed page is what the
page code makes of the committed JSON."""

import json
from pathlib import Path

import pytest

from rtrl_rl.bench.ppo_page import write_page
from rtrl_rl.cli import main

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_the_tiny_grid_runs_every_cell_writes_the_page_and_a_resume_runs_nothing_again(tmp_path, capsys):
    out = tmp_path / "results"
    assert main(["bench", "ppo", "--grid", "tiny", "--out", str(out)]) == 0
    data = json.loads((out / "ppo.json").read_text())
    runs, cost = data["runs"], data["cost"]
    assert sorted(r["rule"] for r in runs) == ["ppo", "ppo-gradclip40", "ppo-tbptt", "vtrace"]
    assert all("error" not in r and r["steps"] <= 640 and r["cpu_s"] > 0 and r["evaluations"] and r["cpu"]
               for r in runs)
    assert any("train.max_grad_norm=0.5" in r["command"] and "agent.algorithm=ppo" in r["command"] for r in runs)
    summary = cost[0]["summary"]
    for kind in ("wall", "cpu"):
        ppo = summary["ppo"][kind]
        assert ppo["epochs_s"] > ppo["replay_forward_s"] > ppo["replay_sensitivity_update_s"] > 0
        assert ppo["update_s"] >= ppo["epochs_s"] + ppo["carry_pass_s"] * 0.99
        assert summary[f"ppo_over_vtrace_{kind}"]["update_s"] > 0
    page = (tmp_path / "results_ppo.md").read_text()
    assert "](results/ppo_curves.png)" in page and (out / "ppo_curves.png").stat().st_size > 0
    assert "| PPO, gradient clip 0.5 |" in page and "## Reproduce" in page
    capsys.readouterr()
    assert main(["bench", "ppo", "--grid", "tiny", "--out", str(out), "--resume"]) == 0
    assert "] " not in capsys.readouterr().out.split("done in")[0]  # no cell ran again
    assert json.loads((out / "ppo.json").read_text())["runs"] == runs


@pytest.mark.skipif(not (DOCS / "results" / "ppo.json").is_file(), reason="no committed ppo.json")
def test_the_committed_page_is_rebuilt_identically_from_its_json(tmp_path):
    data = json.loads((DOCS / "results" / "ppo.json").read_text())
    md = tmp_path / "docs" / "results_ppo.md"
    write_page(data, tmp_path / "docs" / "results" / "ppo.json", md)
    assert md.read_text() == (DOCS / "results_ppo.md").read_text()
