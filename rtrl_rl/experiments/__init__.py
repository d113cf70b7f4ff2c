"""Experiments that turn the project's claims into measured evidence (``docs/results.md``).

- :mod:`rtrl_rl.experiments.memory`: the memory grid (tasks x lengths x learning rules x
  seeds), run in parallel processes, collected into one JSON file;
- :mod:`rtrl_rl.experiments.costs`: the cost benchmarks and the reference figures;
- :mod:`rtrl_rl.experiments.report`: tables, plots and ``results.md``, from the JSON only.
"""
