"""torch.nn.LSTM as a baseline core, trained by truncated BPTT only."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rtrl_rl.agents.cores.base import RecurrentCore
from rtrl_rl.agents.cores.carry import Carry


class LSTM(RecurrentCore):
    """A one-layer ``nn.LSTM`` core (cuDNN on GPU) with per-step episode resets.

    Only ``learning="tbptt"``: exact RTRL for a dense recurrence keeps n³ sensitivities
    per stream, which is why this library's RTRL cores are element-wise. The forget-gate
    bias starts at ``forget_bias`` (default 1.0, Jozefowicz et al. 2015).
    """

    name = "lstm"

    def __init__(self, input_size: int, hidden_size: int, learning: str = "tbptt", forget_bias: float = 1.0) -> None:
        if learning == "rtrl":
            raise ValueError("the lstm core cannot learn by RTRL: its recurrence is dense (h_{t-1} feeds every "
                             "gate of every unit), so exact RTRL would keep O(n^3) sensitivities per stream; "
                             "use learning='tbptt', or an element-wise core ('elstm', 'mingru') for RTRL")
        super().__init__(input_size, hidden_size, learning)
        self.lstm = nn.LSTM(input_size, hidden_size)
        n = hidden_size
        with torch.no_grad():
            self.lstm.bias_ih_l0[n: 2 * n].fill_(forget_bias)
            self.lstm.bias_hh_l0[n: 2 * n].zero_()

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
            out, (h, c) = self.lstm(x[start:end], (h * keep, c * keep))
            outputs.append(out)
        y = torch.cat(outputs) if len(outputs) > 1 else outputs[0]
        return y, Carry({"h": h[0].detach(), "c": c[0].detach()})
