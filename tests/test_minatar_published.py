"""docs/results/minatar_published.json: every figure names its source and protocol, and a
missing figure is null with a note that says so (no number without a source)."""

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
        assert source["source"] and source["where"] and source["protocol"] and source["method"]
        assert sorted(source["values"]) == sorted(games)
        assert all(v is None or isinstance(v, (int, float)) for v in source["values"].values())
        assert isinstance(source["read_off_plot"], bool)
        if any(v is None for v in source["values"].values()):
            assert source["note"]  # says why a figure is missing
