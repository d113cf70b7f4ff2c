"""The published POPGym figures: on the benchmark's tasks, in POPGym's return range, consistent,
and none marked checked without being read in the paper."""

from rtrl_rl.bench import popgym as pg
from rtrl_rl.bench.popgym_published import CHECKED, PUBLISHED, status


def test_published_figures_are_consistent():
    assert set(PUBLISHED) <= set(pg.TASKS) and set(CHECKED) <= set(PUBLISHED)
    for task, fig in PUBLISHED.items():
        assert -1.0 <= fig.gru <= fig.best <= 1.0, task
        assert fig.best_model in ("GRU", "tie") if fig.best == fig.gru else fig.best_model != "GRU"
    assert set(pg.TASKS) - set(PUBLISHED) == {"ConcentrationEasy", "VelocityOnlyCartpoleEasy", "MineSweeperEasy",
                                              "BattleshipEasy"}


def test_status_says_what_was_checked():
    assert status("CountRecallEasy") == "transcribed, not checked"
    assert status("MineSweeperEasy") == "no published figure"
