"""The experiments and benchmarks behind ``rtrl-rl bench NAME`` (``docs/experiments.md``).

An experiment with a result page is ``NAME.py`` (its grid, its cell, its command) and
``NAME_page.py`` (its page, from its results JSON alone), on the shared ``grid``, ``pool``,
``driver``, ``record``, ``page`` and ``charts`` modules.
"""
