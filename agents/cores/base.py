"""Shared base of the recurrent cores: options, carry construction, input validation, and
the forward pass of the element-wise cores through :class:`rtrl_rl.agents.cores.scan.ElementwiseRTRL`."""

from __future__ import annotations

import abc
import ctypes
import math
import os
import sys
from typing import Optional

import torch
from torch import Tensor, nn

from rtrl_rl.agents.cores.carry import Carry
from rtrl_rl.agents.cores.scan import ElementwiseRTRL

LEARNING_MODES = ("rtrl", "tbptt")
INPUT_GRAD_MODES = ("step", "segment")
RTRL_PATHS = ("auto", "segment", "step")
_malloc_tuned = False


def retain_freed_memory() -> bool:
    """Ask glibc to keep freed heap memory instead of returning it to the OS (Linux, CPU).

    Every RTRL segment allocates a new sensitivity carry (B * G*n * d floats, 8 MiB for
    eLSTM n = d = 256, B = 16). With glibc's defaults such blocks go back to the OS when
    freed, and each new carry then pays a page fault per 4 KiB page (~40% of a segment
    at that size). Called once, when the first CPU carry with sensitivities is built;
    set RTRL_RL_KEEP_MALLOC=1 to leave the allocator alone. Returns whether it applied.
    """
    global _malloc_tuned
    if _malloc_tuned or os.environ.get("RTRL_RL_KEEP_MALLOC") or not sys.platform.startswith("linux"):
        return False
    _malloc_tuned = True
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (e.g. musl): nothing to tune
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(libc.mallopt(m_trim_threshold, 1 << 30) and libc.mallopt(m_mmap_threshold, 32 << 20))


class RecurrentCore(nn.Module, abc.ABC):
    """A recurrent core: ``forward(x (T,B,d), carry, reset (T,B) bool) -> (y (T,B,out), carry)``."""

    name = "core"

    def __init__(self, input_size: int, hidden_size: int, learning: str = "rtrl") -> None:
        super().__init__()
        if learning not in LEARNING_MODES:
            raise ValueError(f"unknown learning mode {learning!r}; expected one of {LEARNING_MODES}")
        if input_size < 1 or hidden_size < 1:
            raise ValueError(f"input_size and hidden_size must be >= 1, got {input_size}, {hidden_size}")
        self.input_size, self.hidden_size, self.learning = input_size, hidden_size, learning

    @property
    def output_size(self) -> int:
        """Size of the last dimension of y."""
        return self.hidden_size

    @abc.abstractmethod
    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        """Per-stream shape of each state entry of the carry."""

    def sensitivity_shapes(self) -> dict[str, tuple[int, ...]]:
        """Per-stream shape of each RTRL sensitivity entry (empty when not learning by RTRL)."""
        return {}

    def initial_carry(self, batch_size: int, sensitivities: Optional[bool] = None) -> Carry:
        """Zero state (and zero sensitivities) for ``batch_size`` streams.

        ``sensitivities=False`` gives the state only, for acting (no sensitivities are then
        computed). Follows the dtype and device of the module's parameters.
        """
        ref = next(self.parameters())
        shapes = dict(self.state_shapes())
        if sensitivities is None or sensitivities:
            shapes.update(self.sensitivity_shapes())
            if self.sensitivity_shapes() and ref.device.type == "cpu":
                retain_freed_memory()
        return Carry({k: ref.new_zeros((batch_size, *s)) for k, s in shapes.items()})

    def validate(self, x: Tensor, carry: Carry, reset: Tensor, truncate: bool = False) -> bool:
        """Raise ValueError naming what was expected; return whether the carry has sensitivities.

        A state-only carry is for acting: with gradients enabled, an RTRL core would give
        only the gradient within the segment, truncated at its start (what tbptt
        computes), without saying so; that is an error unless ``truncate=True`` asks for it.
        """
        if not isinstance(x, Tensor) or x.dim() != 3 or x.shape[2] != self.input_size or x.shape[0] < 1:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"x must be a (T, B, input_size={self.input_size}) tensor with T >= 1, got {got}")
        T, B = x.shape[:2]
        if (not isinstance(reset, Tensor) or reset.dtype != torch.bool or tuple(reset.shape) != (T, B)
                or reset.device != x.device):
            got = ((tuple(reset.shape), reset.dtype, str(reset.device)) if isinstance(reset, Tensor)
                   else type(reset).__name__)
            raise ValueError(f"reset must be a bool tensor of shape (T, B) = {(T, B)} on x's device, got {got}")
        if not isinstance(carry, dict):
            raise ValueError(f"carry must be a Carry from {self.name}.initial_carry, got {type(carry).__name__}")
        state, full = self.state_shapes(), {**self.state_shapes(), **self.sensitivity_shapes()}
        if set(carry) not in (set(state), set(full)):
            allowed = sorted(full) if full == state else f"{sorted(state)} or {sorted(full)}"
            raise ValueError(f"carry keys {sorted(carry)} do not fit the {self.name} core; expected {allowed}")
        if not all(isinstance(v, Tensor) for v in carry.values()):
            raise ValueError("carry values must be tensors (use initial_carry)")
        ref = next(self.parameters())
        for name, tensor in [("x", x), *((f"carry[{k!r}]", carry[k]) for k in carry)]:
            if tensor.dtype != ref.dtype or tensor.device != ref.device:
                raise ValueError(f"{name} must be {ref.dtype} on {ref.device} like the core's parameters, "
                                 f"got {tensor.dtype} on {tensor.device}")
        for key in carry:
            if tuple(carry[key].shape) != (B, *full[key]):
                raise ValueError(f"carry[{key!r}] must have shape {(B, *full[key])} (batch size {B}), "
                                 f"got {tuple(carry[key].shape)}")
        has_sens = len(carry) > len(state)
        if (not has_sens and full != state and not truncate and torch.is_grad_enabled()
                and (x.requires_grad or any(p.requires_grad for p in self.parameters()))):
            raise ValueError(f"the {self.name} core learns by RTRL but got a state-only carry with gradients "
                             "enabled: its gradient would be silently truncated at the segment start. Pass "
                             "initial_carry(B) (with sensitivities), run under torch.no_grad() to act, or "
                             "forward(..., truncate=True) to ask for the truncated gradient")
        return has_sens


