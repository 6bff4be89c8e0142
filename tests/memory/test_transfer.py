"""Export/import (JSON Lines), merge, drop_tasks and prune."""

from __future__ import annotations

import dataclasses
import json
import sqlite3

import pytest

from evokernel.errors import UserError
from evokernel.memory import NewItem, RetrievalSettings

CONTENT = [f.name for f in dataclasses.fields(NewItem) if f.name != "parent_id"]
SIM = RetrievalSettings(mode="similarity", n=10, epsilon=0.0, pool_factor=5.0)


@pytest.fixture
def source(open_memory, make_item, make_note):
    """A memory with a parent chain, Q values, knowledge, reward statistics and a run."""
    mem = open_memory("source.sqlite")
    run = mem.begin_run({"model": "offline"})
    p, s, c = mem.add([make_item("relu", run_id=run), make_item("softmax"), make_item("conv2d", feasible=False)])
    (k1,) = mem.add([make_item("relu", stage="refine", parent_id=p, latency_ms=0.2, meta={"block": 64})])
    (k2,) = mem.add([make_item("relu", stage="refine", parent_id=k1, feasible=False, reward=-1.0)])
    (note,) = mem.add([make_note("Online softmax", "subtract the row max", keywords=["softmax"])])
    mem.record_rewards([p, s], "draft", 1.0)
    mem.record_rewards([c], "draft", -1.0)
    mem.record_rewards([p, k1], "refine", 0.5)
    mem.normalize_reward("refine", 0.3)
    mem.end_run(run, {"ok": True})
    return mem, dict(p=p, s=s, c=c, k1=k1, k2=k2, note=note)


def _by_content(mem) -> dict[tuple, object]:
    return {(i.kind, i.task_id, i.stage, i.lesson, i.code, i.feasible, i.created): i for i in mem.items()}


def _same_items(a, b) -> None:
    left, right = _by_content(a), _by_content(b)
    assert left.keys() == right.keys()
    for key, x in left.items():
        y = right[key]
        for name in CONTENT + ["q_draft", "q_refine", "visits_draft", "visits_refine"]:
            assert getattr(x, name) == getattr(y, name), name
        if x.parent_id is None:
            assert y.parent_id is None
        else:  # parents follow their remapped ids
            px, py = a.get(x.parent_id), b.get(y.parent_id)
            assert (px.lesson, px.code, px.created) == (py.lesson, py.code, py.created)


def test_export_import_round_trip(tmp_path, source, open_memory, programs) -> None:
    mem, ids = source
    out = tmp_path / "export.jsonl"
    assert mem.export_jsonl(out) == 6
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[0]["type"] == "header" and lines[0]["embedder"]["name"] == "structural-v1"
    assert sum(rec["type"] == "source" for rec in lines) == 3  # each program once
    target = open_memory("target.sqlite")
    assert target.import_jsonl(out) == 6
    _same_items(mem, target)
    assert target.reward_stats("refine") == pytest.approx(mem.reward_stats("refine"))
    assert [r["id"] for r in target.runs()] == [r["id"] for r in mem.runs()]
    got_a = [(r.item.lesson, round(r.similarity, 5)) for r in mem.retrieve(programs["relu"], "draft", "cpu", SIM)]
    got_b = [(r.item.lesson, round(r.similarity, 5)) for r in target.retrieve(programs["relu"], "draft", "cpu", SIM)]
    assert got_a == got_b
    assert target.import_jsonl(out) == 0  # the same items again are recognized, not duplicated
    assert len(target) == 6


def test_import_with_another_embedder_re_embeds(tmp_path, source, open_memory, toy_embedder, programs) -> None:
    mem, _ = source
    out = tmp_path / "export.jsonl"
    mem.export_jsonl(out)
    target = open_memory("toy.sqlite", embedder=toy_embedder)
    assert target.import_jsonl(out) == 6
    assert toy_embedder.calls >= 4  # three programs and one note were embedded again
    _same_items(mem, target)
    got = target.retrieve(programs["relu"], "draft", "cpu", SIM)
    assert got[0].item.task_id == "level1/relu" and got[0].similarity == pytest.approx(1.0, abs=1e-5)


