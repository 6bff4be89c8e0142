"""Opening a memory rebuilds the index from the store, or loads a snapshot only when it provably matches."""

from __future__ import annotations

import shutil
import sqlite3

import pytest

from evokernel.memory import Memory, RetrievalSettings

SIM = RetrievalSettings(mode="similarity", n=3, epsilon=0.0, pool_factor=5.0)
VALUE = RetrievalSettings(mode="value", n=3, epsilon=0.3, pool_factor=5.0)


def _answer(mem, programs) -> list:
    out = []
    for name in ("softmax", "relu", "conv2d"):
        for settings in (SIM, VALUE):
            got = mem.retrieve(programs[name], "draft", "cpu", settings, seed=7)
            out.append([(r.item.id, round(r.similarity, 5), round(r.score, 5)) for r in got])
    return out


@pytest.fixture
def saved(tmp_path, make_item, programs):
    """A closed memory with items, Q values and reward statistics; its path and retrieval answer."""
    path = tmp_path / "m.sqlite"
    with Memory.open(path) as mem:
        ids = mem.add([make_item(n) for n in ("softmax", "log_softmax", "relu", "leaky_relu", "conv2d", "matmul")])
        mem.record_rewards(ids[:2], "draft", -1.0)
        mem.record_rewards(ids[2:4], "draft", 1.0)
        mem.normalize_reward("draft", 0.5)
        answer = _answer(mem, programs)
    return path, ids, answer


def test_rebuild_gives_the_same_answer(saved, programs) -> None:
    path, _, answer = saved
    with Memory.open(path, snapshot=False) as mem:
        assert mem.index_origin == "rebuilt"
        assert _answer(mem, programs) == answer
        assert mem.reward_stats("draft")[0] == 1


def test_matching_snapshot_is_used_and_agrees(saved, programs) -> None:
    path, _, answer = saved
    assert path.with_name(path.name + ".index").is_file()
    with Memory.open(path) as mem:
        assert mem.index_origin == "snapshot"
        assert _answer(mem, programs) == answer
        assert mem.reward_stats("draft")[0] == 1


def test_snapshot_stale_after_an_outside_write_is_ignored(saved, programs) -> None:
    path, ids, answer = saved
    raw = sqlite3.connect(path)  # e.g. the sqlite3 shell: the triggers still count the change
    raw.execute("UPDATE items SET q_draft = 0.95 WHERE id = ?", (ids[5],))  # matmul becomes valuable
    raw.commit()
    raw.close()
    with Memory.open(path) as mem:
        assert mem.index_origin == "rebuilt"
        fresh = _answer(mem, programs)
    assert fresh != answer  # the stale snapshot would have given the old answer
    with Memory.open(path, snapshot=False) as mem:
        assert _answer(mem, programs) == fresh


def test_swapped_or_damaged_snapshot_is_ignored(saved, make_item, programs) -> None:
    path, _, _ = saved
    snap = path.with_name(path.name + ".index")
    old = path.with_name("old.index")
    shutil.copy(snap, old)
    with Memory.open(path) as mem:
        (new_id,) = mem.add([make_item("softmax", lesson="a newer attempt")])
    shutil.copy(old, snap)  # an older snapshot file put back
    with Memory.open(path) as mem:
        assert mem.index_origin == "rebuilt"
        got = mem.retrieve(programs["softmax"], "draft", "cpu", SIM, exclude=[])
        assert new_id in [r.item.id for r in got]
    data = bytearray(snap.read_bytes())
    data[len(data) // 2] ^= 0xFF
    snap.write_bytes(bytes(data))
    with Memory.open(path) as mem:
        assert mem.index_origin == "rebuilt"
    snap.write_bytes(b"")
    with Memory.open(path) as mem:
        assert mem.index_origin == "rebuilt"


def test_no_snapshot_when_another_writer_intervened(saved, make_item, programs) -> None:
    path, ids, _ = saved
    a = Memory.open(path)
    b = Memory.open(path)  # another process, as far as the store can tell (same ids, other Q)
    q_b = b.record_rewards([ids[4]], "draft", 1.0)[ids[4]][1]  # a's index still holds the old Q
    b.close()  # b's snapshot holds b's changes
    (a_id,) = a.add([make_item("relu", lesson="written by a")])
    a.record_rewards([ids[5]], "draft", 1.0)
    a.close()  # must not save a snapshot from an index that missed b's writes
    with Memory.open(path) as mem:
        assert mem.index_origin == "rebuilt"
        assert mem.record_rewards([ids[4]], "draft", 0.0)[ids[4]][0] == pytest.approx(q_b)  # the index's Q
        got = mem.retrieve(programs["relu"], "draft", "cpu", SIM)
        assert a_id in [r.item.id for r in got]


def test_refresh_picks_up_another_writer(saved, make_item, programs) -> None:
    path, _, _ = saved
    with Memory.open(path) as a, Memory.open(path) as b:
        assert a.refresh() is False
        (b_id,) = b.add([make_item("matmul", lesson="written by b")])
        assert b_id not in [r.item.id for r in a.retrieve(programs["matmul"], "draft", "cpu", SIM)]
        assert a.refresh() is True
        assert b_id in [r.item.id for r in a.retrieve(programs["matmul"], "draft", "cpu", SIM)]
