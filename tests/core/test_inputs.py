"""Bad inputs raise one clear error that says how to fix them; a failed call changes nothing."""

from __future__ import annotations

import numpy as np
import pytest

from evokernel import _core

DIM = 8


@pytest.fixture
def index(rng):
    ix = _core.ExperienceIndex(DIM)
    ix.add(np.arange(10, dtype=np.int64), rng.standard_normal((10, DIM)).astype(np.float32))
    return ix


def vecs(n=2, dim=DIM, dtype=np.float32):
    return np.random.default_rng(0).standard_normal((n, dim)).astype(dtype)


def unchanged(index):
    assert len(index) == 10 and sorted(index.ids().tolist()) == list(range(10))


@pytest.mark.parametrize("vectors,err,msg", [
    (vecs(dtype=np.float64), TypeError, r"float32 array of shape \(n, 8\), got a float64 array"),
    (vecs(dtype=np.float16), TypeError, "float16"),
    (vecs().astype(np.int32), TypeError, "int32"),
    (vecs().astype(">f4"), TypeError, "float32"),  # byte-swapped: never misread
    (vecs(dim=9), ValueError, r"shape \(n, 8\), got a float32 array of shape \(2, 9\)"),
    (vecs()[0], ValueError, r"shape \(8,\)"),
    (vecs()[None], ValueError, "of shape \\(1, 2, 8\\)"),
    (np.asfortranarray(vecs(3)), ValueError, "non-contiguous"),
    (vecs(4)[::2], ValueError, "np.ascontiguousarray"),
    (vecs(n=3), ValueError, "vectors has 3 rows but ids has 2"),
    ("not an array", TypeError, "vectors must be"),
])
def test_add_rejects_bad_vectors(index, vectors, err, msg):
    with pytest.raises(err, match=msg):
        index.add(np.array([100, 101]), vectors)
    unchanged(index)


@pytest.mark.parametrize("make_bad,msg", [
    (lambda v: v.__setitem__((1, 3), np.nan), r"vectors\[1\] contains NaN or inf"),
    (lambda v: v.__setitem__((0, 0), np.inf), r"vectors\[0\] contains NaN or inf"),
    (lambda v: v.__setitem__(1, 0.0), r"vectors\[1\] is all zeros"),
])
def test_add_rejects_bad_values(index, make_bad, msg):
    v = vecs()
    make_bad(v)
    with pytest.raises(ValueError, match=msg):
        index.add(np.array([100, 101]), v)
    unchanged(index)


@pytest.mark.parametrize("ids,err,msg", [
    (np.array([100, 100]), ValueError, "duplicate id 100"),
    (np.array([100, 5]), ValueError, "id 5 is already in the index"),
    (np.array([-1, 100]), ValueError, "ids must be >= 0"),
    (np.array([1.0, 2.0]), TypeError, "int64"),
    (np.array([100, 2**63], dtype=np.uint64), TypeError, "uint64"),
    (np.array([[100, 101]]), ValueError, r"shape \(n,\)"),
    ([100.5, 101], TypeError, "float64"),
])
def test_add_rejects_bad_ids(index, ids, err, msg):
    with pytest.raises(err, match=msg):
        index.add(ids, vecs())
    unchanged(index)


def test_add_accepts_lossless_conversions(index):
    index.add([100, 101], vecs().tolist(), tags=[1, 2])  # lists are converted
    index.add(np.array([102, 103], dtype=np.int32), vecs(), tags=np.array([3, 4], np.int16))
    index.add(np.arange(104, 112)[::4], vecs(), tags=5)  # strided ids are copied
    assert [index.tag(i) for i in (100, 101, 102, 103, 104, 108)] == [1, 2, 3, 4, 5, 5]


@pytest.mark.parametrize("tags,err,msg", [
    (-1, ValueError, r"tags must be in \[0, 2\*\*32\)"),
    (2**32, ValueError, r"\[0, 2\*\*32\)"),
    (np.array([1, -2]), ValueError, "tags must hold values in"),
    (np.array([1, 2, 3]), ValueError, r"shape \(2,\)"),
    (np.array([1.0, 2.0]), TypeError, "uint32"),
])
def test_add_rejects_bad_tags(index, tags, err, msg):
    with pytest.raises(err, match=msg):
        index.add(np.array([100, 101]), vecs(), tags)
    unchanged(index)


