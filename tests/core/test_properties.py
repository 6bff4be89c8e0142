"""Random add/remove/update/search sequences agree with a plain Python model (hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from evokernel import _core

DIM = 5
ALPHA = 0.3

# Small integer vectors: exact duplicates and exact ties in similarity happen often.
vector = st.lists(st.integers(-3, 3), min_size=DIM, max_size=DIM).filter(any)
ident = st.integers(0, 40)


def unit(v) -> np.ndarray:
    x = np.asarray(v, dtype=np.float64)
    return x / np.linalg.norm(x)


class IndexModel(RuleBasedStateMachine):
    """The index against dicts: id -> vector, tag, Q per stage, visits per stage."""

    check_topk = None  # set by the test from the conftest fixture

    @initialize(fp16=st.booleans())
    def start(self, fp16: bool) -> None:
        self.fp16 = fp16
        self.index = _core.ExperienceIndex(DIM, fp16=fp16)
        self.vec: dict[int, np.ndarray] = {}
        self.tag: dict[int, int] = {}
        self.q: dict[int, list[float]] = {}
        self.visits: dict[int, list[int]] = {}

    @rule(items=st.lists(st.tuples(ident, vector, st.integers(0, 3)), max_size=6,
                         unique_by=lambda t: t[0]))
    def add(self, items) -> None:
        if not items:
            return
        ids = np.array([i for i, _, _ in items], dtype=np.int64)
        vecs = np.array([v for _, v, _ in items], dtype=np.float32)
        tags = np.array([t for _, _, t in items], dtype=np.uint32)
        if any(int(i) in self.vec for i in ids):
            try:
                self.index.add(ids, vecs, tags)
            except ValueError as exc:
                assert "already in the index" in str(exc)
            else:
                raise AssertionError("adding an existing id must fail")
            return
        self.index.add(ids, vecs, tags)
        for (i, v, t) in items:
            self.vec[i], self.tag[i] = unit(v), t
            self.q[i], self.visits[i] = [0.0, 0.0], [0, 0]

    @rule(ids=st.lists(ident, max_size=6))
    def remove(self, ids) -> None:
        expected = len(set(ids) & set(self.vec))
        assert self.index.remove(np.array(ids, dtype=np.int64)) == expected
        for i in set(ids) & set(self.vec):
            del self.vec[i], self.tag[i], self.q[i], self.visits[i]

    @precondition(lambda self: self.vec)
    @rule(data=st.data(), v=vector, tag=st.integers(0, 3))
    def update(self, data, v, tag) -> None:
        i = data.draw(st.sampled_from(sorted(self.vec)))
        self.index.update_vector(i, np.array(v, dtype=np.float32))
        self.index.set_tag(i, tag)
        self.vec[i], self.tag[i] = unit(v), tag

    @precondition(lambda self: self.vec)
    @rule(data=st.data(), stage=st.sampled_from([0, 1]), reward=st.floats(-1, 1))
    def update_q(self, data, stage, reward) -> None:
        ids = data.draw(st.lists(st.sampled_from(sorted(self.vec)), min_size=1, max_size=5))
        out = self.index.update_q(np.array(ids, dtype=np.int64), stage, reward, alpha=ALPHA)
        for pos, i in enumerate(ids):
            self.q[i][stage] += ALPHA * (reward - self.q[i][stage])
            self.visits[i][stage] += 1
            assert out[pos] == self.q[i][stage]

    @rule(query=vector, k=st.integers(0, 8), filt=st.sampled_from([(0, 0), (1, 1), (3, 2)]))
    def search(self, query, k, filt) -> None:
        mask, value = filt
        ids, sims = self.index.search(np.array(query, dtype=np.float32), k, tag_mask=mask,
                                      tag_value=value)
        q = unit(query)
        ref = {i: float(v @ q) for i, v in self.vec.items() if (self.tag[i] & mask) == value}
        type(self).check_topk(ids, sims, ref, k, tol=2e-3 if self.fp16 else 1e-5)

    @invariant()
    def agrees(self) -> None:
        index = self.index
        assert len(index) == len(self.vec)
        assert sorted(index.ids().tolist()) == sorted(self.vec)
        for i in self.vec:
            assert i in index and index.tag(i) == self.tag[i]
            np.testing.assert_allclose(index.vector(i), self.vec[i], atol=1e-3 if self.fp16 else 1e-6)
        ids = np.array(sorted(self.vec), dtype=np.int64)
        for stage in (0, 1):
            listed = ids.tolist()
            assert index.get_q(ids, stage).tolist() == [self.q[i][stage] for i in listed]
            assert index.get_visits(ids, stage).tolist() == [self.visits[i][stage] for i in listed]
        assert all(i not in index for i in range(41) if i not in self.vec)


def test_index_agrees_with_model(check_topk):
    IndexModel.check_topk = staticmethod(check_topk)
    run_state_machine_as_test(IndexModel, settings=settings(
        max_examples=40, stateful_step_count=25, derandomize=True, database=None, deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    ))
