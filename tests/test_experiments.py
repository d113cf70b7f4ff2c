"""The evidence plumbing: a tiny grid runs end to end, the page is rebuilt from its JSON alone,
and every number on the page can be traced to the JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from rtrl_rl import cli
from rtrl_rl.bench import memory_costs
from rtrl_rl.bench.grid import SEGMENT_LENGTH
from rtrl_rl.bench.memory import GRIDS, LENGTHS, RULES, TASKS, specs
from rtrl_rl.bench.memory_page import check_claims, frames_to_solve
from rtrl_rl.config import load_config

FULL, QUICK = GRIDS["full"], GRIDS["quick"]


def main(argv: list[str]) -> int:
    """``rtrl-rl bench memory ARGV``."""
    return cli.main(["bench", "memory", *argv])


def test_bench_alone_lists_every_experiment(capsys):
    from rtrl_rl.commands.bench import TARGETS

    assert cli.main(["bench"]) == 2
    listing = " ".join(capsys.readouterr().out.split())  # argparse wraps at the terminal's width
    assert all(name in listing for name in TARGETS)
    assert "95% greedy success" in listing  # a help text's percent sign is printed, not expanded


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """One run of the tiny grid (two worker processes), without the cost benchmarks."""
    root = tmp_path_factory.mktemp("evidence")
    assert main(["--grid", "tiny", "--out", str(root / "results"), "--skip-bench", "--jobs", "2"]) == 0
    return root


def _leaves(obj, numbers: list[float], strings: list[str]) -> None:
    if isinstance(obj, dict):
        strings.extend(str(k) for k in obj)
        for v in obj.values():
            _leaves(v, numbers, strings)
    elif isinstance(obj, list):
        numbers.append(float(len(obj)))  # counts the page states, e.g. "84 training runs"
        for v in obj:
            _leaves(v, numbers, strings)
    elif isinstance(obj, bool) or obj is None:
        strings.append(str(obj))
    elif isinstance(obj, (int, float)):
        numbers.append(float(obj))
    else:
        strings.append(str(obj))


def _derived(data: dict) -> dict:
    """What the page computes from the JSON: its thresholds, the per-cell figures over seeds, the throughput,
    the total wall time and the grids' estimated times."""
    from rtrl_rl.bench.memory_page import CHANCE_MARGIN, SOLVED, aggregate, throughput
    from rtrl_rl.bench.page import estimate

    final = aggregate(data["runs"], list(data["grid"]["cells"]), list(data["grid"]["rules"]))
    jobs = data["meta"]["history"][0]["jobs"]
    return {"final": final, "throughput": throughput(final), "thresholds": [SOLVED, CHANCE_MARGIN],
            "wall_s": sum(h.get("wall_s", 0.0) for h in data["meta"]["history"]),
            "estimates": [estimate(p, data["runs"], jobs) for p in data["grid"]["plans"].values()]}


def _untraced_numbers(md: str, data: dict) -> list[str]:
    """Number tokens of the page that are neither in a JSON string nor a number of the JSON
    or derived from it (:func:`_derived`) as shown: at the printed precision, in millions, or
    a time in minutes or hours."""
    numbers: list[float] = []
    strings: list[str] = []
    _leaves({"data": data, "derived": _derived(data)}, numbers, strings)
    bad = []
    for token in re.findall(r"\d[\d,]*(?:\.\d+)?", md):
        token = token.rstrip(",")
        if any(token in s for s in strings):
            continue
        plain = token.replace(",", "")
        digits = len(plain.split(".")[1]) if "." in plain else 0
        tol = 0.5 * 10 ** -digits + 1e-9
        if not any(abs(x / scale - float(plain)) <= tol for x in numbers for scale in (1, 1e6, 60, 3600)):
            bad.append(token)
    return bad