@pytest.mark.parametrize("query,err,msg", [
    (np.zeros(DIM, np.float32), ValueError, r"queries\[0\] is all zeros"),
    (np.full(DIM, np.nan, np.float32), ValueError, "NaN"),
    (np.ones(DIM, np.float64), TypeError, "float32"),
    (np.ones(DIM + 1, np.float32), ValueError, r"shape \(8,\) or \(n, 8\)"),
    (np.ones((2, DIM), np.float32).T.copy().T, ValueError, "non-contiguous"),
])
def test_search_rejects_bad_queries(index, query, err, msg):
    with pytest.raises(err, match=msg):
        index.search(query, 3)


def test_search_and_select_reject_bad_arguments(index):
    q = np.ones(DIM, np.float32)
    with pytest.raises(ValueError, match="k must be >= 0"):
        index.search(q, -1)
    with pytest.raises(ValueError, match="tag_mask"):
        index.search(q, 1, tag_mask=-1)
    with pytest.raises(ValueError, match="n must be >= 0"):
        index.select(q, -2, _core.DRAFT)
    with pytest.raises(ValueError, match="stage must be DRAFT"):
        index.select(q, 2, 5)
    with pytest.raises(ValueError, match="epsilon"):
        index.select(q, 2, _core.DRAFT, epsilon=1.5)
    with pytest.raises(ValueError, match="pool_factor"):
        index.select(q, 2, _core.DRAFT, pool_factor=0.0)
    with pytest.raises(ValueError, match="q_floor"):
        index.select(q, 2, _core.DRAFT, q_floor=float("nan"))
    with pytest.raises(ValueError, match="w_sim"):
        index.select(q, 2, _core.DRAFT, w_sim=float("inf"))
    with pytest.raises(ValueError, match=r"query must be a C-contiguous float32 array of shape \(8,\)"):
        index.select(np.ones((1, DIM), np.float32), 2, _core.DRAFT)
    with pytest.raises(ValueError, match="all zeros"):
        index.select(np.zeros(DIM, np.float32), 2, _core.DRAFT)
    with pytest.raises(TypeError):
        index.select(q, 2, _core.DRAFT, 3.0)  # keyword-only options
    with pytest.raises(TypeError, match="exclude"):
        index.select(q, 2, _core.DRAFT, exclude=np.array([0.5]))


def test_missing_ids_raise_key_error(index):
    for call in (lambda: index.tag(99), lambda: index.vector(99), lambda: index.set_tag(99, 1),
                 lambda: index.update_vector(99, np.ones(DIM, np.float32)),
                 lambda: index.get_visits([1, 99], _core.DRAFT)):
        with pytest.raises(KeyError, match="id 99 is not in the index"):
            call()
    assert index.remove([99, 98]) == 0 and 99 not in index


def test_update_vector_checks_the_vector(index):
    with pytest.raises(ValueError, match="all zeros"):
        index.update_vector(3, np.zeros(DIM, np.float32))
    with pytest.raises(ValueError, match=r"shape \(8,\)"):
        index.update_vector(3, np.ones((1, DIM), np.float32))
    before = index.vector(3)
    index.update_vector(3, np.arange(1, DIM + 1, dtype=np.float32))
    assert not np.array_equal(before, index.vector(3))
    np.testing.assert_allclose(np.linalg.norm(index.vector(3)), 1.0, rtol=1e-6)


def test_set_q_checks_lengths_and_values(index):
    with pytest.raises(ValueError, match=r"q must be a C-contiguous float64 array of shape \(2,\)"):
        index.set_q([1, 2], _core.DRAFT, [0.5], [1, 1])
    with pytest.raises(ValueError, match="visits"):
        index.set_q([1, 2], _core.DRAFT, [0.5, 0.5], [1, -1])
    with pytest.raises(ValueError, match="not finite"):
        index.set_q([1, 2], _core.DRAFT, [0.5, np.nan], [1, 1])
    assert index.get_q([1, 2], _core.DRAFT).tolist() == [0.0, 0.0]


def test_constructor_checks(index):
    with pytest.raises(ValueError, match="dim"):
        _core.ExperienceIndex(0)
    with pytest.raises(ValueError, match="dim"):
        _core.ExperienceIndex(1 << 20)
    assert repr(index) == "ExperienceIndex(dim=8, fp16=False, size=10)"
    with pytest.raises(ValueError, match="num_threads"):
        index.num_threads = -1
