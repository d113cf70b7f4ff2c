"""Allow ``python -m rtrl_rl`` as an alias of the ``rtrl-rl`` console script."""

import sys

from rtrl_rl.cli import main

sys.exit(main())