def test_tiny_grid_writes_page_plots_and_json(tiny: Path):
    md = (tiny / "results.md").read_text()
    data = json.loads((tiny / "results" / "memory.json").read_text())
    assert len(data["runs"]) == 5 and not any("error" in r for r in data["runs"])
    for run in data["runs"]:
        assert run["steps"] >= data["grid"]["total_steps"] and run["evaluations"]
        assert run["command"].startswith("rtrl-rl train env.id=memory:")
        assert run["cpu"] == data["meta"]["machine"]["cpu"] and "run_dir" not in run
    history = data["meta"]["history"]
    assert [h["command"] for h in history] == ["rtrl-rl bench memory --grid tiny --skip-bench --jobs 2"]
    assert history[0]["wall_s"] > 0 and "/" not in history[0]["command"], "no local path enters the JSON"
    pngs = sorted((tiny / "results").glob("*.png"))
    assert {p.name for p in pngs} == {"success_vs_length.png", "curves_recall-distractors.png", "curves_tmaze.png"}
    assert all(0 < p.stat().st_size < 200_000 for p in pngs)
    for p in pngs:
        assert f"(results/{p.name})" in md
    assert "### recall-distractors" in md and "### tmaze" in md
    assert "The full grid has not been run" in md
    assert "**Missing**" in md and "not run" in md  # benchmarks skipped: the page says so
    # the finding first: the chart and the checked claims lead, "Reproduce" closes the page
    assert md.index("(results/success_vs_length.png)") < md.index("## The expected shape, checked") < \
        md.index("### recall-distractors") < md.index("## Reproduce")
    reproduce = md.split("## Reproduce")[1]
    assert reproduce.count("- `rtrl-rl bench memory") == 3


def test_page_is_rebuilt_identically_from_json(tiny: Path):
    before = (tiny / "results.md").read_text()
    (tiny / "results.md").unlink()
    for p in (tiny / "results").glob("*.png"):
        p.unlink()
    assert main(["--report-only", "--out", str(tiny / "results")]) == 0
    assert (tiny / "results.md").read_text() == before
    assert len(list((tiny / "results").glob("*.png"))) == 3


def test_every_number_on_the_page_comes_from_the_json(tiny: Path):
    md = (tiny / "results.md").read_text()
    data = json.loads((tiny / "results" / "memory.json").read_text())
    assert _untraced_numbers(md, data) == []
    # the check is not vacuous: a number typed into the page is caught
    assert _untraced_numbers(md + "\nRTRL solved it in 123.45 s.\n", data) == ["123.45"]


def test_cost_benchmark_is_recorded_and_rendered(tiny: Path):
    out = tiny / "results"
    record = memory_costs.run_bench("cores", ["--quick", "--repeats", "1"], out / "bench_cores.json", timeout_s=300)
    assert record["returncode"] == 0 and record["data"]["rows"][0]["core"] == "elstm"
    missing = memory_costs.run_bench("no-such-target", [], out / "bench_missing.json", timeout_s=60)
    assert "error" in missing and "data" not in missing
    data = json.loads((out / "memory.json").read_text())
    data["costs"] = {"cores": record, "runtime": missing}
    (out / "memory.json").write_text(json.dumps(data))
    assert main(["--report-only", "--out", str(out)]) == 0
    md = (tiny / "results.md").read_text()
    assert "| elstm | 256 | 256 | 16 | 50 |" in md
    assert "**Missing: `runtime`.**" in md
    assert _untraced_numbers(md, json.loads((out / "memory.json").read_text())) == []


def test_grids_follow_the_experiment_design():
    assert LENGTHS == [5, 10, 20, 40, 80] and SEGMENT_LENGTH == 10
    assert set(FULL.tasks) == set(TASKS) and len(FULL.seeds) == 3
    assert len(specs(FULL)) == len(TASKS) * len(LENGTHS) * len(RULES) * 3
    assert len(QUICK.seeds) == 1
    for spec in specs(FULL) + specs(QUICK):  # every run is a valid config with the right L and rule
        config = load_config(None, spec["overrides"])
        task = TASKS[spec["task"]]
        assert config.env.id == task.env_id and config.env.options[task.length_option] == spec["length"]
        assert config.train.segment_length == SEGMENT_LENGTH and config.train.target_success == 0
        assert config.train.total_steps == spec["total_steps"] == (FULL if spec in specs(FULL) else QUICK).blocks[0].budget.total_steps


