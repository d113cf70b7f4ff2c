"""Which functions and classes a raw pickle names, found without unpickling it.

torch's restricted loader names the first forbidden global it meets in a pickle of
protocol 2 or lower (``torch.save``'s). A pickle of protocol 4 or 5, Python's default, stops
it earlier, at an opcode it does not parse, so a malicious file would pass for merely
unreadable. :func:`named_globals` walks the opcodes with :mod:`pickletools`, which only
decodes them and never calls anything, and lists the globals they name: the way a pickle
runs code when it is loaded.
"""

from __future__ import annotations

import pickletools
from pathlib import Path

#: globals a torch file names for its own tensors and containers (not code a user wrote)
TORCH_OWN = ("torch.", "collections.OrderedDict")
#: opcodes that push a string (a later STACK_GLOBAL reads module and name from two of them)
_STRINGS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "STRING", "BINSTRING",
            "SHORT_BINSTRING"}
_PUTS = {"PUT", "BINPUT", "LONG_BINPUT"}
_GETS = {"GET", "BINGET", "LONG_BINGET"}


def _globals_of(data: bytes) -> list[str]:
    """``module.name`` of each global in the pickle stream ``data`` (up to where it stops parsing).

    STACK_GLOBAL takes module and name from the stack: the two items pushed last, which are
    strings or memo entries fetched again (the memo and pushes are followed for strings only;
    enough to name what a pickle would call).
    """
    found: list[str] = []
    pushed: list[str | None] = [None, None]  # the items pushed last: a string, or None for anything else
    memo: dict[int, str | None] = {}
    try:
        for op, arg, _ in pickletools.genops(data):
            name = op.name
            if name in ("GLOBAL", "INST"):
                found.append(".".join(str(arg).split(" ", 1)))
            elif name == "STACK_GLOBAL":
                module, qualname = pushed[-2:]
                found.append(f"{module}.{qualname}" if module and qualname else "a global")
            if name in _STRINGS:
                pushed.append(arg if isinstance(arg, str) else arg.decode("latin-1"))
            elif name == "MEMOIZE":
                memo[len(memo)] = pushed[-1]
            elif name in _PUTS:
                memo[int(arg)] = pushed[-1]
            elif name in _GETS:
                pushed.append(memo.get(int(arg)))
            else:
                pushed.append(None)
            del pushed[:-2]
    except (ValueError, EOFError, IndexError, TypeError):
        pass  # not (or no longer) a pickle: what was read so far is the answer
    return found


def named_globals(path: str | Path, limit: int = 64 << 20) -> list[str]:
    """The globals that the pickle in ``path`` names, other than torch's own (:data:`TORCH_OWN`).

    Reads at most ``limit`` bytes. A file that is no pickle, or a zip archive (the torch
    format, whose pickle the restricted loader checks itself), gives an empty list.
    """
    with open(path, "rb") as f:
        data = f.read(limit)
    if data[:2] == b"PK":
        return []
    return [g for g in _globals_of(data) if not g.startswith(TORCH_OWN)]
