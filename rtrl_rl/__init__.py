"""rtrl-rl: actor-critic agents whose element-wise recurrent core is trained by exact RTRL.

The public face of the library. ``make_core`` builds a recurrent core (see
``docs/cores.md``); the trainer, evaluation and CLI live in the sub-modules.
"""

from agents.cores import available_cores, make_core

__version__ = "0.1.0"

__all__ = ["make_core", "available_cores", "__version__"]
