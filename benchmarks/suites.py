"""``python -m benchmarks.suites``: short RTRL vs feed-forward runs on Atari and ProcGen.

The code lives in :mod:`rtrl_rl.experiments.suites`; this is its script entry point.
"""

import sys

from rtrl_rl.experiments.suites import main

if __name__ == "__main__":
    sys.exit(main())
