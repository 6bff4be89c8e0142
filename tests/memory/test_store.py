"""The SQLite store on its own: field round trip, generation counter, errors users can cause."""

from __future__ import annotations

import dataclasses
import sqlite3

import numpy as np
import pytest

from evokernel.errors import UserError
from evokernel.memory.records import NewItem, RetrievalSettings
from evokernel.memory.store import Store, StoredRow


def _vec(seed: int, dim: int = 8) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(dim).astype(np.float32)


def test_every_field_round_trips(tmp_path, make_item) -> None:
    store = Store(tmp_path / "m.sqlite")
    parent = make_item("softmax", latency_ms=None, reward=None, run_id=None)
    (pid,) = store.insert([StoredRow(parent, _vec(0), created=123.5)])
    child = make_item(
        "softmax",
        stage="refine",
        code="@triton.jit\ndef k(): pass\n",
        lesson="tile by 128 ✓",
        outcome={"status": "incorrect", "trials": [{"max_abs": 0.5}], "nested": {"a": [1, 2]}},
        reward=-0.25,
        parent_id=pid,
        run_id="run-1",
        feasible=False,
        latency_ms=0.125,
        meta={"proposer": "offline", "block": 128},
        keywords=["softmax", "tiling"],
    )
    (cid,) = store.insert([StoredRow(child, _vec(1), q=(0.5, -0.25, 3, 2))])
    got = store.items_by_id([cid, pid])
    assert [g.id for g in got] == [cid, pid]
    for name in (f.name for f in dataclasses.fields(NewItem)):
        assert getattr(got[0], name) == getattr(child, name), name
        assert getattr(got[1], name) == getattr(parent, name), name
    assert (got[0].q_draft, got[0].q_refine, got[0].visits_draft, got[0].visits_refine) == (0.5, -0.25, 3, 2)
    assert got[1].created == 123.5 and got[0].created > 0
    np.testing.assert_array_equal(store.embeddings([cid])[cid], _vec(1))
    store.close()
    reopened = Store(tmp_path / "m.sqlite", create=False)
    assert reopened.items_by_id([cid])[0] == got[0]
    with pytest.raises(KeyError):
        reopened.items_by_id([999])
    reopened.close()


def test_generation_counts_every_change_even_from_outside(tmp_path, make_item) -> None:
    path = tmp_path / "m.sqlite"
    store = Store(path)
    g0 = store.generation()
    (i,) = store.insert([StoredRow(make_item(), _vec(0))])
    g1 = store.generation()
    store.set_q([i], "draft", [0.3], [1])
    g2 = store.generation()
    store.set_reward_stats("refine", 3, 0.1, 0.2)
    g3 = store.generation()
    assert g0 < g1 < g2 < g3
    store.set_meta("note", {"x": 1})  # meta and runs do not touch the index
    store.add_run("r", {"seed": 1})
    assert store.generation() == g3
    raw = sqlite3.connect(path)
    raw.execute("UPDATE items SET lesson = 'edited by hand'")
    raw.commit()
    raw.close()
    assert store.generation() > g3
    store.close()


def test_delete_orphans_children_and_drops_unused_sources(tmp_path, make_item) -> None:
    store = Store(tmp_path / "m.sqlite")
    (p,) = store.insert([StoredRow(make_item("relu"), _vec(0))])
    (c,) = store.insert([StoredRow(make_item("relu", parent_id=p, stage="refine"), _vec(1))])
    (o,) = store.insert([StoredRow(make_item("softmax"), _vec(2))])
    assert store.delete([p]) == 1
    assert store.items_by_id([c])[0].parent_id is None
    store.delete([o])
    with store.read() as conn:
        assert conn.execute("SELECT COUNT(*) FROM sources").fetchone()[0] == 1
    assert store.integrity_check() == "ok"
    store.close()


def test_unknown_parent_is_a_user_error(tmp_path, make_item) -> None:
    store = Store(tmp_path / "m.sqlite")
    with pytest.raises(UserError, match="parent item 42"):
        store.insert([StoredRow(make_item(parent_id=42), _vec(0))])
    assert store.count() == 0
    store.close()


def test_reward_stats_and_runs_persist(tmp_path) -> None:
    path = tmp_path / "m.sqlite"
    store = Store(path)
    store.set_reward_stats("draft", 5, 0.25, 0.5)
    store.add_run("run-a", {"model": "m"}, started=10.0)
    store.end_run("run-a", {"solved": 3})
    with pytest.raises(KeyError):
        store.end_run("nope", {})
    store.close()
    store = Store(path, create=False)
    assert store.reward_stats() == {"draft": (5, 0.25, 0.5)}
    (run,) = store.runs()
    assert run["id"] == "run-a" and run["config"] == {"model": "m"} and run["summary"] == {"solved": 3}
    store.close()


@pytest.mark.parametrize(
    "content, match",
    [
        (b"\x00garbage bytes, not a database" * 64, "not a readable EvoKernel memory"),
        (None, "not a readable EvoKernel memory"),  # a valid SQLite file of something else
    ],
)
def test_files_that_are_not_memories(tmp_path, content, match) -> None:
    path = tmp_path / "other.sqlite"
    if content is None:
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE t (x)")
        conn.commit()
        conn.close()
    else:
        path.write_bytes(content)
    with pytest.raises(UserError, match=match) as info:
        Store(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_missing_file_and_directory(tmp_path) -> None:
    with pytest.raises(UserError, match="no memory here"):
        Store(tmp_path / "absent.sqlite", create=False)
    with pytest.raises(UserError, match="is a directory"):
        Store(tmp_path)
    created = Store(tmp_path / "deep" / "er" / "m.sqlite")  # parents created
    assert created.count() == 0
    created.close()


def test_invalid_items_and_settings_are_user_errors(tmp_path, make_item) -> None:
    store = Store(tmp_path / "m.sqlite")
    for bad in (dict(kind="note"), dict(backend="tpu"), dict(stage="polish"), dict(backend="any"), dict(task_id="")):
        with pytest.raises(UserError):
            store.insert([StoredRow(make_item(**bad), _vec(0))])
    with pytest.raises(UserError, match="JSON"):
        store.insert([StoredRow(make_item(outcome={"x": object()}), _vec(0))])
    assert store.count() == 0
    store.close()
    with pytest.raises(UserError):
        RetrievalSettings(mode="random")
    with pytest.raises(UserError):
        RetrievalSettings(epsilon=2.0)
    assert RetrievalSettings().grown(20.0) == 30.0 and RetrievalSettings().grown(3.0) == 4.5
