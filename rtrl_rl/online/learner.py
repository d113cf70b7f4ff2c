"""Supervised online learning with a recurrent core: one (input, target) pair at a time.

:class:`OnlineLearner` keeps one carry per stream for as long as the stream runs. With
``learning="rtrl"`` each step runs the core for T = 1 on the per-step RTRL path, so the
gradient of that step's loss reaches the parameters through the whole past of the stream
(the carried sensitivities), with no stored activations and no truncation. The parameters
change every ``update_every`` steps while the sensitivities carry on: RTRL's usual online
approximation (the sensitivities mix gradients taken under slightly older parameters).

Baselines: ``learning="tbptt"`` backpropagates each window of ``update_every`` steps
through that window only (the library's truncated BPTT, recomputed from the state at the
window's start), and ``core=None`` is a linear model of the current input.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor, nn

from rtrl_rl.agents.cores import Carry, make_core

ArrayLike = Union[Tensor, np.ndarray, Sequence[float], float]
OptimizerFactory = Callable[[list[nn.Parameter]], torch.optim.Optimizer]
OPTIMIZERS = ("adam", "sgd")


class OnlineLearner(nn.Module):
    """A recurrent core plus a linear readout, learned online from a stream of pairs.

    ``input_size`` d and ``output_size`` k: one step takes x of shape (d,) for one
    stream, or (streams, d), and predicts (k,) or (streams, k). ``core``: a name for
    :func:`rtrl_rl.make_core` ("elstm", "mingru", "lru", "rtu", ...; the dense "rnn", "gru",
    "lstm" learn by exact dense RTRL at small sizes), or
    None for a linear model y = A x + c. ``update_every`` k: parameters are updated
    after every k-th learning step from the mean of those k steps' gradients (for
    tbptt, k is the truncation window). ``optimizer``: "adam", "sgd" or a callable
    ``params -> torch.optim.Optimizer``; ``max_grad_norm`` clips each update.
    ``core_options`` go to :func:`rtrl_rl.make_core` (e.g. ``forget_bias``).
    """

    def __init__(self, input_size: int, output_size: int, core: Optional[str] = "elstm", hidden_size: int = 32,
                 *, learning: str = "rtrl", streams: int = 1, update_every: int = 1, lr: float = 1e-3,
                 optimizer: Union[str, OptimizerFactory] = "adam", max_grad_norm: Optional[float] = None,
                 dtype: torch.dtype = torch.float32, **core_options) -> None:
        super().__init__()
        for name, value in (("input_size", input_size), ("output_size", output_size), ("streams", streams),
                            ("update_every", update_every), ("hidden_size", hidden_size)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if learning not in ("rtrl", "tbptt"):
            raise ValueError(f"learning must be 'rtrl' or 'tbptt', got {learning!r}")
        if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise ValueError(f"dtype must be a floating torch dtype such as torch.float32, got {dtype!r}")
        self.input_size, self.output_size, self.streams = input_size, output_size, streams
        self.learning, self.update_every, self.max_grad_norm = learning, update_every, max_grad_norm
        if core is None:
            self.core, features = None, input_size
        else:
            self.core = make_core(core, input_size, hidden_size, learning=learning, **core_options)
            features = self.core.output_size
        self.readout = nn.Linear(features, output_size)
        self.to(dtype)
        self.optimizer = self._make_optimizer(optimizer, lr)
        self._pending = 0  # learning steps whose gradients wait in .grad
        self._window: list[tuple[Tensor, Tensor, Tensor]] = []  # tbptt: (x, target, reset) since the update
        self.reset()

    def _make_optimizer(self, optimizer: Union[str, OptimizerFactory], lr: float) -> torch.optim.Optimizer:
        params = list(self.parameters())
        if callable(optimizer):
            return optimizer(params)
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS} or a callable params -> Optimizer, got {optimizer!r}")
        return (torch.optim.Adam if optimizer == "adam" else torch.optim.SGD)(params, lr=lr)

    @property
    def dtype(self) -> torch.dtype:
        """The parameters' dtype (inputs are converted to it)."""
        return self.readout.weight.dtype

    def reset(self) -> None:
        """Forget every stream's past: zero state and sensitivities (a new stream starts)."""
        self.carry = self.core.initial_carry(self.streams) if self.core is not None else Carry()
        self._window_carry = self.carry.state() if self.core is not None else Carry()
        self._window.clear()

    def _as_batch(self, value: ArrayLike, size: int, what: str) -> tuple[Tensor, bool]:
        """value as a (streams, size) tensor of the learner's dtype; whether it came unbatched."""
        dtype = getattr(value, "dtype", None)
        floating = (dtype.is_floating_point if isinstance(dtype, torch.dtype)
                    else dtype is None or np.issubdtype(dtype, np.floating))
        if not floating or isinstance(value, bool):
            raise ValueError(f"{what} must hold floating-point numbers, got {dtype or type(value).__name__}")
        tensor = torch.as_tensor(value, dtype=self.dtype)
        single = self.streams == 1 and tensor.dim() <= 1
        batch = tensor.reshape(1, -1) if single else tensor
        if tuple(batch.shape) != (self.streams, size):
            expected = f"({size},) or (1, {size})" if self.streams == 1 else f"({self.streams}, {size})"
            raise ValueError(f"{what} must have shape {expected}, got {tuple(tensor.shape)}")
        if not torch.isfinite(batch).all():
            raise ValueError(f"{what} holds NaN or infinite values; one such step would corrupt the parameters")
        return batch, single

    def _reset_mask(self, reset: Union[bool, Sequence[bool], Tensor]) -> Tensor:
        """reset as a (streams,) bool tensor."""
        mask = torch.as_tensor(reset)
        if mask.dtype != torch.bool:
            raise ValueError(f"reset must be a bool or {self.streams} bools (True where a stream starts anew), "
                             f"got dtype {mask.dtype}")
        if mask.dim() == 0:
            mask = mask.expand(self.streams)
        if mask.shape != (self.streams,):
            raise ValueError(f"reset must be a bool or have shape ({self.streams},), got {tuple(mask.shape)}")
        return mask

    def _features(self, x: Tensor, reset: Tensor, carry: Carry) -> tuple[Tensor, Carry]:
        """Core features (T, B, f) for x (T, B, d) from ``carry``; the core is skipped when None."""
        if self.core is None:
            return x, carry
        return self.core(x, carry, reset)

    def predict(self, x: ArrayLike, reset: Union[bool, Sequence[bool], Tensor] = False) -> Tensor:
        """Advance the state by one step and return the prediction with its autograd graph.

        x: (d,) or (streams, d); ``reset`` True (per stream) forgets the past before this
        step. Returns (k,) or (streams, k). Follow with :meth:`learn` on a loss of it
        (e.g. a controller's loss through another model); ``learning="rtrl"`` only.
        """
        if self.learning != "rtrl":
            raise ValueError("predict/learn need learning='rtrl'; a tbptt learner learns through step(x, target)")
        batch, single = self._as_batch(x, self.input_size, "x")
        y = self._advance(batch, self._reset_mask(reset))
        return y[0] if single else y

    def _advance(self, batch: Tensor, reset: Tensor) -> Tensor:
        """One step of every stream with gradients: x (B, d), reset (B,) -> prediction (B, k)."""
        features, self.carry = self._features(batch.unsqueeze(0), reset.unsqueeze(0), self.carry)
        return self.readout(features[0])

    def learn(self, loss: Tensor) -> bool:
        """Add the gradient of ``loss`` (a scalar of the latest prediction) and, on every
        ``update_every``-th call, update the parameters from the mean gradient. Returns
        whether the parameters changed."""
        if not isinstance(loss, Tensor) or loss.dim() != 0 or not loss.requires_grad:
            raise ValueError("loss must be a scalar tensor computed from the latest prediction (with its graph)")
        (loss / self.update_every).backward()
        self._pending += 1
        return self._maybe_update()

    def _maybe_update(self) -> bool:
        if self._pending < self.update_every:
            return False
        if self.max_grad_norm is not None:
            nn.utils.clip_grad_norm_(self.parameters(), self.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self._pending = 0
        return True

    def step(self, x: ArrayLike, target: ArrayLike, reset: Union[bool, Sequence[bool], Tensor] = False) -> Tensor:
        """Predict from x, then learn from the squared error to ``target``.

        x: (d,) or (streams, d); target: (k,) or (streams, k), the value the prediction
        should have had. Returns the prediction made before learning (no graph), shaped
        like target. The loss is the mean squared error over streams and outputs.
        """
        batch, single = self._as_batch(x, self.input_size, "x")
        target_batch, _ = self._as_batch(target, self.output_size, "target")
        mask = self._reset_mask(reset)
        if self.learning == "rtrl":
            y = self._advance(batch, mask)
            self.learn(nn.functional.mse_loss(y, target_batch))
            y = y.detach()
        else:
            y = self._tbptt_step(batch, target_batch, mask)
        return y[0] if single else y

    def _tbptt_step(self, batch: Tensor, target: Tensor, reset: Tensor) -> Tensor:
        """Predict without gradients; at a window's end, recompute it with the gradient truncated at its start."""
        with torch.no_grad():
            y = self._advance(batch, reset)
        self._window.append((batch, target, reset))
        if len(self._window) == self.update_every:
            xs, targets, resets = (torch.stack(parts) for parts in zip(*self._window))
            features, _ = self._features(xs, resets, self._window_carry)
            nn.functional.mse_loss(self.readout(features), targets).backward()
            self._pending = self.update_every
            self._maybe_update()
            self._window.clear()
            self._window_carry = self.carry.state() if self.core is not None else Carry()
        return y
