"""``rtrl-rl bench approx-learning``: the grid's runs, its plumbing on one tiny run per family,
and the page section as a function of the results JSON (numbers and verdicts from it alone)."""

import json
import time
from pathlib import Path

import pytest

from rtrl_rl import cli
from rtrl_rl.bench import approx_learning as al
from rtrl_rl.bench.approx_learning_page import HEADING, longer_section, section, summary, cells
from rtrl_rl.bench.approximations_page import write_page
from rtrl_rl.config import load_config

RESULTS = Path(__file__).resolve().parent.parent / "docs" / "results" / "approx_learning.json"
PAGE = RESULTS.parent.parent / "approximations.md"


def main(argv: list[str]) -> int:
    """``rtrl-rl bench approx-learning ARGV``."""
    return cli.main(["bench", "approx-learning", *argv])


def test_grid_runs_every_cell_with_one_shared_lstm_size_and_exact_rtrl_last():
    specs = al.specs(al.GRIDS["full"])
    seeds = al.GRIDS["full"].seeds
    assert len(specs) == len(seeds) * (len(al.MEMORY_TASKS) * 6 + len(al.POPGYM_TASKS) * 7)
    assert len({(s["task"], s["rule"], s["seed"]) for s in specs}) == len(specs)
    per_seed = len(specs) // len(seeds)
    for k, seed in enumerate(seeds):  # seed-major, exact RTRL (the costliest) last within each seed
        block = specs[k * per_seed:(k + 1) * per_seed]
        assert {s["seed"] for s in block} == {seed}
        rules = [s["rule"] for s in block]
        exact = rules.index("lstm-rtrl")
        assert set(rules[exact:]) == {"lstm-rtrl"} and len(rules[exact:]) == len(al.MEMORY_TASKS) + len(al.POPGYM_TASKS)
    assert all(s["rule"] != "feedforward" for s in specs if s["family"] == "memory")
    for spec in specs:
        config = load_config(None, spec["overrides"])  # every run's overrides are valid
        assert config.train.segment_length == 10 and config.train.seed == spec["seed"]
        steps = 200_000 if spec["family"] == "memory" else 100_000
        assert config.train.total_steps == steps == spec["total_steps"]
        if spec["rule"].startswith("lstm-"):
            assert config.agent.core == "lstm" and config.agent.hidden_size == al.LSTM_N
            assert config.agent.encoder_size == al.LSTM_ENCODER
        if spec["rule"] == "rtrl-elstm":
            assert config.agent.hidden_size == 64 and config.agent.encoder_size == 64
            assert config.agent.encoder_grad == ("segment" if spec["family"] == "popgym" else "step")
        if spec["task"] in al.MEMORY_TASKS:
            assert al.MEMORY_TASKS[spec["task"]] > 10  # every memory dependency spans more than a segment


@pytest.mark.parametrize("family", ["memory", "popgym"])
def test_one_tiny_run_per_family_yields_the_metrics_of_the_page(tmp_path, family):
    spec = next(s for s in al.specs(al.GRIDS["tiny"]) if s["family"] == family and s["rule"] == "lstm-snap1")
    start = time.perf_counter()
    result = al.run_spec(spec, str(tmp_path))
    assert "error" not in result, result.get("error")
    assert result["family"] == family and result["steps"] >= 1_280 and result["sps"] > 0
    if family == "memory":
        assert 0 <= result["success_rate"] <= 1 and result["evaluations"]
    else:
        assert result["mmer"] is not None and result["final_return"] is not None and "curve" not in result
    assert time.perf_counter() - start < 120


def _run(task, rule, seed, value, family):
    run = {"task": task, "rule": rule, "seed": seed, "family": family, "wall_s": 10.0 + seed, "sps": 1000.0 * (seed + 1),
           "process_wall_s": 12.0}
    if family == "memory":
        run["success_rate"] = value
    else:
        run.update(mmer=value, final_return=value - 0.1)
    return run


