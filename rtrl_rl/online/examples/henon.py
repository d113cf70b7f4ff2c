"""One-step prediction of the Hénon map, learned online from a single stream.

The map (a = 1.4, b = 0.3): x_{t+1} = 1 - a x_t² + y_t, y_{t+1} = b x_t. The learners see
only x_t (plus observation noise of std ``noise`` in the noisy variant) and predict the
next observation, so they must remember the previous input: y_t = b x_{t-1}. Compared:
RTRL (eLSTM), truncated BPTT over short windows (same core), and a linear model of the
last two observations. Run ``python -m rtrl_rl.online.examples.henon``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from rtrl_rl.online import OnlineLearner
from rtrl_rl.online.examples.common import plot_curves, window_means, write_json

A, B = 1.4, 0.3


def henon_series(steps: int, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """Observations x_0 .. x_steps (steps + 1 values) of the Hénon map from (0.1, 0.1),
    with i.i.d. Gaussian observation noise of std ``noise`` added (the state stays clean)."""
    x, y, out = 0.1, 0.1, np.empty(steps + 1)
    for t in range(steps + 1):
        out[t] = x
        x, y = 1.0 - A * x * x + y, B * x
    return out + noise * np.random.default_rng(seed).standard_normal(steps + 1)


def learners(hidden: int, lr: float, window: int) -> dict[str, tuple[OnlineLearner, int]]:
    """label -> (learner, how many past observations it is given as input)."""
    return {
        f"RTRL eLSTM n={hidden}": (OnlineLearner(1, 1, "elstm", hidden, lr=lr), 1),
        f"TBPTT eLSTM n={hidden}, window {window}": (
            OnlineLearner(1, 1, "elstm", hidden, lr=lr, learning="tbptt", update_every=window), 1),
        "linear model of x_t, x_(t-1)": (OnlineLearner(2, 1, None, lr=lr), 2),
    }


def squared_errors(learner: OnlineLearner, series: np.ndarray, lags: int) -> list[float]:
    """Feed the stream once, one step at a time; the squared error of each prediction
    (made before the learner sees its target) for steps lags-1 .. len-2."""
    errors = []
    for t in range(lags - 1, len(series) - 1):
        inputs = series[t - lags + 1: t + 1][::-1].copy()  # newest first
        prediction = learner.step(inputs, series[t + 1: t + 2])
        errors.append(float(prediction[0]) - series[t + 1])
    return [e * e for e in errors]


def run(steps: int = 10000, noise_levels: tuple[float, ...] = (0.0, 0.05), hidden: int = 32, lr: float = 1e-2,
        window: int = 2, seed: int = 0, curve_window: int = 250) -> dict:
    """All learners on the clean and the noisy stream; returns curves and summaries."""
    results: dict = {"config": {"steps": steps, "a": A, "b": B, "hidden": hidden, "lr": lr, "window": window,
                                "seed": seed, "curve_window": curve_window}, "runs": {}}
    for noise in noise_levels:
        series = henon_series(steps, noise, seed)
        variance = float(series.var())
        runs = {}
        for label, (learner, lags) in _seeded(learners, seed, hidden, lr, window).items():
            start = time.perf_counter()
            errors = squared_errors(learner, series, lags)
            tail = errors[-len(errors) // 10:]
            runs[label] = {"curve": window_means(errors, curve_window), "first_10pct_mse": float(np.mean(errors[:len(tail)])),
                           "last_10pct_mse": float(np.mean(tail)), "last_10pct_nmse": float(np.mean(tail)) / variance,
                           "seconds": time.perf_counter() - start}
        results["runs"][f"noise {noise}"] = {"variance": variance, "noise_mse_floor": noise * noise, "learners": runs}
    return results


def _seeded(factory, seed: int, *args):
    torch.manual_seed(seed)
    return factory(*args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("docs/online"), help="folder for henon.png and henon.json")
    args = parser.parse_args(argv)
    if args.steps < 100:
        parser.error("--steps must be >= 100")
    torch.set_num_threads(1)
    results = run(args.steps, seed=args.seed)
    for variant, block in results["runs"].items():
        print(f"{variant} (variance {block['variance']:.3f}):")
        for label, r in block["learners"].items():
            print(f"  {label:34s} MSE first 10% {r['first_10pct_mse']:.4f}  last 10% {r['last_10pct_mse']:.5f} "
                  f"(NMSE {r['last_10pct_nmse']:.4f})  {r['seconds']:.1f} s")
    write_json(args.out / "henon.json", results)
    panels = [(f"Hénon, {variant}", {k: r["curve"] for k, r in block["learners"].items()})
              for variant, block in results["runs"].items()]
    plot_curves(args.out / "henon.png", panels, results["config"]["curve_window"], "squared error (window mean)")
    print(f"wrote {args.out / 'henon.json'} and {args.out / 'henon.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
