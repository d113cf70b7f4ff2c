"""Dense recurrent cores (``rnn``, ``gru``, ``lstm``) with a choice of learning rule.

``learning``: "tbptt" (gradient truncated at the segment start), "rtrl" (exact dense RTRL,
small n only), "snap1", "uoro" or "kfrtrl" (rnn and lstm). Every rule but tbptt splits a
segment's gradient in two: inside the segment, ordinary autograd backpropagation (exact);
across the segment start, the gradient c_0 = dL/ds_0 that reaches the carried state meets
the rule's carried influence estimate M̂_0, c_0ᵀ M̂_0 (:class:`CarryTerm`). With the exact
influence this is exact RTRL (tested against full-stream BPTT); the approximations differ
only in M̂, updated per step in the forward pass (see ``docs/approximations.md``).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Optional

import torch
from torch import Tensor, nn

from rtrl_rl.agents.cores.base import RecurrentCore
from rtrl_rl.agents.cores.carry import Carry
from rtrl_rl.agents.cores.dense_cells import CELLS, DenseCell
from rtrl_rl.agents.cores.dense_rtrl import MAX_ELEMENTS, ExactRTRL, check_size
from rtrl_rl.agents.cores.influence import InfluenceRule, StepTerms
from rtrl_rl.agents.cores.kfrtrl import KFRTRL
from rtrl_rl.agents.cores.lstm import accept_torch_names
from rtrl_rl.agents.cores.snap import SnAp1
from rtrl_rl.agents.cores.uoro import UORO

#: learning rule name -> rule class (tbptt carries no influence)
RULES: dict[str, type[InfluenceRule]] = {"rtrl": ExactRTRL, "snap1": SnAp1, "uoro": UORO, "kfrtrl": KFRTRL}
DENSE_LEARNING = ("tbptt", *RULES)


class CarryTerm(torch.autograd.Function):
    """Identity on the segment's start state s_0 (B,K,n) whose backward adds the carried
    gradient c_0ᵀ M̂_0 to the gate parameters, given the rule's carry entries for M̂_0."""

    @staticmethod
    def forward(ctx: Any, core: "DenseCore", s0: Tensor, w_ih: Tensor, b_ih: Tensor, w_hh: Tensor, b_hh: Tensor,
                *entries: Tensor) -> Tensor:
        ctx.core, ctx.keys = core, list(core.rule.shapes())
        ctx.save_for_backward(*entries)
        return s0.clone()

    @staticmethod
    def backward(ctx: Any, c0: Tensor):
        core = ctx.core
        with torch.no_grad():
            flat = core.rule.carry_gradient(dict(zip(ctx.keys, ctx.saved_tensors)), c0)   # (G*n, m)
        return (None, c0, *core.split_gate_gradient(flat)) + (None,) * len(ctx.keys)


