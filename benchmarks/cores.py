"""Core benchmark script: ``python -m benchmarks.cores [--device cuda] [--json FILE]``.

The same code as ``rtrl-rl bench cores`` (see :mod:`rtrl_rl.bench.cores`).
"""

import sys

from rtrl_rl.bench.cores import main

if __name__ == "__main__":
    sys.exit(main())
