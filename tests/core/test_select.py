"""select (the value-driven retrieval) against a numpy reference of docs/architecture.md's steps."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest

from evokernel import _core

MASK64 = (1 << 64) - 1


def splitmix64(seed: int) -> Iterator[int]:
    """The core's generator: SplitMix64 seeded with seed mod 2**64."""
    state = seed & MASK64
    while True:
        state = (state + 0x9E3779B97F4A7C15) & MASK64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        yield z ^ (z >> 31)


def uniform(gen: Iterator[int]) -> float:
    return (next(gen) >> 11) * 2.0**-53


def zscores(x: list[float]) -> list[float]:
    """Population z-scores; all values equal -> zeros. Sums in order, like the core."""
    if not x or min(x) == max(x):
        return [0.0] * len(x)
    total = 0.0
    for v in x:
        total += v
    mean = total / len(x)
    ss = 0.0
    for v in x:
        ss += (v - mean) * (v - mean)
    sd = math.sqrt(ss / len(x))
    return [(v - mean) / sd for v in x] if sd > 0 else [0.0] * len(x)


def reference_select(sims: dict[int, float], q: dict[int, float], tags: dict[int, int], n: int, *,
                     pool_factor=3.0, w_sim=0.5, w_q=0.5, q_floor=-0.8, epsilon=0.1, seed=0,
                     tag_mask=0, tag_value=0, exclude=()):
    """Steps 1-5 of select; `sims` are the index's own float32 similarities by id."""
    excluded = set(int(e) for e in exclude)
    cands = [i for i in sims if (tags[i] & tag_mask) == tag_value and i not in excluded]
    cands.sort(key=lambda i: (-sims[i], i))
    pool = cands[: math.ceil(pool_factor * n)]
    s = [float(sims[i]) for i in pool]
    qv = [float(q[i]) for i in pool]
    zs, zq = zscores(s), zscores(qv)
    score = [w_sim * a + w_q * b for a, b in zip(zs, zq)]
    alive = list(range(len(pool)))
    if len(alive) > n:
        low = sorted((j for j in alive if qv[j] < q_floor), key=lambda j: (qv[j], pool[j]))
        for j in low:
            if len(alive) <= n:
                break
            alive.remove(j)
    order = sorted(alive, key=lambda j: (-score[j], -s[j], pool[j]))
    gen = splitmix64(seed)
    picked = []
    for _ in range(min(n, len(order))):
        j = int(uniform(gen) * len(order)) if uniform(gen) < epsilon else 0
        picked.append(order.pop(j))
    return ([pool[j] for j in picked], [s[j] for j in picked], [score[j] for j in picked])


def all_sims(index: _core.ExperienceIndex, query: np.ndarray) -> dict[int, float]:
    """Every row's similarity as the index computes it (search over everything)."""
    ids, sims = index.search(query, len(index))
    return {int(i): float(s) for i, s in zip(ids, sims)}


def setup(make_index, rng, n=200, dim=32, stage=_core.DRAFT):
    index, ids, vectors, tags = make_index(n, dim)
    q = rng.uniform(-1, 1, n)
    index.set_q(ids, stage, q, np.ones(n, dtype=np.int64))
    return index, ids, dict(zip(ids.tolist(), q.tolist())), dict(zip(ids.tolist(), tags.tolist()))


def compare(index, query, qmap, tagmap, n, stage, **kw):
    got = index.select(query, n, stage, **kw)
    want = reference_select(all_sims(index, query), qmap, tagmap, n, **kw)
    assert got[0].tolist() == want[0]
    np.testing.assert_array_equal(got[1], np.array(want[1], dtype=np.float32))
    np.testing.assert_allclose(got[2], want[2], rtol=1e-6, atol=1e-6)
    assert got[0].dtype == np.int64 and got[1].dtype == np.float32 and got[2].dtype == np.float32
    return got


@pytest.mark.parametrize("n", [1, 4, 10])
@pytest.mark.parametrize("weights", [(0.5, 0.5), (1.0, 0.0), (0.2, 0.8), (0.0, 1.0)])
def test_epsilon_zero_equals_numpy_ranking(make_index, rng, n, weights):
    index, ids, qmap, tagmap = setup(make_index, rng)
    for trial in range(3):
        query = rng.standard_normal(32).astype(np.float32)
        compare(index, query, qmap, tagmap, n, _core.DRAFT, epsilon=0.0,
                w_sim=weights[0], w_q=weights[1], pool_factor=[3.0, 1.5, 7.3][trial])


@pytest.mark.parametrize("epsilon", [0.3, 1.0])
def test_epsilon_slots_match_reference_generator(make_index, rng, epsilon):
    index, ids, qmap, tagmap = setup(make_index, rng)
    query = rng.standard_normal(32).astype(np.float32)
    for seed in (0, 1, 2**40 + 7, -3):
        compare(index, query, qmap, tagmap, 6, _core.DRAFT, epsilon=epsilon, seed=seed)


