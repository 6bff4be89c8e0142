"""Exact top-k cosine search against a plain numpy reference."""

from __future__ import annotations

import numpy as np
import pytest

from evokernel import _core


def reference_sims(vectors: np.ndarray, ids: np.ndarray, query: np.ndarray,
                   mask: np.ndarray | None = None) -> dict[int, float]:
    """id -> cosine similarity in float64 (rows passing `mask` only)."""
    v = vectors.astype(np.float64)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    q = query.astype(np.float64) / np.linalg.norm(query)
    sims = v @ q
    keep = np.ones(len(ids), bool) if mask is None else mask
    return {int(i): float(s) for i, s, ok in zip(ids, sims, keep) if ok}


@pytest.mark.parametrize("dim", [1, 7, 16, 33, 256])
@pytest.mark.parametrize("n", [0, 1, 5, 300])
def test_single_query_matches_numpy(make_index, rng, check_topk, dim, n):
    index, ids, vectors, _ = make_index(n, dim)
    query = rng.standard_normal(dim).astype(np.float32)
    for k in (1, 3, 8, n + 5):
        got_ids, got_sims = index.search(query, k)
        assert got_ids.dtype == np.int64 and got_sims.dtype == np.float32
        check_topk(got_ids, got_sims, reference_sims(vectors, ids, query), k)


def test_batch_matches_single_bitwise(make_index, rng):
    index, *_ = make_index(777, 40)
    queries = rng.standard_normal((9, 40)).astype(np.float32)
    ids, sims = index.search(queries, 6)
    assert ids.shape == (9, 6) and sims.shape == (9, 6)
    for b in range(9):
        one_ids, one_sims = index.search(queries[b], 6)
        np.testing.assert_array_equal(ids[b], one_ids)
        np.testing.assert_array_equal(sims[b], one_sims)


@pytest.mark.parametrize("mask,value", [(0, 0), (1, 1), (3, 2), (2, 0), (7, 4)])
def test_tag_filter(make_index, rng, check_topk, mask, value):
    index, ids, vectors, tags = make_index(500, 24, n_tags=8)
    query = rng.standard_normal(24).astype(np.float32)
    passing = (tags & mask) == value
    got_ids, got_sims = index.search(query, 20, tag_mask=mask, tag_value=value)
    check_topk(got_ids, got_sims, reference_sims(vectors, ids, query, passing), 20)
    assert all(int(tags[list(ids).index(i)]) & mask == value for i in got_ids if i >= 0)


def test_filter_with_no_match_and_impossible_value_pad(make_index, rng):
    index, *_ = make_index(50, 8, n_tags=2)
    query = rng.standard_normal(8).astype(np.float32)
    for mask, value in [(4, 4), (1, 2)]:  # no row has bit 2; value outside the mask
        ids, sims = index.search(query, 3, tag_mask=mask, tag_value=value)
        assert ids.tolist() == [-1, -1, -1] and np.all(np.isneginf(sims))


def test_exact_ties_are_ordered_by_id(rng):
    dim = 32
    base = rng.standard_normal(dim).astype(np.float32)
    other = rng.standard_normal((20, dim)).astype(np.float32)
    index = _core.ExperienceIndex(dim)
    # Five identical vectors (scaled copies normalise to the same row) under scrambled ids.
    tie_ids = np.array([907, 12, 500, 3, 64], dtype=np.int64)
    index.add(tie_ids, np.stack([base * s for s in (1.0, 2.0, 0.5, 4.0, 1.0)]).astype(np.float32))
    index.add(np.arange(1000, 1020), other)
    ids, sims = index.search(base, 5)
    assert ids.tolist() == sorted(tie_ids.tolist())
    assert len(set(sims.tolist())) == 1
    # The tie survives a cut in the middle: the smallest ids win.
    ids, _ = index.search(base, 3)
    assert ids.tolist() == [3, 12, 64]


def test_ties_independent_of_row_order(rng):
    dim = 16
    v = rng.standard_normal(dim).astype(np.float32)
    a = _core.ExperienceIndex(dim)
    b = _core.ExperienceIndex(dim)
    ids = np.arange(40, dtype=np.int64)
    a.add(ids, np.tile(v, (40, 1)))
    b.add(ids[::-1].copy(), np.tile(v, (40, 1)))
    b.remove([5, 17])
    b.add([5, 17], np.tile(v, (2, 1)))
    for index in (a, b):
        got, _ = index.search(v, 10)
        assert got.tolist() == list(range(10))


def test_k_zero_and_empty_batch(make_index, rng):
    index, *_ = make_index(10, 8)
    ids, sims = index.search(rng.standard_normal(8).astype(np.float32), 0)
    assert ids.shape == (0,) and sims.shape == (0,)
    ids, sims = index.search(np.zeros((0, 8), np.float32), 4)
    assert ids.shape == (0, 4) and sims.shape == (0, 4)


def test_empty_index_pads(rng):
    index = _core.ExperienceIndex(8)
    ids, sims = index.search(rng.standard_normal((2, 8)).astype(np.float32), 3)
    assert (ids == -1).all() and np.isneginf(sims).all()


def test_query_scale_does_not_matter(make_index, rng):
    index, *_ = make_index(100, 12)
    q = rng.standard_normal(12).astype(np.float32)
    a = index.search(q, 5)
    b = index.search(q * 1000.0, 5)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1], atol=1e-6)


@pytest.mark.parametrize("dim", [5, 64, 256])
def test_fp16_storage_within_fp16_tolerance(make_index, rng, check_topk, unit, dim):
    index, ids, vectors, _ = make_index(400, dim, fp16=True)
    assert index.fp16
    # Stored rows are the normalised float32 rows rounded to half (round to nearest even).
    for row in (0, 17, 399):
        expected = unit(vectors[row]).astype(np.float16).astype(np.float32)
        np.testing.assert_array_equal(index.vector(int(ids[row])), expected)
    queries = rng.standard_normal((3, dim)).astype(np.float32)
    got_ids, got_sims = index.search(queries, 10)
    for b in range(3):
        # Against the exact float64 reference within fp16 rounding of the stored rows.
        check_topk(got_ids[b], got_sims[b], reference_sims(vectors, ids, queries[b]), 10, tol=2e-3)


def test_large_scan_uses_threads_and_agrees(make_index, rng, check_topk):
    # 3000 x 128 floats is 1.5 MB: large enough for the parallel path.
    index, ids, vectors, tags = make_index(3000, 128)
    queries = rng.standard_normal((5, 128)).astype(np.float32)
    results = {}
    for threads in (1, 2, 3):
        index.num_threads = threads
        results[threads] = index.search(queries, 7, tag_mask=1, tag_value=1)
    for threads in (2, 3):
        np.testing.assert_array_equal(results[1][0], results[threads][0])
        np.testing.assert_array_equal(results[1][1], results[threads][1])
    ref = reference_sims(vectors, ids, queries[0], (tags & 1) == 1)
    check_topk(results[1][0][0], results[1][1][0], ref, 7)
