"""The cost section of ``docs/results.md``: our benchmark JSON beside the reference figures.

Reads only ``data["costs"]`` (the verbatim output of ``rtrl-rl bench cores/runtime --json``),
``data["aggregate"]`` (the memory runs' throughput) and ``data["reference"]`` (the figures
quoted from the developers' notes, which are the reference's numbers, not ours).
"""

from __future__ import annotations

from rtrl_rl.bench.cores import VARIANTS  # the CPU columns of ``bench cores``


def derive_costs(costs: dict) -> dict:
    """Per-step figures of our eLSTM n = d = 256, B = 16, T = 50 row (the design prototype's size)."""
    rows = (costs.get("cores") or {}).get("data", {}).get("rows", [])
    for r in rows:
        if (r["core"], r["n"], r["d"], r["B"], r["T"]) == ("elstm", 256, 256, 16, 50):
            ms, T = r["ms"], r["T"]
            return {"forward_ms_per_step": ms["forward"] / T, "segment_rtrl_extra_ms_per_step":
                    (ms["rtrl"] - ms["forward"]) / T, "per_step_rtrl_ms_per_step": ms["step"] / T}
    return {}


def fmt(x, digits: int = 2) -> str:
    """A figure as printed on the page (shared with report.py); – for a missing one."""
    return "–" if x is None else f"{x:.{digits}f}"


def md_table(head: list[str], rows: list[list[str]]) -> list[str]:
    """A markdown table and the blank line after it."""
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
            *("| " + " | ".join(r) + " |" for r in rows), ""]


def render_costs(data: dict) -> list[str]:
    """Cores table, reference tables, per-step comparison and end-to-end throughput."""
    costs, ref = data["costs"], data["reference"]
    lines = ["## The cost of each rule", "", "### Recurrent cores, ms per segment (this machine)", ""]
    cores = costs.get("cores") or {}
    if "data" in cores:
        meta = cores["data"]["meta"]
        lines += [f"`{cores['command']}` ({fmt(cores['wall_s'], 0)} s): device {meta['device']}, "
                  f"{meta['threads']} thread(s), {meta['clock']} clock, median of {meta['repeats']}, torch "
                  f"{meta['torch']}. Columns as in `docs/performance.md`: `rtrl`/`tbptt` are one segment's "
                  "forward + backward, `step` is per-step RTRL over the same steps, `lstm` is torch's "
                  "nn.LSTM forward + backward of the same size.", ""]
        rows = [[r["core"], *(str(r[k]) for k in "ndBT"), *(fmt(r["ms"][v]) for v in VARIANTS),
                 *(fmt(x) for x in r["ratios"].values())] for r in cores["data"]["rows"]]
        head = ["core", "n", "d", "B", "T", *VARIANTS, *cores["data"]["rows"][0]["ratios"]]
        lines += md_table(head, rows)
    else:
        lines += [f"**Missing**: `{cores.get('command', 'rtrl-rl bench cores')}` did not give a result "
                  f"({cores.get('error', 'not run')}).", ""]
    if not data["meta"]["machine"]["gpu"] or "cuda" not in str(cores.get("data", {}).get("meta", {})):
        lines += ["**GPU rows missing**: this page was made without a GPU run; "
                  "`rtrl-rl bench cores --device cuda` measures them on a GPU machine.", ""]
    lines += _reference(data, ref)
    lines += _throughput(data, costs, ref)
    return lines


