"""The published POPGym figures: on the benchmark's tasks, in POPGym's return range, consistent,
and none marked checked without being read in the paper."""

from rtrl_rl.bench import popgym as pg
from rtrl_rl.bench import popgym_published
from rtrl_rl.bench.popgym_published import CHECKED, PUBLISHED, status


def test_published_figures_are_consistent():
    assert set(PUBLISHED) <= set(pg.TASKS) and set(CHECKED) <= set(PUBLISHED)
    assert all(isinstance(source, str) and source.strip() for source in CHECKED.values())  # names where it was read
    for task, fig in PUBLISHED.items():
        assert -1.0 <= fig.gru <= fig.best <= 1.0, task
        assert fig.best_model in ("GRU", "tie") if fig.best == fig.gru else fig.best_model != "GRU"
    assert set(pg.TASKS) - set(PUBLISHED) == {"ConcentrationEasy", "VelocityOnlyCartpoleEasy", "MineSweeperEasy",
                                              "BattleshipEasy"}


def test_status_says_what_was_checked():
    assert status("CountRecallEasy") == "transcribed, not checked"
    assert status("MineSweeperEasy") == "no published figure"


def test_a_task_is_checked_only_with_the_source_it_was_read_in(monkeypatch):
    monkeypatch.setattr(popgym_published, "CHECKED", {"CountRecallEasy": "the paper, Appendix B, Table 3"})
    assert status("CountRecallEasy") == "checked against the paper"
    assert status("RepeatFirstEasy") == "transcribed, not checked"
    assert status("MineSweeperEasy") == "no published figure"
