"""The runtime's parts on plain tensors: slots, batching order, parameter publication."""

from __future__ import annotations

import os
import queue
import time

import gymnasium as gym
import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from rtrl_rl.config import build_config
from rtrl_rl.runtime.actor import StopFlag
from rtrl_rl.runtime.batches import ERROR, SEGMENT, Batch, Batcher, OrderCheck, OrderError, gather
from rtrl_rl.runtime.params import SharedParams
from rtrl_rl.runtime.slots import ACTING, FREE, FULL, LEARNING, allocate_slots, slots_per_actor
from rtrl_rl.runtime.supervisor import Supervisor

OBS, ACT = gym.spaces.Box(0, 1, (3,)), gym.spaces.Discrete(2)


def test_slots_split_streams_evenly_and_live_in_shared_memory():
    pool = allocate_slots(OBS, ACT, length=4, num_streams=6, actors=3, slots_per_actor=2)
    assert pool.num_slots == 6 and pool.slots_of(1) == [2, 3]
    assert [s.tolist() for s in pool.streams] == [[0, 1], [2, 3], [4, 5]]
    assert pool.segments[0]["obs"].shape == (5, 2, 3) and pool.segments[0]["action"].shape == (4, 2)
    assert all(t.is_shared() for seg in pool.segments for t in seg.values()) and pool.meta.is_shared()
    pool.mark(2, ACTING)
    pool.mark(3, FULL, seq=7, version=2)
    assert pool.info(3)["seq"] == 7 and pool.info(3)["actor"] == 1
    assert pool.recoverable(1, on_the_way={3}) == [2]  # the full slot reached the learner's pending list
    with pytest.raises(ValueError, match="multiple of actors"):
        allocate_slots(OBS, ACT, length=4, num_streams=5, actors=2, slots_per_actor=2)
    assert slots_per_actor(0, 2) == 3 and slots_per_actor(0, 16) == 2 and slots_per_actor(12, 3) == 4


def test_batcher_takes_the_oldest_slot_of_every_actor():
    pipes = [mp.Pipe(duplex=False) for _ in range(2)]
    batcher = Batcher(num_actors=2)
    for actor, (reader, _) in enumerate(pipes):
        batcher.attach(actor, reader)
    for actor, slot in [(0, 10), (0, 11), (0, 12), (1, 20)]:  # actor 0 runs ahead
        pipes[actor][1].send((SEGMENT, slot, [f"ep{slot}"]))
    first = batcher.next(timeout=0.1)
    assert first.slots == [10, 20] and first.actors == [0, 1] and first.episodes == ["ep10", "ep20"]
    assert batcher.next(timeout=0.05) is None  # actor 1 has nothing pending
    pipes[1][1].send((SEGMENT, 21, []))
    assert batcher.next(timeout=0.1).slots == [11, 21]


def _send_and_exit(writer, slot: int) -> None:
    """Child process: hand over one slot, report a failure, and exit at once (like an actor)."""
    writer.send((SEGMENT, slot, []))
    writer.send((ERROR, f"traceback {slot}"))
    os._exit(1)


def test_an_actor_that_exits_right_after_sending_loses_nothing_and_blocks_no_one():
    # The runtime used one shared multiprocessing.Queue before. Probed on this machine, a
    # writer that put a message and then exited with os._exit lost the message in 2 of 150
    # tries, and with a second writer busy on the same queue it wedged the queue's lock for
    # that writer within 4 tries (a CI run hung that way after an actor restart). Pipes
    # per actor send synchronously and share no lock.
    ctx = mp.get_context("fork")  # a tiny child that never touches torch
    batcher = Batcher(num_actors=2)
    survivor_reader, survivor = ctx.Pipe(duplex=False)
    batcher.attach(1, survivor_reader)
    for attempt in range(30):
        reader, writer = ctx.Pipe(duplex=False)
        child = ctx.Process(target=_send_and_exit, args=(writer, attempt))
        child.start()
        writer.close()
        batcher.attach(0, reader)
        child.join(timeout=10)
        assert child.exitcode == 1
        assert batcher.report(0) == f"traceback {attempt}" and batcher.readers[0] is None
        survivor.send((SEGMENT, 100 + attempt, []))
        batch = batcher.next(timeout=5)
        assert batch is not None and batch.slots == [attempt, 100 + attempt]
    assert batcher.next(timeout=0.05) is None  # nothing left over, nothing duplicated


def _wait_for_stop(flag) -> None:
    deadline = time.monotonic() + 10
    while not flag.is_set():
        if time.monotonic() > deadline:
            os._exit(3)
        time.sleep(0.01)
    os._exit(0)


def test_stop_flag_reaches_another_process():
    flag = StopFlag()
    child = mp.get_context("fork").Process(target=_wait_for_stop, args=(flag,))
    child.start()
    time.sleep(0.1)
    assert child.is_alive() and not flag.is_set()
    flag.set()
    child.join(timeout=10)
    assert child.exitcode == 0


