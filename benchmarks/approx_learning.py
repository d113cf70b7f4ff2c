"""``python -m benchmarks.approx_learning [--quick] [--resume] [--report-only]``: learning with the approximations.

The same code as ``rtrl-rl bench approx-learning`` (see :mod:`rtrl_rl.bench.approx_learning`).
"""

import sys

from rtrl_rl.bench.approx_learning import main

if __name__ == "__main__":
    sys.exit(main())