def test_export_filters_tasks(tmp_path, source, open_memory) -> None:
    mem, _ = source
    only = tmp_path / "relu.jsonl"
    assert mem.export_jsonl(only, task_ids=["level1/relu"]) == 3
    held_out = tmp_path / "held_out.jsonl"
    assert mem.export_jsonl(held_out, exclude_task_ids=["level1/relu"]) == 3  # softmax, conv2d, the note
    target = open_memory("t.sqlite")
    target.import_jsonl(only)
    assert {i.task_id for i in target.items()} == {"level1/relu"}
    assert [i.parent_id is None for i in target.items()] == [True, False, False]


def test_drop_tasks_removes_only_that_task(source, programs) -> None:
    mem, ids = source
    assert mem.drop_tasks(["level1/relu", "level1/nothing"]) == 3
    assert {i.task_id for i in mem.items()} == {"level1/softmax", "level1/conv2d", ""}
    got = mem.retrieve(programs["relu"], "draft", "cpu", SIM)
    assert {r.item.task_id for r in got} == {"level1/softmax", "level1/conv2d"}
    assert mem.get(ids["s"]).q_draft == pytest.approx(0.2)
    assert mem.drop_tasks([]) == 0


def test_merge_remaps_ids_and_keeps_parents(tmp_path, source, open_memory, make_item) -> None:
    mem, ids = source
    mem.close()
    other = open_memory("other.sqlite")
    (own,) = other.add([make_item("matmul")])
    assert other.merge(tmp_path / "source.sqlite") == 6
    assert len(other) == 7
    reopened = open_memory("source.sqlite")
    _same_items(reopened, _Only(other, exclude=own))
    k2 = next(i for i in other.items() if i.parent_id is not None and not i.feasible)
    k1 = other.get(k2.parent_id)
    assert k1.stage == "refine" and other.get(k1.parent_id).stage == "draft"
    assert other.merge(tmp_path / "source.sqlite") == 0
    with pytest.raises(UserError, match="itself"):
        other.merge(tmp_path / "other.sqlite")
    with pytest.raises(UserError, match="no memory here"):
        other.merge(tmp_path / "missing.sqlite")


class _Only:
    """A view of a memory without one item (for comparing a merge against its source)."""

    def __init__(self, mem, exclude: int) -> None:
        self.mem, self.exclude = mem, exclude

    def items(self):
        return [i for i in self.mem.items() if i.id != self.exclude]

    def get(self, item_id: int):
        return self.mem.get(item_id)


def test_prune_rules(tmp_path, source) -> None:
    mem, ids = source
    with pytest.raises(UserError, match="at least one rule"):
        mem.prune()
    assert mem.prune(q_below=-0.1, dry_run=True) == 1
    assert mem.prune(q_below=-0.1) == 1  # conv2d's failed draft
    assert ids["c"] not in {i.id for i in mem.items()}
    assert mem.prune(q_below=0.3, stage="refine", task_ids=["level1/softmax"]) == 1  # both rules hold
    assert mem.prune(older_than_days=1.0) == 0  # everything is new
    raw = sqlite3.connect(tmp_path / "source.sqlite")
    raw.execute("UPDATE items SET created = created - 10 * 86400 WHERE id IN (?, ?)", (ids["k2"], ids["note"]))
    raw.commit()
    raw.close()
    mem.refresh()
    assert mem.prune(older_than_days=5.0) == 1  # the old note is knowledge: kept
    assert mem.prune(older_than_days=5.0, include_knowledge=True) == 1
    assert {i.id for i in mem.items()} == {ids["p"], ids["k1"]}
    assert mem.get(ids["k1"]).parent_id == ids["p"]