def test_claims_and_frames_to_solve():
    final = {"rtrl-elstm": {"5": {"mean": 1.0}, "40": {"mean": 0.97}},
             "tbptt-elstm": {"5": {"mean": 1.0}, "40": {"mean": 0.6, "peak": 0.7}},
             "feedforward": {"5": {"mean": 0.26}, "40": {"mean": 0.24}}}
    verdicts = {c["claim"]: c for c in check_claims(final, chance=0.25, segment=10)}
    assert verdicts["RTRL keeps solving beyond L = T"]["verdict"] == "confirmed"
    tbptt = verdicts["TBPTT collapses towards chance once L > T"]
    assert tbptt["verdict"] == "refuted" and tbptt["against"] == [{"rule": "tbptt-elstm", "length": "40", "mean": 0.6, "peak": 0.7}]
    assert verdicts["feed-forward stays at chance"]["verdict"] == "confirmed"
    assert frames_to_solve([{"step": 10, "success_rate": 0.5}, {"step": 20, "success_rate": 0.95}]) == 20
    assert frames_to_solve([{"step": 10, "success_rate": 0.5}]) is None


def test_runtime_benchmark_json_is_rendered(tiny: Path):
    import argparse

    from rtrl_rl.bench.runtime import summarize

    out = tiny / "results"
    args = argparse.Namespace(config="default", actors=2, num_envs=128, seconds=10.0, rounds=1, device="auto",
                              overrides=[])
    result = summarize(args, {"raw env": [90000.0], "rtrl": [30000.0], "tbptt": [36000.0], "none": [60000.0]})
    data = json.loads((out / "memory.json").read_text())
    data["costs"]["runtime_memory"] = {"command": "rtrl-rl bench runtime --config default", "wall_s": 50.0,
                                       "returncode": 0, "data": json.loads(json.dumps(result))}
    (out / "memory.json").write_text(json.dumps(data))
    assert main(["--report-only", "--out", str(out)]) == 0
    md = (tiny / "results.md").read_text()
    assert "| rtrl | 30,000 | 0.33 |" in md and "rtrl / tbptt throughput: 0.83." in md
    assert _untraced_numbers(md, json.loads((out / "memory.json").read_text())) == []


def test_committed_report_is_regenerated_from_its_json(tmp_path: Path):
    """docs/results.md is exactly what the page code makes of docs/results/memory.json."""
    from rtrl_rl.bench.memory_page import write_page

    docs = Path(__file__).resolve().parents[1] / "docs"
    assert (docs / "results" / "memory.json").is_file(), "the committed report's JSON is missing"
    data = json.loads((docs / "results" / "memory.json").read_text())
    write_page(data, tmp_path / "results" / "memory.json", tmp_path / "results.md")
    committed = (docs / "results.md").read_text()
    assert (tmp_path / "results.md").read_text() == committed
    assert _untraced_numbers(committed, data) == []


def _number_tokens(text: str) -> set[str]:
    return {t.rstrip(",") for t in re.findall(r"\d[\d,]*(?:\.\d+)?", text)}


def _readme_results_untraced(readme: str, pages: str) -> list[str]:
    """Numbers of the README's Results section that appear on neither generated page."""
    section = readme.split("\n## Results\n", 1)[1].split("\n## ", 1)[0]
    section = re.sub(r"\(docs/[^)]*\)|`[^`]*`", "", section)  # links and commands are not figures
    return sorted(_number_tokens(section) - _number_tokens(pages))


def test_readme_results_quote_only_the_generated_pages():
    """The README's short Results section is typed by hand, so every figure in it must be one
    that the generated pages (docs/results.md, docs/results_suites.md, docs/results_popgym.md,
    docs/results_popgym_3m.md, docs/results_stream.md, docs/approximations.md) show."""
    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    names = ("results.md", "results_suites.md", "results_popgym.md", "results_popgym_3m.md", "results_stream.md",
             "approximations.md")
    pages = "".join((root / "docs" / name).read_text() for name in names)
    assert _readme_results_untraced(readme, pages) == []
    typo = readme.replace("\n## Results\n", "\n## Results\n\nRTRL reached 0.987654 after 12,345,679 frames.\n", 1)
    assert _readme_results_untraced(typo, pages) == ["0.987654", "12,345,679"]


