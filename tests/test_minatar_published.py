"""docs/results/minatar_published.json: every figure names its source and protocol, a missing
figure is null with a note that says so (no number without a source), and every source says what
was read to find or confirm its figures."""

import json
from pathlib import Path

PUBLISHED = Path(__file__).resolve().parents[1] / "docs" / "results" / "minatar_published.json"


def test_every_published_figure_has_a_source_and_a_protocol():
    data = json.loads(PUBLISHED.read_text())
    games = data["games"]
    assert games == ["Asterix", "Breakout", "Freeway", "Seaquest", "SpaceInvaders"]
    keys = [s["key"] for s in data["sources"]]
    assert len(keys) == len(set(keys)) and {"minatar-dqn", "minatar-ac-lambda", "stream-ac-lambda"} <= set(keys)
    for source in data["sources"]:
        assert source["source"] and source["where"] and source["protocol"] and source["method"] and source["checked"]
        assert sorted(source["values"]) == sorted(games)
        assert all(v is None or isinstance(v, (int, float)) for v in source["values"].values())
        assert isinstance(source["read_off_plot"], bool)
        assert source["frames"] is None or isinstance(source["frames"], int)
        if any(v is None for v in source["values"].values()):
            assert source["note"]  # says why a figure is missing
        if any(v is not None for v in source["values"].values()):
            assert source["frames"]  # a number is comparable only at its budget
