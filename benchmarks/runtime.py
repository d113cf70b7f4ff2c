"""``python -m benchmarks.runtime``: the same code as ``rtrl-rl bench runtime``."""

import sys

from rtrl_rl.bench.runtime import main

if __name__ == "__main__":
    sys.exit(main())
