"""rtrl-rl: actor-critic agents whose recurrent core is trained by real-time recurrent learning.

The public face of the library. ``make_core`` builds a recurrent core (see
``docs/cores.md``); the agents live in ``rtrl_rl.agents``, the environments in
``rtrl_rl.envs``, the run configuration in ``rtrl_rl.config``, one run's directory and
checkpoints in ``rtrl_rl.run``, the trainers in ``rtrl_rl.training`` and
``rtrl_rl.runtime``, and the CLI in ``rtrl_rl.cli`` and ``rtrl_rl.commands`` (the layout:
``docs/contracts.md``).

The names below are imported on first use, not here: ``rtrl_rl.envs`` must stay importable
without torch (environment worker processes import it and nothing else).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {"make_core": "rtrl_rl.agents.cores", "available_cores": "rtrl_rl.agents.cores"}

__all__ = ["make_core", "available_cores", "__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rtrl_rl' has no attribute {name!r}")
