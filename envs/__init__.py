"""The world the agents live in: one vectorised interface over every suite.

``make_vector(spec, num_envs, seed, **options)`` returns a :class:`VectorEnv` whose
``reset``/``step`` give a :class:`StepBatch` (obs, reward, terminated, truncated, first,
life_lost, final_obs, episodes). Autoreset is same-step: after every step
``first == terminated | truncated``. numpy and gymnasium only; optional backends
(ale_py, procgen, deepmind_lab, popgym, minigrid) are imported when a suite needs them.
"""

from rtrl_rl.envs.make import make_vector
from rtrl_rl.envs.procgen_suite import procgen_split
from rtrl_rl.envs.spec import SUITES, SpecError, parse_spec
from rtrl_rl.envs.vector_env import EpisodeStats, StepBatch, VectorEnv, derive_seeds

#: the suites a spec may name (plus entry points ``package.module:Class`` / ``file.py:Class``)
available_suites = tuple(SUITES)

__all__ = ["make_vector", "VectorEnv", "StepBatch", "EpisodeStats", "SpecError",
           "available_suites", "derive_seeds", "parse_spec", "procgen_split"]
