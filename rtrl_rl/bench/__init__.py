"""Benchmarks behind ``rtrl-rl bench``: one module per target (``envs``, ...)."""
