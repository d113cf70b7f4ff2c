"""What a diverged update looks like: which loss term, which parameter group, which inputs.

The learner stops before an optimizer step would write NaN or inf into the parameters
(``Learner.update``) and raises :class:`Diverged` with :func:`divergence_report`: the loss
terms that are not finite, the parameter groups (the model's top-level parts: encoder,
mixer, core, policy, value_head) ordered by gradient norm, the largest reward and
observation magnitudes of the segment, and the remedies ``docs/agent.md`` documents
("When training diverges").
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

#: the remedies, in the order worth trying (documented in docs/agent.md)
REMEDIES = ("lower train.lr", "keep train.max_grad_norm > 0 (or lower it)",
            "set train.reward_clip or scale the rewards", "scale large observations into a small range",
            "try agent.core_norm=true")


class Diverged(FloatingPointError):
    """An update whose loss or gradient is not finite; the parameters were left unchanged."""

    #: the run's ``stopped`` reason in summary.json
    reason = "diverged"


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def group_norms(model: nn.Module) -> dict[str, tuple[float, str]]:
    """Per top-level part of ``model``: (gradient norm, its parameter with the largest one,
    a non-finite one first), from the ``.grad`` of every parameter, in float64 (so a norm
    that overflows the parameters' float32 is still told apart from a NaN or inf entry)."""
    groups: dict[str, list[tuple[float, str]]] = {}
    for name, p in model.named_parameters():
        if p.grad is not None:
            norm = float(torch.linalg.vector_norm(p.grad.detach().double()))
            groups.setdefault(name.split(".", 1)[0], []).append((norm, name))
    result = {}
    for group, norms in groups.items():
        total = math.sqrt(sum(n * n for n, _ in norms))
        worst = max(norms, key=lambda item: _rank(item[0]))
        result[group] = (total, worst[1])
    return result


def _rank(norm: float) -> float:
    """Sort key: a NaN or infinite norm counts as the largest."""
    return math.inf if not math.isfinite(norm) else norm


def _largest(values: Tensor) -> str:
    """``largest |x| 3.2`` of a float tensor, or ``NaN/inf`` when it holds any."""
    values = values.detach()
    if not torch.isfinite(values).all():
        return "NaN/inf"
    return _fmt(float(values.abs().max())) if values.numel() else "none"


def divergence_report(update: int, terms: dict[str, Tensor], model: nn.Module,
                      segment: dict[str, Tensor]) -> str:
    """The message of a diverged update ``update`` (1-based) from its loss ``terms``, the
    model's ``.grad`` (before any clipping) and the ``segment`` it learned from."""
    values = {name: float(term) for name, term in terms.items()}
    bad = [name for name, v in values.items() if not math.isfinite(v)]
    shown = ", ".join(f"{name} {_fmt(v)}" for name, v in values.items())
    norms = group_norms(model)
    if bad:
        what = f"the {' and '.join(bad)} loss {'is' if len(bad) == 1 else 'are'} not finite ({shown})"
    elif any(not math.isfinite(n) for n, _ in norms.values()):
        what = f"the loss terms are finite ({shown}) but their gradient is not"
    else:  # every gradient is finite: only the sum of their squares overflowed
        what = f"the loss terms and their gradient are finite ({shown}) but the gradient's norm overflows"
    rewards = _largest(segment["reward"].float())
    obs = [v for k, v in segment.items() if (k == "obs" or k.startswith("obs.")) and v.is_floating_point()]
    inputs = f"largest |reward| in the segment {rewards}"
    if obs:
        inputs += f", largest |observation| {_largest(torch.cat([o.reshape(-1) for o in obs]))}"
    remedies = REMEDIES if rewards != "NaN/inf" else ("the rewards hold NaN or inf: check them", *REMEDIES)
    return (f"training diverged at update {update}: {what}; {_where(norms)}; {inputs}. The "
            f"parameters were left unchanged. Remedies (docs/agent.md, \"When training diverges\"): "
            f"{'; '.join(remedies)}")


def _where(norms: dict[str, tuple[float, str]]) -> str:
    """Which parameter groups hold non-finite gradients, and the largest finite one."""
    broken = [(g, p) for g, (n, p) in norms.items() if not math.isfinite(n)]
    finite = sorted(((n, g, p) for g, (n, p) in norms.items() if math.isfinite(n)), reverse=True)
    parts = []
    if broken:
        parts.append("the gradient is not finite in " + ", ".join(f"the {g} ({p})" for g, p in broken))
    if finite:
        norm, group, param = finite[0]
        parts.append(f"the largest finite gradient is in the {group} ({param}: norm {_fmt(norm)})")
    return "; ".join(parts) or "no parameter has a gradient"
