"""The sha256 digest that a checkpoint carries of its own contents.

``save_checkpoint`` stores ``payload["digest"]``: sha256 over every value of the payload
(tensor bytes with their dtype and shape, numbers, strings, the nesting), computed before
the file is written. ``load_checkpoint`` computes it again over what it read and refuses
a file whose contents no longer match: a flipped byte in a tensor loads without any
error from torch, and only this check tells. The digest lives inside the file it
checks, so it is written in the same atomic rename, holds for ``model.pt`` (a hard link
or a copy) and for a checkpoint copied elsewhere. Files written before digests existed
have none and load unchecked.
"""

from __future__ import annotations

import hashlib
from typing import Any

import torch

#: the payload key that holds the digest (hex); excluded from what it covers
DIGEST_KEY = "digest"


def _token(h: Any, tag: str, data: bytes) -> None:
    """Feed one tagged, length-prefixed item, so different nestings never hash alike."""
    h.update(f"{tag}:{len(data)}:".encode())
    h.update(data)


def _feed(h: Any, obj: Any) -> None:
    """Feed ``obj`` (the plain data a checkpoint may hold, see ``payload.to_plain``)."""
    if isinstance(obj, torch.Tensor):
        flat = obj.detach().cpu().contiguous().reshape(-1)
        _token(h, "tensor", f"{flat.dtype}{tuple(obj.shape)}".encode())
        h.update(flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b"")
    elif isinstance(obj, dict):  # OrderedDict too: pickling keeps the order
        _token(h, "dict", str(len(obj)).encode())
        for key, value in obj.items():
            _feed(h, key)
            _feed(h, value)
    elif isinstance(obj, (list, tuple)):  # torch.Size is a tuple
        _token(h, type(obj).__name__, str(len(obj)).encode())
        for value in obj:
            _feed(h, value)
    elif isinstance(obj, (set, frozenset)):
        _feed(h, sorted(obj, key=repr))
    elif isinstance(obj, bytes):
        _token(h, "bytes", obj)
    else:  # None, bool, int, float (repr is exact), complex, str, dtype, device
        _token(h, type(obj).__name__, repr(obj).encode())


def payload_digest(payload: dict) -> str:
    """sha256 (hex) of every entry of ``payload`` but the digest itself."""
    h = hashlib.sha256()
    _feed(h, {key: value for key, value in payload.items() if key != DIGEST_KEY})
    return h.hexdigest()


def seal(payload: dict) -> dict:
    """``payload`` with its digest added (a new dict; the values are shared)."""
    return {**payload, DIGEST_KEY: payload_digest(payload)}


def digest_problem(payload: dict) -> str | None:
    """Why ``payload`` does not match its stored digest, or None (it matches, or it has none)."""
    stored = payload.get(DIGEST_KEY)
    if stored is None:
        return None
    if not isinstance(stored, str):
        return f"its digest entry is a {type(stored).__name__}, not a sha256 hex string"
    actual = payload_digest(payload)
    if actual != stored:
        return f"its contents do not match the sha256 digest stored in it ({stored[:12]}... != {actual[:12]}...)"
    return None
