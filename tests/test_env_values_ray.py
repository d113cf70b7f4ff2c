"""Values from environments on the Ray backend: a NaN from a Ray actor's environment stops the
run as it does in every runtime (the other runtimes: ``test_env_values.py``).

The runs find one local Ray instance running (the module fixture of ``test_runtime_ray.py``).
"""

from __future__ import annotations

import pytest

from rtrl_rl.cli import main
from test_env_values import assert_stopped_before_it, options, run_args
from test_runtime_ray import needs_ray, ray_instance  # noqa: F401  (the module's local Ray instance)


@needs_ray
@pytest.mark.parametrize("field, restart", [("reward", "false"), ("obs", "true")])
def test_a_ray_actor_stops_the_run_and_is_not_restarted(ray_instance, tmp_path, capsys, field, restart):
    more = ("runtime.backend=ray", "runtime.actors=2", f"runtime.restart_actors={restart}",
            options(3, field, ".nan", 13, actors=2))
    assert main(run_args(tmp_path, *more)) == 1
    err = capsys.readouterr().err
    assert_stopped_before_it(tmp_path, err, 3, 13, f"returned a non-finite {'reward' if field == 'reward' else 'obs'}")
    assert "(actor 1, step 3 of its episode)" in err and "restarted actor" not in err