class DenseCore(RecurrentCore):
    """A dense core: parameters ``weight_ih`` (G*n, d), ``weight_hh`` (G*n, n), ``bias_ih``,
    ``bias_hh`` (G*n) as in PyTorch's cells; carry: the state parts (``h``; ``h``, ``c``),
    plus the rule's influence entries when learning by one.

    Options: ``forget_bias`` (lstm: forget gate; gru: update gate z, the kept fraction; rnn:
    unused), ``seed`` (the noise generator of uoro and kfrtrl: the same seed and calls give
    the same estimates), ``max_rtrl_elements`` (exact RTRL's size limit per stream).
    """

    name = "dense"
    cell: DenseCell

    def __init__(self, input_size: int, hidden_size: int, learning: str = "tbptt", forget_bias: float = 1.0,
                 seed: int = 0, max_rtrl_elements: int = MAX_ELEMENTS) -> None:
        if learning not in DENSE_LEARNING:
            raise ValueError(f"unknown learning mode {learning!r} for the {self.name} core; "
                             f"expected one of {DENSE_LEARNING}")
        super().__init__(input_size, hidden_size, "tbptt")
        self.learning = learning
        self.rule: Optional[InfluenceRule] = RULES[learning](self.cell, input_size, hidden_size) if learning in RULES else None
        if learning == "rtrl":
            check_size(self.name, math.prod(self.rule.shapes()["ds/dW"]), input_size, hidden_size, max_rtrl_elements)
        gn = self.cell.gates * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(gn, input_size))
        self.weight_hh = nn.Parameter(torch.empty(gn, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(gn))
        self.bias_hh = nn.Parameter(torch.empty(gn))
        self.forget_bias, self.seed = forget_bias, seed
        self._generator: Optional[torch.Generator] = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's U(±1/sqrt(n)); the lstm forget gate and gru update gate start at ``forget_bias``."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)
        if self.cell.name in ("lstm", "gru"):   # gate 1: lstm f, gru z
            n = self.hidden_size
            with torch.no_grad():
                self.bias_ih[n:2 * n].fill_(self.forget_bias)
                self.bias_hh[n:2 * n].zero_()

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        """One vector of n per state part."""
        return {part: (self.hidden_size,) for part in self.cell.parts}

    def sensitivity_shapes(self) -> dict[str, tuple[int, ...]]:
        """The rule's influence entries (none for tbptt)."""
        return self.rule.shapes() if self.rule is not None else {}

    def split_gate_gradient(self, flat: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(G*n, m) columns [W_ih | b_ih | W_hh | b_hh] -> gradients of weight_ih, bias_ih, weight_hh, bias_hh."""
        d, n = self.input_size, self.hidden_size
        return flat[:, :d], flat[:, d].contiguous(), flat[:, d + 1:d + 1 + n], flat[:, -1].contiguous()

    def noise_generator(self) -> Optional[torch.Generator]:
        """The CPU generator that feeds a random rule, seeded with ``seed`` when first used."""
        if self.rule is None or not self.rule.random:
            return None
        if self._generator is None:
            self._generator = torch.Generator().manual_seed(self.seed)
        return self._generator

    def reseed(self, seed: int) -> None:
        """Restart the noise stream from ``seed`` (independent draws: different seeds)."""
        self.seed, self._generator = seed, None

    def __getstate__(self) -> dict:
        # a torch.Generator does not pickle; an unpickled core restarts its stream from seed
        state = dict(self.__dict__)
        state["_generator"] = None
        return state

    def forward(self, x: Tensor, carry: Carry, reset: Tensor, truncate: bool = False) -> tuple[Tensor, Carry]:
        """Run T steps: x (T,B,d), reset (T,B) bool -> y = h (T,B,n), new carry.

        ``truncate``: see :meth:`RecurrentCore.validate` (a stack passes it to every layer)."""
        has_rule = self.validate(x, carry, reset, truncate)
        entries = {k: carry[k] for k in self.sensitivity_shapes()} if has_rule else {}
        s0 = torch.stack([carry[p] for p in self.cell.parts], 1).detach()
        if has_rule and torch.is_grad_enabled():
            s0 = CarryTerm.apply(self, s0, self.weight_ih, self.bias_ih, self.weight_hh, self.bias_hh,
                                 *entries.values())
        keep = (~reset).to(x.dtype)
        states, prevs, saved = self._sequence(x, s0, keep)
        new = Carry({p: states[-1][:, k].detach() for k, p in enumerate(self.cell.parts)})
        if has_rule:
            new.update(self._propagate(entries, x, prevs, saved, keep))
        return states[:, :, 0], new

    def _sequence(self, x: Tensor, s0: Tensor, keep: Tensor) -> tuple[Tensor, list[Tensor], list[Any]]:
        """The recurrence in autograd: states (T,B,K,n), the reset-masked previous states and
        the cell's saved values per step."""
        T, B, d = x.shape
        G, n = self.cell.gates, self.hidden_size
        p_all = torch.addmm(self.bias_ih, x.reshape(T * B, d), self.weight_ih.t()).view(T, B, G, n)
        # unbind, not p_all[t]: the backward of each indexing writes a zero tensor of p_all's
        # whole size, T of them per segment (quadratic in T: 30x per step at T = 1024 against 51)
        p_steps = p_all.unbind(0)
        s, states, prevs, saved = s0, [], [], []
        for t in range(T):
            prev = s * keep[t].view(B, 1, 1)
            q = torch.addmm(self.bias_hh, prev[:, 0], self.weight_hh.t()).view(B, G, n)
            s, values = self.cell.step(p_steps[t], q, prev)
            states.append(s)
            prevs.append(prev)
            saved.append(values)
        return torch.stack(states), prevs, saved

    @torch.no_grad()
    def _propagate(self, entries: dict[str, Tensor], x: Tensor, prevs: list[Tensor], saved: list[Any],
                   keep: Tensor) -> dict[str, Tensor]:
        """The rule's entries after the segment: per step, zeroed where the stream resets, then updated.

        The coefficients are element-wise, so they are computed for all T steps at once
        (streams and steps flattened into one batch); only the rule's recursion is per step.
        """
        T, B, d = x.shape
        w_hh, generator = self.weight_hh.detach(), self.noise_generator()
        prev = torch.stack(prevs).detach()                                   # (T, B, K, n)
        values = [torch.stack(v).flatten(0, 1) for v in zip(*saved)]          # the cell's values, (T*B, ...)
        dp, dq, e = self.cell.coefficients(values, prev.flatten(0, 1))
        shared = dq is dp   # the rules skip the second factor when the cell shares it
        dp, dq, e = (c.unflatten(0, (T, B)) for c in (dp, dq, e))
        ones = x.new_ones(T, B, 1)
        u = torch.cat([x.detach(), ones, prev[:, :, 0], ones], 2)             # (T, B, m)
        resets = (keep == 0).any(1).tolist()   # mask only the steps where some stream resets
        for t in range(T):
            if resets[t]:
                entries = {k: v * keep[t].view(B, *(1,) * (v.dim() - 1)) for k, v in entries.items()}
            terms = StepTerms(dp[t], dp[t] if shared else dq[t], e[t], u[t], w_hh, d)
            entries = self.rule.step(entries, terms, generator)
        return entries

    def reference_forward(self, x: Tensor, s0: Tensor | Mapping[str, Tensor], reset: Tensor) -> Tensor:
        """Plain autograd over a whole stream (the BPTT reference): y (T,B,n).

        ``s0``: the start state, a (B,n) tensor for one-part cells or a mapping part -> (B,n).
        """
        parts = [s0] if isinstance(s0, Tensor) else [s0[p] for p in self.cell.parts]
        states, _, _ = self._sequence(x, torch.stack(parts, 1), (~reset).to(x.dtype))
        return states[:, :, 0]


class DenseRNN(DenseCore):
    """tanh Elman RNN (``nn.RNNCell``)."""

    name, cell = "rnn", CELLS["rnn"]


class DenseGRU(DenseCore):
    """GRU (``nn.GRUCell``); kfrtrl is refused (see :mod:`rtrl_rl.agents.cores.kfrtrl`)."""

    name, cell = "gru", CELLS["gru"]


class DenseLSTM(DenseCore):
    """LSTM (``nn.LSTMCell``); ``make_core("lstm", learning="tbptt")`` gives the core that runs
    torch's fused kernel instead (:class:`~rtrl_rl.agents.cores.lstm.LSTM`), with the same
    parameters: a state dict of either loads into the other."""

    name, cell = "lstm", CELLS["lstm"]

    def __init__(self, input_size: int, hidden_size: int, **options: Any) -> None:
        super().__init__(input_size, hidden_size, **options)
        self.register_load_state_dict_pre_hook(accept_torch_names)
