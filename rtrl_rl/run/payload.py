"""What a checkpoint holds: the payload of model, learner, counters, RNG states, config and
library versions, reduced to data that ``torch.load(weights_only=True)`` accepts.

Writing, retention and safe loading of the files are :mod:`rtrl_rl.run.checkpoint`'s.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import random
from collections import OrderedDict
from typing import Any

import numpy as np
import torch

#: marks a file as ours; anything else loaded from disk is "not a checkpoint"
FORMAT_NAME = "rtrl-rl-checkpoint"
#: bump when the payload layout changes incompatibly; readers refuse newer versions
FORMAT_VERSION = 1
#: keys every payload must hold (see :func:`make_payload`)
REQUIRED_KEYS = ("format", "format_version", "model", "step", "update", "rng", "config", "versions")


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, unsafe, not ours, or of an incompatible format."""


class UnreadableCheckpoint(CheckpointError):
    """A checkpoint file is damaged: truncated, corrupted (its digest no longer matches) or
    not a torch file. A resume may fall back to an older checkpoint of the run."""


def capture_rng() -> dict:
    """The global RNG states (python, numpy, torch, CUDA) as data ``weights_only`` accepts.

    numpy's state array becomes a list of ints: numpy arrays would need a pickle global
    that the safe loader (rightly) refuses.
    """
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    rng = {
        "python": random.getstate(),
        "numpy": {"kind": str(kind), "keys": keys.tolist(), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return rng


def restore_rng(payload: dict) -> None:
    """Set the global RNGs from ``payload["rng"]`` (or a bare RNG dict), so a resumed run
    samples what the original would have sampled next. CUDA states are restored only when
    the same number of devices is visible."""
    rng = payload.get("rng", payload)
    version, state, gauss = rng["python"]
    random.setstate((version, tuple(state), gauss))
    np_state = rng["numpy"]
    np.random.set_state((np_state["kind"], np.asarray(np_state["keys"], dtype=np.uint32),
                         np_state["pos"], np_state["has_gauss"], np_state["cached_gaussian"]))
    torch.set_rng_state(rng["torch"])
    cuda = rng.get("cuda")
    if cuda and torch.cuda.is_available() and torch.cuda.device_count() == len(cuda):
        torch.cuda.set_rng_state_all(cuda)


def library_versions() -> dict:
    """Versions of the package and the libraries that shape a checkpoint's meaning."""
    import gymnasium

    from rtrl_rl import __version__  # lazy: the package __init__ may import this module

    return {"rtrl_rl": __version__, "torch": str(torch.__version__), "numpy": np.__version__,
            "gymnasium": gymnasium.__version__, "python": platform.python_version()}


def _state(obj: Any) -> Any:
    """A module/optimizer/scheduler's state dict, or ``obj`` itself if it already is one."""
    return obj.state_dict() if hasattr(obj, "state_dict") else obj


def make_payload(model: Any, *, step: int, updates: int, config: Any, learner: Any = None,
                 optimizer: Any = None, scheduler: Any = None, extra: dict | None = None) -> dict:
    """Assemble a checkpoint payload (format version :data:`FORMAT_VERSION`).

    Each of ``model``, ``learner``, ``optimizer`` and ``scheduler`` may be an object with
    ``state_dict()`` or a state dict already. A learner's state holds its optimizer and
    scheduler, so callers with a learner leave those two out. ``config`` is a
    :class:`rtrl_rl.config.Config` or its plain dict. ``extra`` holds anything else to get
    back (tensors and plain data only). The RNG states are captured now. Keys: ``format``,
    ``format_version``, ``model``, ``learner``, ``optimizer``, ``scheduler``, ``step``,
    ``update``, ``rng``, ``config``, ``versions``, ``extra``.
    """
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        config = dataclasses.asdict(config)
    return {
        "format": FORMAT_NAME, "format_version": FORMAT_VERSION,
        "model": _state(model), "learner": _state(learner),
        "optimizer": _state(optimizer), "scheduler": _state(scheduler),
        "step": int(step), "update": int(updates), "rng": capture_rng(), "config": config,
        "versions": library_versions(), "extra": dict(extra or {}),
    }


def non_finite_entries(state: dict) -> list[str]:
    """``name (k NaN/inf of n)`` for every floating tensor of a state dict holding NaN or inf.

    No checkpoint may hold such parameters: they are refused when saved and when loaded.
    """
    bad = []
    for name, value in state.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not torch.isfinite(value).all():
            count = int((~torch.isfinite(value)).sum())
            bad.append(f"{name} ({count} NaN/inf of {value.numel()})")
    return bad


def describe_entries(names: list[str], shown: int = 3) -> str:
    """The first ``shown`` of ``names`` and how many more."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


_EXACT_LEAVES = (type(None), bool, int, float, complex, str, bytes)
_TORCH_LEAVES = (torch.Tensor, torch.Size, torch.dtype, torch.device)


def to_plain(obj: Any, where: str = "payload") -> Any:
    """Convert ``obj`` into data the safe loader accepts, or raise :class:`CheckpointError`.

    Saving is where a bad object must be caught: a checkpoint that holds, say, a custom
    class would be written fine and then refused at resume time. numpy arrays and scalars
    become tensors and Python numbers, paths become strings, dict subclasses plain dicts.
    """
    if type(obj) in _EXACT_LEAVES or isinstance(obj, _TORCH_LEAVES):
        return obj
    for base in (str, bytes, int, float):  # subclasses (torch's version string, enums) need
        if isinstance(obj, base):          # their class at load time: keep the plain value
            return base(obj)
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.array(obj))
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, dict):
        kind = OrderedDict if isinstance(obj, OrderedDict) else dict
        return kind((k, to_plain(v, f"{where}[{k!r}]")) for k, v in obj.items())
    if isinstance(obj, (list, tuple, set)):
        items = [to_plain(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        # namedtuples and other subclasses would need their class at load time
        return items if isinstance(obj, list) else set(items) if isinstance(obj, set) else tuple(items)
    raise CheckpointError(f"{where} is a {type(obj).__name__}, which a safe checkpoint cannot hold; "
                          "store tensors, numbers, strings, lists and dicts")
