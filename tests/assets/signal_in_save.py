"""Run ``rtrl-rl train`` with a SIGINT sent to itself inside every ``torch.save``.

Usage: ``python tests/assets/signal_in_save.py ARGS...`` (the ``train`` arguments). The
first periodic checkpoint's signal stops the run; the final checkpoint then gets a second
SIGINT in the middle of its write, as a second Ctrl-C would. The final checkpoint and the
summary must come out whole.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # this checkout's rtrl_rl

import torch  # noqa: E402

from rtrl_rl.cli import main  # noqa: E402

_save = torch.save


def save_with_a_signal(*args, **kwargs):
    """torch.save, with a SIGINT delivered to this process as it starts writing."""
    print("torch.save with a SIGINT", flush=True)
    os.kill(os.getpid(), signal.SIGINT)
    return _save(*args, **kwargs)


torch.save = save_with_a_signal
sys.exit(main(["train", *sys.argv[1:]]))
