"""Per-stream order through the actor-learner runtime, also across an actor restart.

The learner's ``update`` is wrapped to record every segment it receives. The counter
environment writes ``[episode id, step]`` into each observation, so the test can check,
for every stream, that consecutive segments join up exactly (row T of one is row 0 of
the next) and that the step counter rises by one per step: no segment is reordered,
duplicated or lost. One environment crashes on purpose; with ``restart_actors`` its
actor is replaced, and the learner's carry for that actor's streams must be reset right
before their first fresh segment.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rtrl_rl.agents import Learner
from rtrl_rl.config import build_config
from rtrl_rl.runtime import train_with_actors

ASSET = Path(__file__).parent / "assets" / "runtime_envs.py"
T, STREAMS, UPDATES = 5, 4, 14


def counter_config(tmp_path: Path, **env_options):
    """A tiny run on the counter env with 2 actors (2 streams each), no evaluation."""
    return build_config(
        {"env": {"id": f"{ASSET}:CounterEnv"}},
        {
            "env": {"num_envs": STREAMS, "options": {"workers": 0, "length": 7, **env_options}},
            "agent": {"hidden_size": 8, "encoder_size": 8},
            "train": {"segment_length": T, "total_steps": T * STREAMS * UPDATES, "target_success": 0.0},
            "runtime": {"actors": 2, "checkpoint_every_s": 1e6},
            "log": {"progress": False, "tensorboard": False, "eval_episodes": 0},
            "run_dir": str(tmp_path / "run"),
        },
    )


@pytest.fixture
def learner_events(monkeypatch):
    """Record ("update", ids, obs, first) and ("reset", ids, carry_is_fresh) in call order."""
    events: list[tuple] = []
    update, reset = Learner.update, Learner.reset_carry

    def recording_update(self, segment, stream_ids):
        events.append(("update", stream_ids.tolist(), segment["obs"].clone(), segment["first"].clone()))
        return update(self, segment, stream_ids)

    def recording_reset(self, stream_ids=None):
        reset(self, stream_ids)
        ids = torch.as_tensor(stream_ids)
        fresh = self.model.initial_carry(len(ids))
        events.append(("reset", ids.tolist(), all(torch.equal(self.carry[ids][k], fresh[k]) for k in fresh)))

    monkeypatch.setattr(Learner, "update", recording_update)
    monkeypatch.setattr(Learner, "reset_carry", recording_reset)
    return events


def per_stream_segments(events: list[tuple]) -> dict[int, list[tuple]]:
    """stream id -> [(obs (T+1, 2), first (T+1,), reset_before)] in the learner's order."""
    streams: dict[int, list[tuple]] = {}
    resets: set[int] = set()
    for event in events:
        if event[0] == "reset":
            resets.update(event[1])
            continue
        _, ids, obs, first = event
        for column, stream in enumerate(ids):
            streams.setdefault(stream, []).append((obs[:, column], first[:, column], stream in resets))
            resets.discard(stream)
    return streams


def check_within(obs: torch.Tensor, first: torch.Tensor) -> None:
    """Inside a segment the counter rises by one per step, or restarts at an episode start."""
    for t in range(T):
        if first[t + 1]:
            assert obs[t + 1, 1] == 0
        else:
            assert obs[t + 1, 0] == obs[t, 0] and obs[t + 1, 1] == obs[t, 1] + 1


def test_every_stream_arrives_in_order_across_a_restart(tmp_path, learner_events):
    config = counter_config(tmp_path, crash_at=3 * T + 2, marker=str(tmp_path / "crashed"))
    config.runtime.restart_actors = True
    summary = train_with_actors(config)
    assert summary["stopped"] == "budget"
    assert (tmp_path / "crashed").exists(), "the env never crashed; the test proves nothing"

    streams = per_stream_segments(learner_events)
    assert sorted(streams) == list(range(STREAMS))
    restarted = set()
    for stream, segments in streams.items():
        assert segments[0][1][0], "a stream's first segment starts an episode"
        for (obs, first, _), (nxt_obs, nxt_first, reset_before) in zip(segments, segments[1:]):
            if reset_before:  # the actor was replaced: fresh episodes, carry reset
                assert nxt_first[0]
                restarted.add(stream)
            else:  # continuation: row T of a segment is row 0 of the next
                assert torch.equal(obs[T], nxt_obs[0]) and first[T] == nxt_first[0], f"stream {stream} broke"
        for obs, first, _ in segments:
            check_within(obs, first)
    # Exactly one actor (two consecutive streams) was replaced, and its carries were fresh.
    assert restarted in ({0, 1}, {2, 3})
    resets = [e for e in learner_events if e[0] == "reset"]
    assert len(resets) == 1 and set(resets[0][1]) == restarted and resets[0][2]