def _data(runs):
    return {"meta": {"machine": {"cpu": "test CPU", "nproc": 2, "load_start": "1.00 / 1.00 / 1.00", "load_end": "2"},
                     "versions": {"python": "3.11", "torch": "2.x", "git_commit": "abc1234"},
                     "history": [{"command": "rtrl-rl bench approx-learning --grid tiny", "jobs": 1, "wall_s": 600.0,
                                  "cpu": "test CPU"}]},
            "grid": {**al.describe(al.GRIDS["tiny"]), "seeds": [0, 1, 2]}, "runs": runs}


def _sample():
    m, p = "recall-distractors", "RepeatPreviousEasy"
    runs = [_run(m, "rtrl-elstm", s, v, "memory") for s, v in enumerate([0.9, 1.0, 0.95])]
    runs += [_run(m, "lstm-snap1", s, v, "memory") for s, v in enumerate([0.25, 0.27])]  # seed 2 not run
    runs += [_run(p, "feedforward", s, -0.5, "popgym") for s in range(3)]
    runs += [_run(p, "lstm-snap1", s, v, "popgym") for s, v in enumerate([-0.2, -0.3, -0.25])]
    runs += [_run(p, "rtrl-elstm", s, v, "popgym") for s, v in enumerate([-0.48, -0.5, -0.49])]
    runs.append({"task": p, "rule": "rtrl-elstm", "seed": 3, "family": "popgym", "error": "Traceback\nBoom"})
    cut = _run(m, "lstm-snap1", 2, 0.9, "memory")  # stopped by a signal: kept in the JSON, never counted
    runs.append({**cut, "stopped": "interrupted (SIGTERM)", "steps": 30_720})
    return _data(runs)


def test_section_takes_its_numbers_and_verdicts_from_the_json():
    text = "\n".join(section(_sample()) + summary(_sample(), cells(_sample())))
    assert text.startswith(HEADING)
    assert "| RTRL eLSTM (n = 64, default) | 0.95 ± 0.05 (solves) |" in text
    assert f"| SnAp-1 LSTM (n = {al.LSTM_N}) | 0.26 ± 0.01 (does not learn) (2 of 3 seeds) |" in text
    assert "-0.25 ± 0.05 (learns) | -0.35 ± 0.05 |" in text  # beats feed-forward's -0.50 by far more than 0.05
    assert "-0.49 ± 0.01 (does not learn)" in text  # within 0.05 of feed-forward
    assert "| feed-forward | 3 | 0.6 | – | 2,000 |" in text  # 3 runs of 10+11+12 s, steps/s mean of 1k..3k
    assert "3 min of wall time in all" in text  # 14 runs of 12 s
    assert "recall-distractors lstm-snap1 seed 2 (30,720 steps)" in text
    assert "**14 of 15 runs finished**" in text and "1 runs failed: RepeatPreviousEasy rtrl-elstm seed 3" in text
    assert "`popgym:RepeatPreviousEasy`**: learns: SnAp-1 LSTM" in text
    assert text.count("too small to tell the rules apart") == 1  # the eLSTM does not learn RepeatPrevious here
    assert "Some approximation learns 1 of the tasks: RepeatPreviousEasy." in text
    changed = _sample()
    changed["runs"][0]["success_rate"] = 0.3  # the numbers and the verdict follow the JSON
    assert "| RTRL eLSTM (n = 64, default) | 0.75 ± 0.39 (learns (partly)) |" in "\n".join(section(changed))


def test_section_says_when_no_approximation_learns_anything():
    data = _sample()
    data["runs"] = [r for r in data["runs"] if r["rule"] != "lstm-snap1"]
    text = "\n".join(summary(data, cells(data)))
    assert "**At this budget no approximation (SnAp-1, UORO, KF-RTRL) learns any task**, and exact RTRL was not run." in text


def test_the_page_holds_the_parts_whose_json_exists(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / "approx_learning.json").write_text(json.dumps(_sample()))
    files = write_page(_sample(), results / "approx_learning.json", tmp_path / "page.md")
    text = (tmp_path / "page.md").read_text()
    assert files == [tmp_path / "page.md"], "no gradient JSON: no gradient charts"
    assert text.count(HEADING) == 1 and "## Findings" in text and "## Gradient quality" not in text
    assert text.index("## Findings") < text.index("Some approximation learns") < text.index(HEADING) \
        < text.index("## Reproduce")