@pytest.mark.parametrize(
    "text, match",
    [
        ('{"type": "item"}\n', "not an EvoKernel memory export"),
        ('{"type": "header", "format": "evokernel-memory-jsonl", "version": 1}\n{"type": "item", "id": 1}\n', ":2:"),
        ('{"type": "header", "format": "evokernel-memory-jsonl", "version": 1}\nnot json\n', ":2: malformed"),
        ('{"type": "header", "format": "evokernel-memory-jsonl", "version": 9}\n', "newer"),
        ('{"type": "header", "format": "evokernel-memory-jsonl", "version": Infinity}\n', ":1: malformed record"),
    ],
)
def test_bad_exports_are_user_errors(tmp_path, open_memory, text, match) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(text)
    mem = open_memory()
    with pytest.raises(UserError, match=match):
        mem.import_jsonl(bad)
    with pytest.raises(UserError, match="no such export file"):
        mem.import_jsonl(tmp_path / "missing.jsonl")
    assert len(mem) == 0


_HEADER = '{"type": "header", "format": "evokernel-memory-jsonl", "version": 1}\n'
_STATS = '{"type": "header", "format": "evokernel-memory-jsonl", "version": 1, "reward_stats": %s}\n'
_ITEM = ('{"type": "item", "id": 1, "kind": "experience", "task_id": "t", "backend": "cpu", "stage": "draft", '
         '"code": "x", %s}\n')


@pytest.mark.parametrize(
    "text, match",
    [
        ("", "bad.jsonl: not an EvoKernel memory export"),  # empty: the same error as a header-less file
        ("\n\n", "bad.jsonl: not an EvoKernel memory export"),
        (_HEADER + _ITEM % '"q_draft": NaN', r"bad.jsonl:2: q_draft must be a finite number"),
        (_HEADER + _ITEM % '"q_refine": -Infinity', r"bad.jsonl:2: q_refine must be a finite number"),
        (_HEADER + _ITEM % '"reward": NaN', r"bad.jsonl:2: reward must be a finite number"),
        (_HEADER + _ITEM % '"outcome": "notadict"', r"bad.jsonl:2: outcome must be a JSON object"),
        (_HEADER + _ITEM % '"meta": [1]', r"bad.jsonl:2: meta must be a JSON object"),
        (_HEADER + _ITEM % '"backend": "tpu"', r"bad.jsonl:2: unknown backend 'tpu'"),
        (_HEADER + _ITEM % '"kind": "weird"', r"bad.jsonl:2: unknown item kind 'weird'"),
        (_HEADER + _ITEM % '"visits_draft": Infinity', r"bad.jsonl:2: visits_draft must be an integer >= 0"),
        (_HEADER + _ITEM % '"visits_refine": -1', r"bad.jsonl:2: visits_refine must be an integer >= 0"),
        (_HEADER + _ITEM % '"visits_draft": "3"', r"bad.jsonl:2: visits_draft must be an integer >= 0"),
        (_STATS % '{"draft": [1, NaN, 0.0]}', r"bad.jsonl:1: reward_stats.draft: mean must be a finite number"),
        (_STATS % '{"draft": [1, 0.5, Infinity]}', r"bad.jsonl:1: reward_stats.draft: var must be a finite number"),
        (_STATS % '{"draft": [1, 0.5, -0.1]}', r"bad.jsonl:1: reward_stats.draft: var must be >= 0"),
        (_STATS % '{"draft": [-1, 0.5, 0.1]}', r"bad.jsonl:1: reward_stats.draft: count must be an integer >= 0"),
        (_STATS % '{"draft": [1.5, 0.5, 0.1]}', r"bad.jsonl:1: reward_stats.draft: count must be an integer >= 0"),
        (_STATS % '{"draft": [1, 0.5]}', r"bad.jsonl:1: reward_stats.draft must be \[count, mean, var\]"),
        (_STATS % '{"final": [1, 0.5, 0.1]}', r"bad.jsonl:1: reward_stats: unknown stage 'final'"),
        (_STATS % '[1, 0.5, 0.1]', r"bad.jsonl:1: reward_stats must be a JSON object"),
    ],
)
def test_bad_values_in_an_export_name_the_line(tmp_path, open_memory, text, match) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(text)
    mem = open_memory()
    with pytest.raises(UserError, match=match):
        mem.import_jsonl(bad)
    assert len(mem) == 0
