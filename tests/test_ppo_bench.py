"""``rtrl-rl bench ppo`` end to end at a toy size (plumbing only; the figures of
``docs/results/ppo.json`` are measured by the full command)."""

import json

from rtrl_rl.cli import main

TINY = ["env.num_envs=8", "env.options.delay=2", "agent.hidden_size=8", "log.eval_episodes=8",
        "log.eval_interval_steps=320"]
SMALL = ["--seeds", "0", "--budget", "640", "--rounds", "1", "--updates", "1"]


def test_both_parts_write_one_json_and_a_resume_runs_only_what_is_missing(tmp_path):
    out = tmp_path / "ppo.json"
    assert main(["bench", "ppo", "--json", str(out), "--rules", "vtrace,ppo", *SMALL, *TINY]) == 0
    data = json.loads(out.read_text())
    runs = data["solve"]["runs"]
    assert [(r["rule"], r["seed"]) for r in runs] == [("vtrace", 0), ("ppo", 0)]
    assert all(r["steps"] <= 640 and r["cpu_s"] > 0 and r["evaluations"] and r["cpu"] for r in runs)
    assert "train.max_grad_norm=0.5" in runs[1]["settings"] and set(data["solve"]["aggregate"]) == {"vtrace", "ppo"}
    summary = data["cost"]["summary"]
    for kind in ("wall", "cpu"):
        ppo = summary["ppo"][kind]
        assert ppo["epochs_s"] > ppo["replay_forward_s"] > ppo["replay_sensitivity_update_s"] > 0
        assert ppo["update_s"] > ppo["epochs_s"] + ppo["carry_pass_s"] * 0.99
        assert summary[f"ppo_over_vtrace_{kind}"]["update_s"] > 0
    assert data["machine"]["cpu"] and data["command"].startswith("rtrl-rl bench ppo --rules vtrace,ppo --seeds 0")
    # a resumed solve keeps the finished runs, runs the missing rule, and keeps the cost part
    assert main(["bench", "ppo", "--json", str(out), "--part", "solve", "--resume", "--rules", "vtrace,ppo,ppo-tbptt",
                 *SMALL, *TINY]) == 0
    again = json.loads(out.read_text())
    assert again["solve"]["runs"][:2] == runs and again["solve"]["runs"][2]["rule"] == "ppo-tbptt"
    assert again["cost"] == data["cost"]