def test_filter_exclude_and_stage(make_index, rng):
    index, ids, qmap, tagmap = setup(make_index, rng, stage=_core.REFINE)
    query = rng.standard_normal(32).astype(np.float32)
    near = index.search(query, 5)[0]
    exclude = np.concatenate([near[:3], [10**12]])  # unknown ids are ignored
    compare(index, query, qmap, tagmap, 4, _core.REFINE, epsilon=0.25, seed=9, tag_mask=1,
            tag_value=1, exclude=exclude)
    got = index.select(query, 4, _core.REFINE, exclude=exclude, epsilon=0.0)
    assert not set(got[0].tolist()) & set(near[:3].tolist())
    # The DRAFT stage has Q = 0 everywhere: z(Q) = 0, so the ranking is by similarity alone.
    draft = index.select(query, 4, _core.DRAFT, epsilon=0.0, exclude=exclude)
    by_sim = [i for i in index.search(query, 10)[0].tolist() if i not in set(exclude.tolist())]
    assert draft[0].tolist() == by_sim[:4]


def test_q_floor_drops_lowest_q_while_enough_remain(rng):
    dim = 8
    index = _core.ExperienceIndex(dim)
    base = rng.standard_normal(dim).astype(np.float32)
    vectors = base + 0.01 * rng.standard_normal((9, dim)).astype(np.float32)
    ids = np.arange(1, 10, dtype=np.int64)
    index.add(ids, vectors)
    # Six rows below the floor, two of them tied at the lowest Q.
    q = np.array([-0.95, -0.9, -0.95, 0.5, -0.85, 0.1, -0.99, -0.81, 0.9])
    index.set_q(ids, _core.DRAFT, q, np.ones(9, dtype=np.int64))
    qmap = dict(zip(ids.tolist(), q.tolist()))
    tagmap = {int(i): 0 for i in ids}
    for n in (1, 2, 4, 7, 9):
        got = compare(index, base, qmap, tagmap, n, _core.DRAFT, epsilon=0.0)
        assert len(got[0]) == n
    # n = 4 from a pool of 9: the five lowest-Q rows are dropped (ids 7, 1, 3, 2, 5).
    got = index.select(base, 4, _core.DRAFT, epsilon=0.0)
    assert set(got[0].tolist()) == {4, 6, 8, 9}
    # Without a floor nothing is dropped and Q only weighs in through the score.
    got = index.select(base, 9, _core.DRAFT, epsilon=0.0, q_floor=float("-inf"))
    assert sorted(got[0].tolist()) == ids.tolist()


def test_w_q_zero_with_no_floor_is_similarity_only(make_index, rng):
    index, ids, qmap, tagmap = setup(make_index, rng)
    query = rng.standard_normal(32).astype(np.float32)
    got = index.select(query, 8, _core.DRAFT, w_q=0.0, q_floor=float("-inf"), epsilon=0.0)
    want = index.search(query, 8)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


def test_determinism_and_pool_membership(make_index, rng):
    index, ids, qmap, tagmap = setup(make_index, rng, n=300)
    query = rng.standard_normal(32).astype(np.float32)
    n, pool_factor = 5, 4.0
    first = index.select(query, n, _core.DRAFT, epsilon=0.5, seed=42, pool_factor=pool_factor)
    for _ in range(3):
        again = index.select(query, n, _core.DRAFT, epsilon=0.5, seed=42, pool_factor=pool_factor)
        for a, b in zip(first, again):
            np.testing.assert_array_equal(a, b)
    pool = set(index.search(query, math.ceil(pool_factor * n))[0].tolist())
    picks = set()
    for seed in range(40):
        got = index.select(query, n, _core.DRAFT, epsilon=0.5, seed=seed, pool_factor=pool_factor)
        assert len(set(got[0].tolist())) == n and set(got[0].tolist()) <= pool
        picks |= set(got[0].tolist())
    greedy = set(index.select(query, n, _core.DRAFT, epsilon=0.0, pool_factor=pool_factor)[0].tolist())
    assert picks - greedy  # exploration reached beyond the greedy picks


def test_ties_in_score_break_by_sim_then_id(rng):
    dim = 8
    index = _core.ExperienceIndex(dim)
    v = rng.standard_normal(dim).astype(np.float32)
    index.add(np.array([30, 10, 20, 40], dtype=np.int64), np.tile(v, (4, 1)))
    got = index.select(v, 4, _core.DRAFT, epsilon=0.0)
    assert got[0].tolist() == [10, 20, 30, 40]
    np.testing.assert_array_equal(got[2], np.zeros(4, np.float32))


def test_small_and_empty_pools(make_index, rng):
    index, ids, qmap, tagmap = setup(make_index, rng, n=3)
    query = rng.standard_normal(32).astype(np.float32)
    got = index.select(query, 10, _core.DRAFT)
    assert len(got[0]) == 3
    assert all(len(a) == 0 for a in index.select(query, 0, _core.DRAFT))
    assert all(len(a) == 0 for a in index.select(query, 4, _core.DRAFT, exclude=ids))
    empty = _core.ExperienceIndex(32)
    assert all(len(a) == 0 for a in empty.select(query, 4, _core.DRAFT))


def test_many_slots_match_reference(make_index, rng):
    index, ids, qmap, tagmap = setup(make_index, rng, n=1500, dim=8)
    query = rng.standard_normal(8).astype(np.float32)
    got = compare(index, query, qmap, tagmap, 1200, _core.DRAFT, epsilon=0.5, seed=11,
                  pool_factor=1.1)
    assert len(set(got[0].tolist())) == 1200
