"""Optimizer parameter groups: the cores' recurrent parameters at their own learning-rate scale.

``train.recurrent_lr_scale`` multiplies the learning rate of the parameters that set a core's
recurrence (the LRU's 0.5x of Orvieto et al. 2023 and Zucchet et al. 2023), which are, by name:

==========================  ================================================
core                        recurrent parameters
==========================  ================================================
lru, rtu, rtu_nonlinear     ``nu``, ``theta`` (λ) and ``gamma`` (the input gain)
elstm                       ``recurrent`` (the diagonal recurrent weights)
rnn, gru, lstm              ``weight_hh*``, ``bias_hh*`` (hidden-to-hidden)
mingru                      none (its recurrence is set by input gates only)
==========================  ================================================

With a scale of 1 the optimizer has one group over ``model.parameters()``, as it always had.
Otherwise group 0 holds every other parameter and group 1 the recurrent ones; each group
carries its ``lr_scale``. A checkpoint's optimizer state is moved between groupings by
parameter name (:func:`regroup_state`), so a run can resume with another scale.
"""

from __future__ import annotations

from torch import nn

#: parameter names (their last dotted part) that set a core's recurrence
RECURRENT_NAMES = ("nu", "theta", "gamma", "recurrent")
#: name prefixes of the dense cores' hidden-to-hidden parameters
RECURRENT_PREFIXES = ("weight_hh", "bias_hh")


def is_recurrent(name: str) -> bool:
    """Whether the parameter ``name`` of a model (e.g. ``core.layers.0.nu``) sets a core's recurrence."""
    parts = name.split(".")
    last = parts[-1]
    return parts[0] == "core" and (last in RECURRENT_NAMES or last.startswith(RECURRENT_PREFIXES))


def group_names(model: nn.Module, recurrent_lr_scale: float) -> list[list[str]]:
    """Parameter names per optimizer group, in ``model.named_parameters()`` order: one group
    when the scale is 1, else [the others, the recurrent ones] (the second may be empty)."""
    names = [name for name, _ in model.named_parameters()]
    if recurrent_lr_scale == 1.0:
        return [names]
    return [[n for n in names if not is_recurrent(n)], [n for n in names if is_recurrent(n)]]


def parameter_groups(model: nn.Module, recurrent_lr_scale: float) -> list[dict]:
    """The optimizer's param groups for ``model``: ``params`` and ``lr_scale`` each."""
    params = dict(model.named_parameters())
    names = group_names(model, recurrent_lr_scale)
    scales = [1.0] if len(names) == 1 else [1.0, recurrent_lr_scale]
    return [{"params": [params[n] for n in group], "lr_scale": s} for group, s in zip(names, scales)]


def regroup_state(state: dict, saved_names: list[list[str]], names: list[list[str]]) -> dict:
    """An optimizer ``state_dict`` saved with the groups ``saved_names`` rearranged for ``names``.

    Each parameter keeps its own state (e.g. Adam's moments) under its new index; every new
    group takes the settings of the saved group 0 (the config's values are applied after
    loading). Raises ValueError when the two groupings do not hold the same parameters.
    """
    flat_saved = [n for group in saved_names for n in group]
    flat_new = [n for group in names for n in group]
    if sorted(flat_saved) != sorted(flat_new):
        raise ValueError("the saved optimizer state is for other parameters than this model's "
                         f"({len(flat_saved)} saved, {len(flat_new)} here)")
    saved_index = {n: i for i, n in enumerate(flat_saved)}
    settings = {k: v for k, v in state["param_groups"][0].items() if k != "params"}
    groups, per_param, index = [], {}, 0
    for group in names:
        ids = []
        for name in group:
            old = saved_index[name]
            if old in state["state"]:
                per_param[index] = state["state"][old]
            ids.append(index)
            index += 1
        groups.append({**settings, "params": ids})
    return {"state": per_param, "param_groups": groups}
