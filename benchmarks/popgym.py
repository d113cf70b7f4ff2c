"""``python -m benchmarks.popgym [--quick] [--peer] [--recall]``: the POPGym benchmark and its page.

The code lives in :mod:`rtrl_rl.experiments.popgym` (see :mod:`rtrl_rl.experiments.popgym_cli`).
"""

import sys

from rtrl_rl.experiments.popgym_cli import main

if __name__ == "__main__":
    sys.exit(main())
