"""Online identification and control of a nonlinear two-input two-output plant.

The plant (state = output y = (y1, y2), input u = (u1, u2), both bounded to |u| <= 2):

    y1(k+1) = 0.6 y1(k) + 0.2 y2(k) / (1 + y1(k)²) + tanh(u1(k)) + 0.3 u2(k)
    y2(k+1) = 0.5 y2(k) + 0.3 sin(y1(k)) + 0.8 tanh(u2(k)) - 0.2 u1(k) y1(k)

Two recurrent networks, both learned online by RTRL one step at a time (the classic
two-network scheme): the *model* M predicts y(k+1) from (u(k), y(k)); the *controller* C
maps (r(k+1), y(k)) to u(k) = 2 tanh(C(...)) and is trained through M: its gradient is
J_Mᵀ (y(k+1) - r(k+1)), the plant's measured tracking error sent back through the
model's Jacobian dM/du. The model keeps learning from the closed loop. Run
``python -m rtrl_rl.online.examples.plant``.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from rtrl_rl.online import OnlineLearner
from rtrl_rl.online.examples.common import plot_curves, window_means, write_json

U_MAX = 2.0


class Plant:
    """The plant above, from y = 0; ``step(u)`` applies u (2,) and returns y(k+1) (2,)."""

    def __init__(self) -> None:
        self.y = np.zeros(2)

    def step(self, u: np.ndarray) -> np.ndarray:
        """Advance one step under input u (clipped to [-2, 2])."""
        u1, u2 = np.clip(u, -U_MAX, U_MAX)
        y1, y2 = self.y
        self.y = np.array([0.6 * y1 + 0.2 * y2 / (1 + y1 * y1) + math.tanh(u1) + 0.3 * u2,
                           0.5 * y2 + 0.3 * math.sin(y1) + 0.8 * math.tanh(u2) - 0.2 * u1 * y1])
        return self.y.copy()


def reference(k: int) -> np.ndarray:
    """The reference r(k): two sinusoids of periods 60 and 25 steps."""
    return np.array([0.8 * math.sin(2 * math.pi * k / 60), 0.5 * math.cos(2 * math.pi * k / 25)])


def _tensor(value: np.ndarray) -> Tensor:
    return torch.as_tensor(value, dtype=torch.float32)


def control_step(model: OnlineLearner, controller: OnlineLearner, plant: Plant, k: int) -> float:
    """One closed-loop step: act, measure, train C through M and M from the measurement.

    Returns the squared tracking error |y(k+1) - r(k+1)|².
    """
    y, r_next = _tensor(plant.y), _tensor(reference(k + 1))
    u = U_MAX * torch.tanh(controller.predict(torch.cat([r_next, y])))
    y_next = _tensor(plant.step(u.detach().numpy()))
    u_in = u.detach().requires_grad_()  # the model's input: the controller's gradient stops here
    prediction = model.predict(torch.cat([u_in, y]))
    # d/du of this surrogate is J_Mᵀ (y(k+1) - r(k+1)): the measured error through the model
    surrogate = 0.5 * (prediction - prediction.detach() + (y_next - r_next)).square().sum()
    (grad_u,) = torch.autograd.grad(surrogate, u_in, retain_graph=True)
    controller.learn((u * grad_u).sum())
    model.learn(nn.functional.mse_loss(prediction, y_next))
    return float((y_next - r_next).square().sum())


def run(identify: int = 2000, control: int = 8000, hidden: int = 32, lr: float = 3e-3, seed: int = 0,
        curve_window: int = 250) -> dict:
    """Identify the plant from random inputs, then control it; returns curves and summaries."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = OnlineLearner(4, 2, "elstm", hidden, lr=lr)
    controller = OnlineLearner(4, 2, "elstm", hidden, lr=lr)
    plant, start = Plant(), time.perf_counter()
    id_errors = []
    for _ in range(identify):  # excitation: inputs uniform in [-2, 2]
        u, y = rng.uniform(-U_MAX, U_MAX, 2), plant.y.copy()
        y_next = plant.step(u)
        prediction = model.step(np.concatenate([u, y]), y_next)
        id_errors.append(float(np.square(prediction.numpy() - y_next).sum()))
    tracking = [control_step(model, controller, plant, identify + k) for k in range(control)]
    passive, zero = Plant(), []
    for k in range(identify, identify + control):  # the same reference with u = 0, for scale
        zero.append(float(np.square(passive.step(np.zeros(2)) - reference(k + 1)).sum()))
    tail = len(tracking) // 10
    return {"config": {"identify": identify, "control": control, "hidden": hidden, "lr": lr, "seed": seed,
                       "curve_window": curve_window},
            "identification_curve": window_means(id_errors, curve_window),
            "tracking_curve": window_means(tracking, curve_window),
            "zero_input_curve": window_means(zero, curve_window),
            "identification_first_10pct": float(np.mean(id_errors[: len(id_errors) // 10])),
            "identification_last_10pct": float(np.mean(id_errors[-(len(id_errors) // 10):])),
            "tracking_first_10pct": float(np.mean(tracking[:tail])),
            "tracking_last_10pct": float(np.mean(tracking[-tail:])),
            "zero_input_mean": float(np.mean(zero)), "seconds": time.perf_counter() - start}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--identify", type=int, default=2000, help="steps of identification with random inputs")
    parser.add_argument("--control", type=int, default=8000, help="closed-loop control steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("docs/online"), help="folder for plant.png and plant.json")
    args = parser.parse_args(argv)
    if args.identify < 10 or args.control < 10:
        parser.error("--identify and --control must be >= 10")
    torch.set_num_threads(1)
    r = run(args.identify, args.control, seed=args.seed)
    print(f"identification squared error: first 10% {r['identification_first_10pct']:.4f}, "
          f"last 10% {r['identification_last_10pct']:.5f}")
    print(f"tracking squared error: first 10% {r['tracking_first_10pct']:.4f}, last 10% "
          f"{r['tracking_last_10pct']:.5f} (u = 0: {r['zero_input_mean']:.4f}); {r['seconds']:.1f} s")
    write_json(args.out / "plant.json", r)
    window = r["config"]["curve_window"]
    plot_curves(args.out / "plant.png", [
        ("identification (random inputs)", {"model M: |ŷ(k+1) - y(k+1)|²": r["identification_curve"]}),
        ("tracking (after identification)", {"controller C through M": r["tracking_curve"],
                                             "u = 0 (no control)": r["zero_input_curve"]}),
    ], window, "squared error (window mean)")
    print(f"wrote {args.out / 'plant.json'} and {args.out / 'plant.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