class ElementwiseCore(RecurrentCore):
    """An element-wise core learned by exact RTRL (or truncated BPTT) in one module.

    Subclasses set ``gates``, ``has_diag`` and ``state_key``, and define ``sequence``,
    ``derivatives`` (see :class:`rtrl_rl.agents.cores.scan.Cell`), ``readout`` and
    ``reference_step`` (plain autograd, used to verify the RTRL machinery).

    Options: ``input_grad`` "step" (rtrl default: same-step gradient to x) or "segment"
    (backprop through the core inside the segment; always so for tbptt);
    ``rtrl_path`` "auto" (segment form for T > 1, per-step recursion for T = 1), "segment"
    or "step"; ``forget_bias`` (see the subclass).
    """

    gates = 1
    has_diag = False
    state_key = "s"

    def __init__(self, input_size: int, hidden_size: int, learning: str = "rtrl", forget_bias: float = 3.0,
                 input_grad: Optional[str] = None, rtrl_path: str = "auto") -> None:
        super().__init__(input_size, hidden_size, learning)
        if input_grad is None:
            input_grad = "step" if learning == "rtrl" else "segment"
        if input_grad not in INPUT_GRAD_MODES:
            raise ValueError(f"unknown input_grad {input_grad!r}; expected one of {INPUT_GRAD_MODES}")
        if learning == "tbptt" and input_grad != "segment":
            raise ValueError("tbptt backpropagates through the segment: input_grad must be 'segment'")
        if rtrl_path not in RTRL_PATHS:
            raise ValueError(f"unknown rtrl_path {rtrl_path!r}; expected one of {RTRL_PATHS}")
        self.input_grad, self.rtrl_path = input_grad, rtrl_path
        gn = self.gates * hidden_size
        self.weight = nn.Parameter(torch.empty(gn, input_size))
        self.bias = nn.Parameter(torch.empty(gn))
        self.register_parameter("recurrent", nn.Parameter(torch.empty(gn)) if self.has_diag else None)
        self.forget_bias = forget_bias
        self.build()
        self.reset_parameters()

    def build(self) -> None:
        """Create parameters beyond the gates' (W, b, w), before initialisation."""

    @abc.abstractmethod
    def reset_parameters(self) -> None:
        """Initialise the parameters (each core keeps its memory alive via forget_bias)."""

    def _uniform(self, tensor: Tensor, fan_in: int) -> None:
        """PyTorch's default layer initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
        bound = 1.0 / math.sqrt(fan_in)
        nn.init.uniform_(tensor, -bound, bound)

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        """The state: one vector of hidden_size per stream."""
        return {self.state_key: (self.hidden_size,)}

    def sensitivity_shapes(self) -> dict[str, tuple[int, ...]]:
        """ds/dW (G*n, d), ds/db (G*n) and ds/dw (G*n) per stream, in rtrl mode."""
        if self.learning != "rtrl":
            return {}
        gn, s = self.gates * self.hidden_size, self.state_key
        shapes = {f"d{s}/dW": (gn, self.input_size), f"d{s}/db": (gn,)}
        if self.has_diag:
            shapes[f"d{s}/dw"] = (gn,)
        return shapes

    def forward(self, x: Tensor, carry: Carry, reset: Tensor, truncate: bool = False) -> tuple[Tensor, Carry]:
        """Run T steps: x (T,B,d), reset (T,B) bool -> y (T,B,output_size), new carry.

        ``truncate``: accept a state-only carry with gradients enabled (the gradient is
        then truncated at the segment start; see :meth:`validate`)."""
        has_sens = self.validate(x, carry, reset, truncate)
        sens_keys = list(self.sensitivity_shapes()) if has_sens else []
        # contiguous() is free for carries made here; it keeps the machinery's views valid
        sens = [carry[k].contiguous() for k in sens_keys] + ([None] if has_sens and not self.has_diag else [])
        path = self.rtrl_path if self.rtrl_path != "auto" else ("step" if x.shape[0] == 1 else "segment")
        keep = (~reset).to(x.dtype)
        outputs = ElementwiseRTRL.apply(self, (self.input_grad, path), x, carry[self.state_key], keep,
                                        self.weight, self.bias, self.recurrent, *sens)
        states = outputs[0]
        new_carry = Carry({self.state_key: states[-1].detach()})
        new_carry.update(zip(sens_keys, outputs[1:]))
        return self.readout(x, states), new_carry

    def readout(self, x: Tensor, states: Tensor) -> Tensor:
        """Output y (T,B,out) from inputs and states; same-step, ordinary autograd."""
        return states

    @abc.abstractmethod
    def reference_step(self, x: Tensor, s_prev: Tensor) -> Tensor:
        """One step of the cell in plain autograd: x (B,d), s_prev (B,n) -> s (B,n)."""

    def reference_forward(self, x: Tensor, s0: Tensor, reset: Tensor) -> Tensor:
        """The core in plain autograd over a whole stream (BPTT reference): y (T,B,out)."""
        s, states = s0, []
        for t in range(x.shape[0]):
            s = self.reference_step(x[t], s * (~reset[t]).to(s.dtype).unsqueeze(-1))
            states.append(s)
        return self.readout(x, torch.stack(states))
