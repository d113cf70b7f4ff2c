"""The verification protocol of the RTRL cores (docs/rtrl.md, "Verification protocol"), for
``rtrl-rl gradcheck`` and the tests.

In float64: random parameters, inputs and start state; K segments of T steps with random
resets (one at step 0, one at a segment boundary); a random loss of the outputs at every
step. The RTRL gradients are accumulated segment by segment (carry passed along,
parameters unchanged) and compared with autograd BPTT over the concatenated stream with
the same resets (the core's plain-autograd ``reference_forward``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import torch
from torch import Tensor

from rtrl_rl.agents.cores import make_core


@dataclass
class GradcheckReport:
    """Result of one protocol run: relative errors against full-stream BPTT."""

    core: str
    path: str
    segments: int
    length: int
    errors: dict[str, float] = field(default_factory=dict)  # parameter -> max relative error
    output_error: float = 0.0       # max |y_rtrl - y_bptt|
    reset_effect: float = 0.0       # relative gradient change when resets are ignored

    @property
    def max_error(self) -> float:
        """Largest error over the parameters and the outputs."""
        return max([self.output_error, *self.errors.values()])

    def passed(self, tolerance: float = 1e-8, min_reset_effect: float = 1e-3) -> bool:
        """Whether every error is within tolerance and the resets visibly matter."""
        return self.max_error <= tolerance and self.reset_effect >= min_reset_effect


def relative_error(value: Tensor, reference: Tensor) -> float:
    """max |value - reference| / max |reference| (0 when both are zero)."""
    scale = reference.abs().max().item()
    diff = (value - reference).abs().max().item()
    return diff / scale if scale > 0 else diff


def random_resets(steps: int, batch: int, segment_length: int, generator: torch.Generator) -> Tensor:
    """(steps, batch) bool: ~15% random episode starts, plus one at step 0 (stream 0) and
    one at the second segment's first step (the last stream)."""
    reset = torch.rand(steps, batch, generator=generator) < 0.15
    reset[0, 0] = True
    if steps > segment_length:
        reset[segment_length, batch - 1] = True
    return reset


def run_protocol(core: str, segments: int = 3, length: int = 5, batch: int = 3, input_size: int = 4,
                 hidden_size: int = 5, seed: int = 0, rtrl_path: str = "auto",
                 dtype: torch.dtype = torch.float64, **options: Any) -> GradcheckReport:
    """Run the protocol for one core learning by exact RTRL (element-wise or dense) and return the errors."""
    gen = torch.Generator().manual_seed(seed)
    if rtrl_path != "auto":  # the element-wise cores' option (auto is their default)
        options["rtrl_path"] = rtrl_path
    model = make_core(core, input_size, hidden_size, learning="rtrl", **options).to(dtype)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=gen, dtype=dtype))
    steps = segments * length
    x = torch.randn(steps, batch, input_size, generator=gen, dtype=dtype)
    reset = random_resets(steps, batch, length, gen)
    # one random start per state part (h; h and c for the lstm)
    start = {k: torch.randn((batch, *shape), generator=gen, dtype=dtype) for k, shape in model.state_shapes().items()}
    s0 = next(iter(start.values())) if len(start) == 1 else start
    weights = torch.randn(2, steps, batch, model.output_size, generator=gen, dtype=dtype)

    def loss(y: Tensor, rows: slice) -> Tensor:
        return (weights[0, rows] * y + weights[1, rows] * y * y).sum()

    carry = model.initial_carry(batch)
    for key, value in start.items():
        carry[key].copy_(value)
    outputs = []
    for k in range(segments):
        rows = slice(k * length, (k + 1) * length)
        y, carry = model(x[rows], carry, reset[rows])
        loss(y, rows).backward()
        outputs.append(y.detach())
    rtrl = {name: p.grad.clone() for name, p in model.named_parameters()}

    bptt, y_ref = _bptt_gradients(model, x, s0, reset, loss)
    ignored, _ = _bptt_gradients(model, x, s0, torch.zeros_like(reset), loss)
    report = GradcheckReport(core, rtrl_path, segments, length)
    report.errors = {name: relative_error(rtrl[name], bptt[name]) for name in bptt}
    report.output_error = (torch.cat(outputs) - y_ref).abs().max().item()
    report.reset_effect = max(relative_error(ignored[name], bptt[name]) for name in bptt)
    return report


def _bptt_gradients(model, x: Tensor, s0, reset: Tensor, loss) -> tuple[dict[str, Tensor], Tensor]:
    """Autograd BPTT over the whole stream through the core's plain-autograd reference."""
    model.zero_grad()
    y = model.reference_forward(x, s0, reset)
    loss(y, slice(None)).backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()
    return grads, y.detach()


def format_report(report: GradcheckReport) -> list[str]:
    """Human-readable lines: one per parameter, then outputs and the reset check."""
    head = f"{report.core} (path={report.path}, K={report.segments} segments of T={report.length})"
    lines = [head] + [f"  {name:<12} max rel. error {err:.2e}" for name, err in report.errors.items()]
    lines.append(f"  {'outputs':<12} max abs. error {report.output_error:.2e}")
    lines.append(f"  {'resets':<12} ignoring them changes the gradient by {report.reset_effect:.2e} (must be large)")
    return lines


def check_all(cores: list[str], segments: int, length: int, paths: Optional[list[str]] = None,
              seed: int = 0) -> list[GradcheckReport]:
    """Run the protocol for each core and each RTRL path (default: segment and step; the
    dense cores, whose exact RTRL has one path, once)."""
    from rtrl_rl.agents.cores import elementwise_cores

    paths = paths or ["segment", "step"]
    return [run_protocol(c, segments=segments, length=length, rtrl_path=p, seed=seed)
            for c in cores for p in (paths if c in elementwise_cores() else ["auto"])]
