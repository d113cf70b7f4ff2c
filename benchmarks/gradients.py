"""Gradient benchmark script: ``python -m benchmarks.gradients [--quick] [--json FILE] [--doc FILE]``.

The same code as ``rtrl-rl bench gradients`` (see :mod:`rtrl_rl.bench.gradients`).
"""

import sys

from rtrl_rl.bench.gradients_report import main

if __name__ == "__main__":
    sys.exit(main())
