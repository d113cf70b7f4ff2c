"""Stacks of recurrent cores: L layers, each learned by its own exact RTRL.

Layer l reads layer l-1's output y^{l-1}_t (layer 0 reads x_t). A stack of element-wise
layers is fully recurrent again, so exact RTRL for the whole stack would cost what it
costs for a dense network. The approximation here (Zucchet et al., NeurIPS 2023, "Online
learning of long-range dependencies"): the gradient passes between layers at the same
step only. Precisely, with L = Σ_t L_t, the gradient given to layer l's parameters is

    Σ_t δ^l_t · ∂y^l_t/∂θ^l    (∂y^l_t/∂θ^l exact, through layer l's whole past: its RTRL)

where δ^l_t = ∂L_t/∂y^l_t along paths that stay at step t (through the upper layers'
same-step maps; every path through an upper layer's state at a later step is dropped).
It is what autograd gives when each upper layer's input is detached from its recurrence
except at the same step (tested). For L = 1 it is the exact gradient.

It falls out of the element-wise cores' ``input_grad="step"``: layers 1..L-1 use it, so
their input gradient is the same-step one; layer 0's ``input_grad`` is the caller's
choice (the encoder below). With ``learning="tbptt"`` every layer backpropagates through
the segment (ordinary truncated BPTT through the stack). No extras between layers (no
norm, no residual, no GLU): none has been measured here, so none is added.
"""

from __future__ import annotations

from typing import Any, Callable

from torch import Tensor, nn

from rtrl_rl.agents.cores.base import ElementwiseCore, RecurrentCore
from rtrl_rl.agents.cores.carry import Carry


def check_layers(layers: Any) -> int:
    """``layers`` if it is an int >= 1, else a ValueError naming it."""
    if not isinstance(layers, int) or isinstance(layers, bool) or layers < 1:
        raise ValueError(f"layers must be an int >= 1, got {layers!r}")
    return layers


class Stack(RecurrentCore):
    """``layers`` cores built by ``build(input_size, **options)``; carry keys are prefixed
    by the layer index ("0.h", "1.dh/dW", ...). Layers after the first get the same-step
    input gradient (see the module docstring)."""

    def __init__(self, build: Callable[..., RecurrentCore], input_size: int, hidden_size: int, layers: int,
                 learning: str = "rtrl", **options: Any) -> None:
        check_layers(layers)
        super().__init__(input_size, hidden_size, learning)
        cores: list[RecurrentCore] = [build(input_size, learning=learning, **options)]
        for _ in range(layers - 1):
            upper = dict(options)
            if isinstance(cores[0], ElementwiseCore):
                upper["input_grad"] = "step" if learning == "rtrl" else "segment"
            cores.append(build(cores[-1].output_size, learning=learning, **upper))
        self.layers = nn.ModuleList(cores)
        self.name = f"{cores[0].name} x{layers}"

    @property
    def output_size(self) -> int:
        """The last layer's output size."""
        return self.layers[-1].output_size

    def _prefixed(self, shapes: Callable[[RecurrentCore], dict]) -> dict[str, tuple[int, ...]]:
        return {f"{i}.{k}": v for i, core in enumerate(self.layers) for k, v in shapes(core).items()}

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every layer's state entries, prefixed by the layer index."""
        return self._prefixed(lambda core: core.state_shapes())

    def sensitivity_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every layer's sensitivity entries, prefixed by the layer index."""
        return self._prefixed(lambda core: core.sensitivity_shapes())

    def forward(self, x: Tensor, carry: Carry, reset: Tensor, truncate: bool = False) -> tuple[Tensor, Carry]:
        """Run T steps through the layers in turn: x (T,B,d) -> y (T,B,output_size), new carry.

        ``truncate`` is passed to every layer (see :meth:`RecurrentCore.validate`)."""
        self.validate(x, carry, reset, truncate)
        new = Carry()
        y = x
        for i, core in enumerate(self.layers):
            prefix = f"{i}."
            y, layer_carry = core(y, Carry({k[len(prefix):]: v for k, v in carry.items() if k.startswith(prefix)}),
                                  reset, truncate=truncate)
            new.update({prefix + k: v for k, v in layer_carry.items()})
        return y, new
