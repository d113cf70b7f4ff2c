"""``rtrl-rl bench gradients`` on a tiny grid: it runs, validates its input, and writes
the JSON and the page with its charts beside the JSON (the numbers themselves are the benchmark's)."""

import json

from rtrl_rl import cli
from rtrl_rl.bench.gradients import exponents

TINY = ["bench", "gradients", "--sizes", "3", "4", "--lengths", "12", "--segment", "4", "--draws", "3",
        "--batch", "2", "--input-size", "3", "--repeats", "1"]


def test_bench_gradients_writes_json_and_page(tmp_path):
    out, page = tmp_path / "results" / "g.json", tmp_path / "approximations.md"
    assert cli.main([*TINY, "--json", str(out), "--doc", str(page)]) == 0
    data = json.loads(out.read_text())
    rules = {(r["core"], r["rule"]) for r in data["quality"]}
    assert ("gru", "kfrtrl") not in rules and ("lstm", "kfrtrl") in rules and ("rnn", "snap1") in rules
    assert {r["inputs"] for r in data["quality"]} == {"random", "memory"}
    for row in data["quality"]:
        assert -1 <= row["cos"] <= 1 and row["var"] >= 0
        assert (row["var"] == 0) == (row["rule"] in ("tbptt", "snap1"))
    assert {r["rule"] for r in data["cost"] if r["core"] == "lstm"} == {"tbptt", "snap1", "uoro", "kfrtrl",
                                                                        "rtrl", "nn.LSTM"}
    assert set(data["rtrl_exponent"]) == {"rnn", "gru", "lstm"}
    text = page.read_text()
    assert "## Findings" in text and "| lstm | 4 | rtrl |" in text and "## Reproduce" in text
    assert all((tmp_path / "results" / f"approximations_{k}.png").stat().st_size > 0 for k in ("cos", "var", "cost"))


def test_bench_gradients_rejects_bad_arguments():
    assert cli.main(["bench", "gradients", "--draws", "1"]) == 2
    assert cli.main(["bench", "gradients", "--segment", "0"]) == 2
    assert cli.main(["bench", "gradients", "--doc", "page.md"]) == 2, "the page is written from a JSON"


def test_exponent_fit_recovers_a_known_power():
    rows = [{"core": "rnn", "rule": rule, "n": n, "ms_per_step": (n ** 4 if rule == "rtrl" else 0.5 * n ** 4)}
            for n in (8, 16, 32) for rule in ("rtrl", "tbptt")]
    fit = exponents(rows)["rnn"]
    assert abs(fit["total"] - 4) < 1e-9 and abs(fit["above_tbptt"] - 4) < 1e-9 and abs(fit["last_pair"] - 4) < 1e-9
