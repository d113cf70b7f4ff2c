"""The ``lstm`` core under truncated BPTT: torch's fused LSTM kernel, the dense cores' names.

Its parameters are ``weight_ih`` (4n, d), ``weight_hh`` (4n, n), ``bias_ih`` and
``bias_hh`` (4n), gates (i, f, g, o), exactly as :class:`~rtrl_rl.agents.cores.dense.DenseLSTM`
names and uses them, so one state dict serves every learning rule of the ``lstm`` core
(tbptt here; rtrl, snap1, uoro and kfrtrl there). State dicts of earlier versions, which
stored ``torch.nn.LSTM``'s names (``lstm.weight_ih_l0``, ...), load too.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rtrl_rl.agents.cores.base import RecurrentCore
from rtrl_rl.agents.cores.carry import Carry

#: the shared parameter name -> torch.nn.LSTM's name for the same tensor (one layer)
TORCH_NAMES = {"weight_ih": "weight_ih_l0", "weight_hh": "weight_hh_l0", "bias_ih": "bias_ih_l0",
               "bias_hh": "bias_hh_l0"}


def accept_torch_names(module: nn.Module, state_dict: dict, prefix: str, *args) -> None:
    """A load-state-dict pre-hook: rename ``lstm.weight_ih_l0``-style keys (state dicts of
    earlier versions, whose tbptt lstm was a ``torch.nn.LSTM`` child) to the shared names."""
    for ours, theirs in TORCH_NAMES.items():
        old = f"{prefix}lstm.{theirs}"
        if old in state_dict and prefix + ours not in state_dict:
            state_dict[prefix + ours] = state_dict.pop(old)


class LSTM(RecurrentCore):
    """A one-layer LSTM core run by ``torch.nn.LSTM``'s kernel (cuDNN on GPU), with
    per-step episode resets; ``learning="tbptt"`` only.

    Exact RTRL and its approximations for this recurrence are
    :class:`~rtrl_rl.agents.cores.dense.DenseLSTM` (``make_core`` picks it for those rules);
    both have the same parameters. The forget-gate bias starts at ``forget_bias``
    (default 1.0, Jozefowicz et al. 2015).
    """

    name = "lstm"

    def __init__(self, input_size: int, hidden_size: int, learning: str = "tbptt", forget_bias: float = 1.0) -> None:
        if learning == "rtrl":
            raise ValueError("this lstm core runs torch's kernel and learns by tbptt only; "
                             "make_core('lstm', ..., learning='rtrl') builds exact dense RTRL (DenseLSTM)")
        super().__init__(input_size, hidden_size, learning)
        kernel = nn.LSTM(input_size, hidden_size)
        n = hidden_size
        with torch.no_grad():
            kernel.bias_ih_l0[n: 2 * n].fill_(forget_bias)
            kernel.bias_hh_l0[n: 2 * n].zero_()
        # The kernel runs on the very Parameter objects registered here under the shared names.
        # It is kept out of the module tree, so they are listed (and saved) once, under these names.
        for ours, theirs in TORCH_NAMES.items():
            setattr(self, ours, getattr(kernel, theirs))
        object.__setattr__(self, "kernel", kernel)
        self.register_load_state_dict_pre_hook(accept_torch_names)

    def _apply(self, fn, recurse: bool = True):
        # .to()/.cuda() change the parameters' data in place (the kernel sees them); cuDNN
        # then wants them in one buffer again, which nn.LSTM's own _apply would arrange.
        out = super()._apply(fn, recurse)
        self.kernel.flatten_parameters()
        return out

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        """Hidden and cell state, n each."""
        return {"h": (self.hidden_size,), "c": (self.hidden_size,)}

    def forward(self, x: Tensor, carry: Carry, reset: Tensor, truncate: bool = False) -> tuple[Tensor, Carry]:
        """Run T steps; the sequence is split where any stream resets (state zeroed there)."""
        self.validate(x, carry, reset)
        h, c = carry["h"].detach().unsqueeze(0), carry["c"].detach().unsqueeze(0)
        starts = [0] + [t for t in range(1, x.shape[0]) if bool(reset[t].any())]
        outputs = []
        for start, end in zip(starts, starts[1:] + [x.shape[0]]):
            keep = (~reset[start]).to(x.dtype).view(1, -1, 1)
            out, (h, c) = self.kernel(x[start:end], (h * keep, c * keep))
            outputs.append(out)
        y = torch.cat(outputs) if len(outputs) > 1 else outputs[0]
        return y, Carry({"h": h[0].detach(), "c": c[0].detach()})
