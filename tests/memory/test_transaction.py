"""Memory.transaction: several logical writes land together or not at all."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evokernel.memory import Memory, RetrievalSettings


def test_writes_in_a_transaction_land_together(tmp_path: Path, make_item) -> None:
    with Memory.open(tmp_path / "m.sqlite") as mem:
        (first,) = mem.add([make_item("relu")])
        with mem.transaction():
            mem.record_rewards([first], "draft", -1.0)
            mem.normalize_reward("refine", 0.5)
            mem.add([make_item("softmax")])
    with Memory.open(tmp_path / "m.sqlite") as mem:
        assert len(mem) == 2
        assert mem.get(first).q_draft == pytest.approx(-0.2)
        assert mem.reward_stats("refine")[0] == 1


def test_a_failed_transaction_leaves_store_and_index_unchanged(tmp_path: Path, make_item, programs) -> None:
    with Memory.open(tmp_path / "m.sqlite") as mem:
        (first,) = mem.add([make_item("relu")])
        with pytest.raises(RuntimeError, match="boom"):
            with mem.transaction():
                mem.record_rewards([first], "draft", 1.0)
                mem.add([make_item("relu")])
                raise RuntimeError("boom")
        assert len(mem) == 1
        assert mem.get(first).q_draft == 0.0
        # the index agrees with the store: retrieval sees one item with Q 0
        got = mem.retrieve(programs["relu"], "draft", "cpu", RetrievalSettings(epsilon=0.0))
        assert [r.item.id for r in got] == [first]
        assert mem._index.get_q(np.array([first]), 0)[0] == 0.0


def test_reads_inside_a_transaction_see_its_writes(tmp_path: Path, make_item) -> None:
    with Memory.open(tmp_path / "m.sqlite") as mem:
        with mem.transaction():
            (new,) = mem.add([make_item("relu")])
            assert mem.get(new).task_id == "level1/relu"
            assert mem.stats()["items"] == 1
            mem.refresh()  # a rebuild from inside the transaction reads the transaction's view
            assert new in mem._index
        assert len(mem) == 1
