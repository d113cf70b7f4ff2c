"""Both sensitivity layouts of agents.cores.scan (stream by stream, whole batch) are exact.

Which one runs depends on the per-stream block size; the other tests use small cores and
so the whole-batch ops. Here the threshold is forced both ways."""

import pytest
import torch

from rtrl_rl.agents.cores import elementwise_cores, scan
from rtrl_rl.agents.cores.verification import run_protocol


@pytest.mark.parametrize("core", elementwise_cores())
@pytest.mark.parametrize("path", ["segment", "step"])
@pytest.mark.parametrize("threshold", [0, 1 << 40])
def test_protocol_in_both_layouts(monkeypatch, core, path, threshold):
    monkeypatch.setattr(scan, "PER_STREAM_MIN_BLOCK", threshold)
    streamwise = scan.per_stream(torch.zeros(3, 10, 4))
    assert streamwise == (threshold == 0)
    report = run_protocol(core, segments=4, length=3 if path == "segment" else 1, batch=3,
                          input_size=4, hidden_size=5, rtrl_path=path, seed=11)
    assert report.max_error < 1e-10, report
    assert report.reset_effect > 1e-3


def test_only_the_cpu_loops_over_streams():
    big = (2, 2, scan.PER_STREAM_MIN_BLOCK)
    assert scan.per_stream(torch.zeros(big))
    assert not scan.per_stream(torch.zeros(big, device="meta"))  # any non-CPU device: batched ops
