"""``python -m benchmarks.envs SPEC --num-envs N``: the same code as ``rtrl-rl bench envs``."""

import sys

from rtrl_rl.bench.envs import main

if __name__ == "__main__":
    sys.exit(main())
