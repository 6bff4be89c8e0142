"""Fixtures of the compiled-core tests: seeded data, index factories, SIMD switching, top-k checks."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytest

from evokernel import _core


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator (every test gets the same stream)."""
    return np.random.default_rng(1234)


@pytest.fixture
def simd_level(request: pytest.FixtureRequest) -> Iterator[str]:
    """Switch the process to the SIMD level named by the test's parameter; restore afterwards."""
    before = _core.simd_level()
    level = request.param
    if level not in _core.simd_levels():
        pytest.skip(f"SIMD level {level!r} not available on this CPU/build")
    _core._set_simd_level(level)
    try:
        yield level
    finally:
        _core._set_simd_level(before)


def normalize(x: np.ndarray) -> np.ndarray:
    """L2-normalise rows the way the core does (float64 division, rounded to float32)."""
    x64 = np.asarray(x, dtype=np.float64)
    return (x64 / np.linalg.norm(x64, axis=-1, keepdims=True)).astype(np.float32)


@pytest.fixture
def make_index(rng: np.random.Generator) -> Callable[..., tuple]:
    """Factory: an index of n random rows -> (index, ids, vectors, tags)."""

    def make(n: int, dim: int, *, fp16: bool = False, n_tags: int = 4, id_offset: int = 1000,
             shuffle_ids: bool = True):
        vectors = rng.standard_normal((n, dim)).astype(np.float32)
        ids = np.arange(id_offset, id_offset + n, dtype=np.int64)
        if shuffle_ids:
            ids = rng.permutation(ids)
        tags = rng.integers(0, n_tags, n).astype(np.uint32)
        index = _core.ExperienceIndex(dim, fp16=fp16)
        if n:
            index.add(ids, vectors, tags)
        return index, ids, vectors, tags

    return make


def _check_topk(ids: np.ndarray, sims: np.ndarray, ref: dict[int, float], k: int,
                tol: float = 1e-5) -> None:
    """Assert (ids, sims) is a valid top-k of `ref` (id -> exact similarity) up to `tol`.

    Valid: the right length, padding only after every candidate was used, sims close to the
    reference, sorted descending (ties by id ascending), and no left-out candidate better than
    the worst returned one by more than `tol`.
    """
    assert ids.shape == (k,) and sims.shape == (k,)
    m = min(k, len(ref))
    assert np.all(ids[m:] == -1) and np.all(np.isneginf(sims[m:]))
    got = ids[:m].tolist()
    assert len(set(got)) == m and all(i in ref for i in got)
    np.testing.assert_allclose(sims[:m], [ref[i] for i in got], atol=tol, rtol=0)
    for a in range(m - 1):
        assert sims[a] > sims[a + 1] or (sims[a] == sims[a + 1] and got[a] < got[a + 1])
    if m:
        worst = min(ref[i] for i in got)
        left_out = [ref[i] for i in ref if i not in set(got)]
        assert not left_out or max(left_out) <= worst + 2 * tol


@pytest.fixture
def check_topk() -> Callable[..., None]:
    return _check_topk


@pytest.fixture
def unit() -> Callable[[np.ndarray], np.ndarray]:
    return normalize
