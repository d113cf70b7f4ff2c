"""Training in one process: the run builder, rollout collection, evaluation episodes, and
the synchronous and streaming trainers.

- :mod:`~rtrl_rl.training.run_builder`: one setup for every trainer
  (:func:`~rtrl_rl.training.run_builder.build_run`: run directory, spaces, model, learner,
  restored state, session) and one loop (:func:`~rtrl_rl.training.run_builder.drive`);
- :mod:`~rtrl_rl.training.rollout`: the segment layout and the
  :class:`~rtrl_rl.training.rollout.Collector` that fills it from a vectorised env;
- :mod:`~rtrl_rl.training.episodes`: greedy evaluation over fresh episodes;
- :mod:`~rtrl_rl.training.sync_trainer`: ``train``, the synchronous trainer (V-trace or PPO);
- :mod:`~rtrl_rl.training.stream_trainer`: ``train_stream``, stream AC(λ) (``agent.algorithm=stream``).

The actor-learner trainers (processes, Ray) are :mod:`rtrl_rl.runtime`; they build their
run with the same builder.
"""