_SLEEPER = '''
import os, time
from pathlib import Path

def sleep_run(spec, work_dir):
    Path(work_dir, f"pid-{os.getpid()}").write_text("")
    time.sleep(600)
    return spec
'''

_GRID = '''
import sys
from rtrl_rl.bench.pool import run_grid
from sleeper import sleep_run

run_grid([{"n": i} for i in range(4)], sys.argv[1], jobs=2, runner=sleep_run)
'''


def test_sigterm_stops_a_grid_and_its_workers(tmp_path):
    """A benchmark killed with SIGTERM takes its worker processes with it (none keeps training)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    (tmp_path / "sleeper.py").write_text(_SLEEPER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(Path(__file__).parents[1])])}
    proc = subprocess.Popen([sys.executable, "-c", _GRID, str(tmp_path)], env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("pid-*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    workers = [int(p.name[4:]) for p in tmp_path.glob("pid-*")]
    assert len(workers) == 2, "the two workers did not start"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) != 0
    for pid in workers:
        deadline = time.monotonic() + 30
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not Path(f"/proc/{pid}").exists(), f"worker {pid} outlived the grid"
    assert len(list(tmp_path.glob("pid-*"))) == 2  # the other two runs never started


def test_a_run_whose_process_dies_gives_an_error_result(tmp_path):
    import os
    import subprocess
    import sys

    (tmp_path / "dier.py").write_text("import os\n\ndef die(spec, work_dir):\n    os._exit(3)\n")
    script = ("import json, sys\nfrom rtrl_rl.bench.pool import run_grid\nfrom dier import die\n"
              "print(json.dumps(run_grid([{'n': 0}, {'n': 1}], sys.argv[1], jobs=2, runner=die)))\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(Path(__file__).parents[1])])}
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path)], env=env, capture_output=True, text=True,
                         timeout=120, check=True)
    results = json.loads(out.stdout.strip().splitlines()[-1])
    assert sorted(r["n"] for r in results) == [0, 1]
    assert all("died (exit code 3)" in r["error"] for r in results)


def test_an_interrupted_run_is_an_error_not_a_result(tmp_path, monkeypatch):
    # a run stopped by a signal ends with a summary like a finished one: the grid must not count it
    import rtrl_rl.training.sync_trainer
    from rtrl_rl.bench.pool import train_cell as run_one

    def stopped(summary_stopped):
        def fake_train(config, resume_from=None):
            return {"steps": 1280, "wall_s": 1.0, "sps": 1280.0, "stopped": summary_stopped, "mean_return": 0.1,
                    "evaluations": []}
        return fake_train

    spec = {"task": "recall-blank", "length": 10, "rule": "rtrl-elstm", "seed": 0, "overrides": ["train.seed=0"]}
    monkeypatch.setattr(rtrl_rl.training.sync_trainer, "train", stopped("interrupted (SIGTERM)"))
    result = run_one(spec, str(tmp_path))
    assert "interrupted (SIGTERM) at step 1280, before the budget" in result["error"]
    monkeypatch.setattr(rtrl_rl.training.sync_trainer, "train", stopped("budget"))
    assert "error" not in run_one(spec, str(tmp_path))


def _stop_at(step: int):
    """A RunSession.stop_requested that reports a SIGTERM once the run reaches ``step``."""
    def stop_requested(session):
        return "interrupted (SIGTERM)" if session.monitor.step >= step else None
    return stop_requested


def test_a_cell_its_grid_stopped_continues_from_its_checkpoint(tmp_path, monkeypatch):
    # a grid stopped mid-cell (a signal, a session's end) must not throw the cell's training away:
    # the same cell, resumed in the same work directory, trains on from its last checkpoint
    from rtrl_rl.bench.curves import training_curve
    from rtrl_rl.bench.memory import GRIDS as MEMORY_GRIDS
    from rtrl_rl.bench.pool import cell_dir, train_cell
    from rtrl_rl.run.session import RunSession

    spec = specs(MEMORY_GRIDS["tiny"])[0]
    budget = 6_400
    spec["overrides"] = [o for o in spec["overrides"] if not o.startswith(("train.total_steps", "log.tensorboard"))]
    spec["overrides"] += [f"train.total_steps={budget}", "log.tensorboard=true", "log.eval_interval_steps=100000"]
    with monkeypatch.context() as patch:
        patch.setattr(RunSession, "stop_requested", _stop_at(3_000))
        first = train_cell(spec, str(tmp_path))
    assert "interrupted (SIGTERM)" in first["error"] and first["steps"] < budget
    second = train_cell(spec, str(tmp_path))
    assert "error" not in second, second.get("error")
    assert second["resumed_at_step"] == first["steps"]  # the final checkpoint of the stopped session
    assert second["steps"] >= budget and second["wall_s"] > first["wall_s"]
    steps = [step for step, _, _ in training_curve(cell_dir(spec, tmp_path))]
    assert steps == sorted(steps) and steps[0] < first["steps"] < steps[-1]  # one curve over both sessions
    # a cell that reached its budget is a result: running it again starts from step 0
    third = train_cell(spec, str(tmp_path))
    assert "resumed_at_step" not in third and third["steps"] >= budget


def test_a_stopped_cell_of_another_config_starts_again(tmp_path, monkeypatch):
    from rtrl_rl.bench.memory import GRIDS as MEMORY_GRIDS
    from rtrl_rl.bench.pool import cell_dir, train_cell
    from rtrl_rl.run.session import RunSession, interrupted_step

    spec = specs(MEMORY_GRIDS["tiny"])[0]
    with monkeypatch.context() as patch:
        patch.setattr(RunSession, "stop_requested", _stop_at(1_000))
        stopped = train_cell(spec, str(tmp_path))
    run_dir = cell_dir(spec, tmp_path)
    same = load_config(None, [*spec["overrides"], f"run_dir={run_dir}"])
    other = load_config(None, [*spec["overrides"], "train.lr=0.001", f"run_dir={run_dir}"])
    assert interrupted_step(run_dir, same) == stopped["steps"] and interrupted_step(run_dir, other) is None
    summary = run_dir / "summary.json"
    summary.write_text(json.dumps({**json.loads(summary.read_text()), "stopped": "error: non-finite loss"}))
    assert interrupted_step(run_dir, same) is None  # a run that ended on its own is a result, not resumed
    summary.write_text("{not json")
    assert interrupted_step(run_dir, same) is None
    summary.unlink()  # killed before its summary: its last checkpoint still counts
    assert interrupted_step(run_dir, same) == stopped["steps"]
    spec["overrides"] = [*spec["overrides"], "train.lr=0.001"]
    assert "resumed_at_step" not in train_cell(spec, str(tmp_path))


def test_a_stream_cell_trains_with_the_stream_trainer(tmp_path, monkeypatch):
    # agent.algorithm=stream must reach stream AC(lambda), never a segment learner under its name
    import rtrl_rl.training.stream_trainer as stream_trainer
    from rtrl_rl.bench.pool import train_cell
    from rtrl_rl.training.run_builder import build_agent

    calls = []
    real = stream_trainer.train_stream
    monkeypatch.setattr(stream_trainer, "train_stream", lambda config, resume_from=None: calls.append(config)
                        or real(config, resume_from=resume_from))
    spec = {"task": "recall", "rule": "stream", "seed": 0, "overrides": [
        "env.id=memory:recall", "env.num_envs=1", "agent.algorithm=stream", "train.total_steps=64",
        "train.target_success=0", "train.threads=1", "log.eval_episodes=0", "log.progress=false",
        "log.tensorboard=false"]}
    result = train_cell(spec, str(tmp_path))
    assert "error" not in result, result.get("error")
    assert len(calls) == 1 and result["steps"] >= 64
    with pytest.raises(ValueError, match="stream trainer"):
        build_agent(calls[0], None, None)


def test_another_grid_is_not_written_over_a_result(tiny: Path, capsys):
    """The tiny grid's result stays: the quick grid must go to a folder of its own."""
    out = tiny / "results"
    before = (out / "memory.json").read_text()
    assert main(["--quick", "--skip-bench", "--out", str(out)]) == 2
    assert "holds the 'tiny' grid" in capsys.readouterr().err
    assert (out / "memory.json").read_text() == before
