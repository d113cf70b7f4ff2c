"""The run layer: one training run's directory, lifetime and files, whichever trainer runs it.

- :mod:`~rtrl_rl.run.layout`: the run-directory layout (:class:`~rtrl_rl.run.layout.RunPaths`),
  the one place that names its files;
- :mod:`~rtrl_rl.run.session`: :class:`~rtrl_rl.run.session.RunSession`, the bookkeeping
  around every trainer's loop (config, logs, checkpoints, evaluation, summary);
- :mod:`~rtrl_rl.run.stopping`: signals and hung environments become a clean stop;
- :mod:`~rtrl_rl.run.monitor` and :mod:`~rtrl_rl.run.tensorboard_log`: what a run shows
  while it trains (the progress line, TensorBoard event files);
- :mod:`~rtrl_rl.run.checkpoint`, :mod:`~rtrl_rl.run.payload`, :mod:`~rtrl_rl.run.digest`,
  :mod:`~rtrl_rl.run.pickle_scan`: checkpoint files, what they hold, their digest, and the
  safe reading of a raw pickle;
- :mod:`~rtrl_rl.run.resume_point`, :mod:`~rtrl_rl.run.resume`, :mod:`~rtrl_rl.run.trust`:
  which checkpoint a resume continues from, restoring it, and whether a stored config may
  import the code it names.

It builds on :mod:`rtrl_rl.config` and never imports a trainer (:mod:`rtrl_rl.training`,
:mod:`rtrl_rl.runtime`).
"""
