"""``docs/approximations.md``, from its three results JSONs alone.

``bench_gradients.json`` (``rtrl-rl bench gradients``: gradient quality and cost),
``approx_learning.json`` and ``approx_learning_long.json`` (``rtrl-rl bench
approx-learning``: learning with each rule). Either experiment writes the whole page; a
JSON that is missing leaves its part out. The findings first (the gradient verdicts and
where each rule learns, with the cosine chart), then what each rule approximates, the
tables, the learning grids, and how to reproduce it.
"""

from __future__ import annotations

import os
from pathlib import Path

from rtrl_rl.bench import approx_learning_page as learning
from rtrl_rl.bench import gradients_page as gradients
from rtrl_rl.bench.page import duration, reproduce, write

GRADIENTS_JSON, LEARNING_JSON, LONG_JSON = "bench_gradients.json", "approx_learning.json", "approx_learning_long.json"


def parts(data: dict, folder: Path) -> tuple[dict | None, dict | None, dict | None]:
    """(gradients, learning, longer learning): ``data`` in its place (told apart by its
    content), the others read beside it where they exist."""
    import json

    def kind(result: dict) -> int:
        return 0 if "quality" in result else 2 if result["grid"]["name"] == "long" else 1
    found = [json.loads((folder / name).read_text()) if (folder / name).is_file() else None
             for name in (GRADIENTS_JSON, LEARNING_JSON, LONG_JSON)]
    found[kind(data)] = data
    return found[0], found[1], found[2]


def write_page(data: dict, json_path: Path, md_path: Path) -> list[Path]:
    """Write the page (and the gradient charts beside the JSONs); ``data`` is the result at
    ``json_path``, the others are read beside it. Returns the files written."""
    folder = json_path.parent
    grads, full, longer = parts(data, folder)
    pngs = gradients.plots(folder, grads["quality"], grads["cost"]) if grads else []
    links = {p.stem: os.path.relpath(p, md_path.parent) for p in pngs}
    lines = ["# Approximate RTRL for the dense cores", "",
             "How close each approximate learning rule of the dense cores (`snap1`, `uoro`, `kfrtrl`) comes to the "
             "exact gradient, what it costs, and whether an agent trained with it learns, beside exact RTRL and "
             "truncated BPTT.", ""]
    if "approximations_cos" in links:
        lines += [f"![cosine of each estimate to the exact gradient]({links['approximations_cos']})", ""]
    lines += ["## Findings", ""]
    if grads:
        lines += ["The gradients (computed from the tables below):", "",
                  *gradients.verdicts(grads["quality"], grads["cost"], grads["rtrl_exponent"], grads["meta"]), ""]
    for result, when in ((full, ""), (longer, " at the longer budget")):
        if result:
            lines += [f"Learning with them{when} (computed from the tables below):", "",
                      *learning.summary(result, learning.cells(result)), ""]
    lines += ["## What each rule approximates", "", gradients.RULES, ""]
    if grads:
        lines += [gradients.setup(grads), "", *(f"![{p.name}]({links[p.stem]})" for p in pngs[1:]), "",
                  *gradients.details(grads)]
    if full:
        lines += learning.section(full)
    if longer:
        lines += learning.longer_section(longer)
    lines += _reproduce(grads, full, longer, folder, md_path)
    return [write(md_path, lines), *pngs]


def _reproduce(grads: dict | None, full: dict | None, longer: dict | None, folder: Path, md_path: Path) -> list[str]:
    """The three commands behind the page, each with the time it took here."""
    rel = os.path.relpath(folder, md_path.parent)
    gradient_time = f"{duration(grads['meta']['seconds'])} on one thread" if grads else "not run here"

    def grid_time(result: dict | None) -> str:
        if not result:
            return "not run here"
        runs = [r for r in result["runs"] if learning.finished(r)]
        seconds = sum(r.get("process_wall_s", 0.0) for r in runs)
        jobs = " then ".join(dict.fromkeys(str(h["jobs"]) for h in result["meta"]["history"]))
        return f"{len(runs)} runs, {duration(seconds)} of training processes, {jobs} at a time"
    commands = [(f"rtrl-rl bench gradients --json docs/results/{GRADIENTS_JSON} --doc docs/approximations.md",
                 f"the gradient quality and cost tables and their charts: {gradient_time}"),
                ("rtrl-rl bench approx-learning", f"the learning grid: {grid_time(full)}"),
                ("rtrl-rl bench approx-learning --grid long", f"the longer budget: {grid_time(longer)}")]
    notes = ["`rtrl-rl bench approx-learning --report-only` rewrites this page from its three JSONs (the gradient "
             "rows name their command and CPU in their `meta`); `--resume` continues a grid that stopped."]
    return reproduce([f"{rel}/{LEARNING_JSON}", f"{rel}/{LONG_JSON}"], commands, notes)
