"""``python -m benchmarks.memory [--quick] [--out docs/results]``: the memory experiment and the report.

The code lives in :mod:`rtrl_rl.experiments` (see :mod:`rtrl_rl.experiments.cli`).
"""

import sys

from rtrl_rl.experiments.cli import main

if __name__ == "__main__":
    sys.exit(main())