def _reference(data: dict, ref: dict) -> list[str]:
    lines = [f"### The reference implementation's figures (quoted from {ref['source']}, not measured here)", "",
             f"Irie et al.'s per-step RTRL layer and its comparators, eLSTM d = {ref['segment_d']}, float32, one H200, "
             "ms per learner segment. Different hardware from the table above: compare the ratios "
             "between columns, not the absolute times.", ""]
    lines += md_table(["n", "B", "T", "per-step RTRL", "TBPTT (autograd loop)", "cuDNN nn.LSTM fwd+bwd",
                     "segment form in a CUDA graph"],
                    [[str(r["n"]), str(r["B"]), str(r["T"]), fmt(r["per_step_rtrl"], 1), fmt(r["tbptt_autograd"], 1),
                      fmt(r["cudnn_lstm"], 1), fmt(r["segment_cuda_graph"], 1)] for r in ref["segment_ms"]])
    lines += ["Its acting step with and without sensitivities (ms): " + "; ".join(
        f"{a['where']}, B = {a['B']}" + (f", n = {a['n']}" if a["n"] else "") +
        f": {fmt(a['with_sensitivities'], 1)} vs {fmt(a['without'], 1)}" for a in ref["acting_ms"]) +
        ". Our actors compute no sensitivities (the learner keeps them), so acting costs the `forward_step` "
        "column above.", ""]
    p, ours = ref["cpu_prototype"], data.get("derived_costs") or {}
    keys = ("forward_ms_per_step", "segment_rtrl_extra_ms_per_step", "per_step_rtrl_ms_per_step")
    rows = [[f"design prototype (quoted from {p['source']})", *(fmt(p[k]) for k in keys)]]
    rows.append(["this package (table above)", *(fmt(ours.get(k)) for k in keys)])
    lines += [f"One CPU thread, eLSTM n = {p['n']}, d = {p['d']}, B = {p['B']}, T = {p['T']}, ms per step:", "",
              *md_table(["source", "forward", "segment RTRL adds", "per-step RTRL"], rows)]
    return lines


def _throughput(data: dict, costs: dict, ref: dict) -> list[str]:
    lines = ["### End-to-end training throughput", ""]
    thr = data["aggregate"].get("throughput", {})
    if thr:
        lines += ["Memory tasks, from the runs above (synchronous trainer, one thread per run, "
                  f"{data['meta']['jobs']} runs sharing the machine), env steps/s, mean over the runs of each task:", ""]
        tasks = list(thr)
        rules = list(dict.fromkeys(r for t in tasks for r in thr[t]))
        lines += md_table(["rule", *tasks], [[data["grid"]["rules"][r]["label"], *(
            f"{thr[t][r]:,.0f}" if r in thr[t] else "" for t in tasks)] for r in rules])
    runtimes = {k: v for k, v in costs.items() if k.startswith("runtime")} or {"runtime": {}}
    for key, rec in runtimes.items():
        lines += _runtime(key, rec)
    lines += [f"Throughput figures quoted from {ref['source']} (not measured here):", "",
              *(f"- {t['what']}: {t['steps_per_s']:,} steps/s" for t in ref["throughput"]), ""]
    return lines


def _runtime(key: str, rec: dict) -> list[str]:
    """One ``rtrl-rl bench runtime`` result: steps/s per learning mode against the raw env."""
    command = rec.get("command", "rtrl-rl bench runtime")
    if "data" not in rec:
        return [f"**Missing: `{key}`.** `{command}` gave no result ({rec.get('error', 'not run')}).", ""]
    d = rec["data"]
    s, share = d["setting"], d["share_of_raw"]
    lines = [f"`{command}` ({fmt(rec['wall_s'], 0)} s): config `{s['config']}`, {s['actors']} actor processes "
             f"+ learner (device `{s['device']}`), {s['num_envs']} streams, steady-state env steps/s, median of "
             f"{s['rounds']} round(s) of {fmt(s['seconds'], 0)} s; `raw env` is the environment alone with random "
             "actions.", ""]
    lines += md_table(["mode", "env steps/s", "share of raw env"],
                      [[m, f"{v:,.0f}", fmt(share.get(m)) if m in share else ""] for m, v in d["steps_per_s"].items()])
    if "rtrl_over_tbptt" in d:
        lines += [f"rtrl / tbptt throughput: {fmt(d['rtrl_over_tbptt'])}.", ""]
    return lines