def test_gather_joins_slots_along_streams():
    pool = allocate_slots(OBS, ACT, length=2, num_streams=4, actors=2, slots_per_actor=1)
    pool.segments[1]["reward"].fill_(1.0)
    segment, ids = gather(pool, Batch(actors=[0, 1], slots=[0, 1], episodes=[]))
    assert ids.tolist() == [0, 1, 2, 3] and segment["obs"].shape == (3, 4, 3)
    assert segment["reward"][:, 2:].eq(1).all() and segment["reward"][:, :2].eq(0).all()
    assert pool.info(0)["state"] == LEARNING and pool.info(1)["state"] == LEARNING


def test_order_check_refuses_gaps_and_spots_restarts():
    order = OrderCheck(2)
    assert order.admit(0, 0, 0) is False and order.admit(0, 0, 1) is False
    with pytest.raises(OrderError, match="expected segment 2"):
        order.admit(0, 0, 3)
    assert order.admit(0, 1, 0) is True  # a restarted actor: its streams start afresh
    with pytest.raises(OrderError):
        order.admit(0, 0, 2)  # an older generation after a newer one
    with pytest.raises(OrderError):
        order.admit(1, 0, 1)  # the first segment must be number 0


def test_pull_loads_only_newer_versions():
    src, dst = nn.Linear(3, 2), nn.Linear(3, 2)
    params = SharedParams(src)
    assert params.publish(src) == 1
    assert params.pull(dst, have=-1) == 1 and torch.equal(dst.weight, src.weight)
    with torch.no_grad():
        src.weight.add_(1.0)
    assert params.pull(dst, have=1) == 1 and not torch.equal(dst.weight, src.weight)  # nothing new
    params.publish(src)
    assert params.pull(dst, have=1) == 2 and torch.equal(dst.weight, src.weight)


def _reader(params: SharedParams, seconds: float, results) -> None:
    """Child process: pull repeatedly; the model must always hold one whole version."""
    model, have, torn, checked = nn.Linear(256, 256), -1, 0, 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        have = params.pull(model, have)
        if have < 1:  # every attempt so far overlapped a publication: still the own init
            continue
        values = torch.cat([model.weight.detach().flatten(), model.bias.detach()])
        torn += int(not values.eq(values[0]).all() or values[0] != have)
        checked += 1
    results.put((have, torn, checked))


def test_a_reader_in_another_process_never_sees_a_torn_publication():
    # The learner publishes back to back (far more often than in a run) while the child
    # pulls: most copies overlap a publication, and none may be loaded half-written.
    model = nn.Linear(256, 256)
    params = SharedParams(model)
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(1.0)
    version = params.publish(model)
    child = ctx.Process(target=_reader, args=(params, 1.5, results), daemon=True)
    child.start()
    result = None
    while result is None:
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(float(version + 1))
        version = params.publish(model)
        try:
            result = results.get_nowait()
        except queue.Empty:
            assert child.is_alive() or not results.empty(), "the reader died"
    child.join(timeout=10)
    have, torn, checked = result
    assert torn == 0 and checked > 0 and have <= version


class _DeadProcess:
    """Stands in for an actor process that has exited."""

    exitcode = -9

    def join(self, timeout=None) -> None:
        pass


def test_a_restart_reclaims_full_slots_whose_index_was_never_sent(monkeypatch):
    # Actor 0 owns slots 0-2: slot 0 full and in the learner's pending list, slot 1 marked
    # full by an actor killed before it sent the index, slot 2 half written. Its
    # replacement must get slots 1 and 2 back (before, slot 1 was lost for good: two such
    # losses starve an actor with 2 slots), and slot 0 stays with the learner.
    config = build_config({"env": {"num_envs": 2}, "runtime": {"actors": 1, "restart_actors": True}})
    pool = allocate_slots(OBS, ACT, length=4, num_streams=2, actors=1, slots_per_actor=3)
    batcher = Batcher(num_actors=1)
    supervisor = Supervisor(config, pool, params=None, batcher=batcher)
    monkeypatch.setattr(supervisor, "_spawn", lambda actor: None)  # no real process
    supervisor.procs[0] = _DeadProcess()
    pool.mark(0, FULL, seq=0)
    pool.mark(1, FULL, seq=1)
    pool.mark(2, ACTING)
    batcher.pending[0].append((0, []))
    supervisor._restart(0)
    handed = sorted(supervisor.free[0].get(timeout=5) for _ in range(2))
    assert handed == [1, 2] and supervisor.free[0].empty()
    assert [pool.info(i)["state"] for i in range(3)] == [FULL, FREE, FREE]
    assert supervisor.generation[0] == 1
    for q in supervisor.free:
        q.cancel_join_thread()
        q.close()