def test_report_only_rewrites_the_page_from_the_json(tmp_path):
    out = tmp_path / "results"
    out.mkdir()
    (out / "approx_learning.json").write_text(json.dumps(_sample()))
    assert main(["--report-only", "--out", str(out)]) == 0
    first = (tmp_path / "approximations.md").read_text()
    assert "\n".join(section(_sample())) in first
    assert main(["--report-only", "--out", str(out)]) == 0
    assert (tmp_path / "approximations.md").read_text() == first, "the same JSON gives the same page"


def test_committed_page_is_generated_from_the_committed_json(tmp_path):
    assert RESULTS.exists(), "the page's JSON is committed beside it"
    results = tmp_path / "results"
    results.mkdir()
    for name in ("approx_learning.json", "approx_learning_long.json", "bench_gradients.json"):
        (results / name).write_text((RESULTS.parent / name).read_text())
    data = json.loads(RESULTS.read_text())
    write_page(data, results / "approx_learning.json", tmp_path / "approximations.md")
    assert (tmp_path / "approximations.md").read_text() == PAGE.read_text()


def test_the_long_grid_runs_recall_blank_at_ten_times_the_budget_with_the_same_networks():
    specs = al.specs(al.GRIDS["long"])
    assert {s["task"] for s in specs} == {"recall-blank"} and len(specs) == 3 * (len(al.LSTM_RULES) + 1)
    for spec in specs:
        config = load_config(None, spec["overrides"])
        assert config.train.total_steps == 10 * 200_000 and config.train.segment_length == 10
        assert config.env.options["delay"] == al.MEMORY_TASKS["recall-blank"]
        assert config.agent.hidden_size == (64 if spec["rule"] == "rtrl-elstm" else al.LSTM_N)


def test_the_long_grid_writes_its_own_json_and_a_subsection_after_the_full_grids(tmp_path):
    assert al.LONG.json_name != al.EXPERIMENT.json_name and al.LONG.page_name == al.EXPERIMENT.page_name
    longer = _data([_run("recall-blank", r, s, 0.9 if r == "lstm-rtrl" else 0.25, "memory")
                    for r in [*al.LSTM_RULES, "rtrl-elstm"] for s in (0, 1, 2)])
    longer["grid"] = al.describe(al.GRIDS["long"])
    text = "\n".join(longer_section(longer))
    assert text.startswith("### A longer budget: 2,000,000 steps") and "All 18 runs finished." in text
    assert f"| exact RTRL LSTM (n = {al.LSTM_N}) | 0.90 ± 0.00 (solves) |" in text
    assert "while exact RTRL of the same LSTM learns recall-blank" in "\n".join(summary(longer, cells(longer)))
    out = tmp_path / "results"
    out.mkdir()
    (out / "approx_learning.json").write_text(json.dumps(_sample()))
    (out / al.LONG.json_name).write_text(json.dumps(longer))
    assert main(["--report-only", "--grid", "long", "--out", str(out)]) == 0
    page = (tmp_path / "approximations.md").read_text()
    assert page.index("\n".join(section(_sample()))) < page.index("\n".join(longer_section(longer)))


def test_a_grid_resumed_on_another_machine_says_which_runs_ran_where():
    data = _sample()
    for run in data["runs"][:3]:
        run["cpu"] = "Old CPU"
    for run in data["runs"][3:]:
        run["cpu"] = "New CPU"
    data["meta"]["history"].append({"command": "rtrl-rl bench approx-learning --resume", "jobs": 2, "cpu": "New CPU"})
    text = "\n".join(section(data))
    assert "Old CPU: 3 runs (RTRL eLSTM (n = 64, default) seeds 0, 1, 2)" in text
    assert "New CPU: the other" in text and "1 then 2 training process(es) at a time over 2 invocation(s)" in text
    assert "two machines" not in "\n".join(section(_sample())), "one machine: nothing to say"
