"""How many threads a scan uses, that every thread count agrees, and that an idle pool sleeps."""

from __future__ import annotations

import time

import numpy as np

from evokernel import _core


def test_thread_count_follows_the_rows_that_pass_the_filter(rng):
    # 6000 rows of 1 KiB: 6 MB in all, but only ~150 rows (150 KB) carry tag 1.
    n, dim = 6000, 256
    tags = np.zeros(n, dtype=np.uint32)
    tags[rng.choice(n, 150, replace=False)] = 1
    index = _core.ExperienceIndex(dim)
    index.add(np.arange(n), rng.standard_normal((n, dim)).astype(np.float32), tags)
    index.num_threads = 4
    assert index._scan_threads() == 4  # the whole index: plenty of work
    assert index._scan_threads(1, 1, 0) == 4  # ~5850 rows pass
    assert index._scan_threads(1, 1, 1) == 1  # ~150 rows pass: not worth a second thread
    assert index._scan_threads(1, 1, 3) == 1  # no tag can match
    assert index._scan_threads(64, 1, 1) > 1  # a batch re-reads the rows: worth threads again
    index.num_threads = 1
    assert index._scan_threads() == 1
    index.num_threads = 0
    assert 1 <= index._scan_threads() <= 8
    assert _core.ExperienceIndex(dim)._scan_threads() == 1  # empty


def test_every_thread_count_gives_the_same_select_and_search(make_index, rng):
    index, ids, _, _ = make_index(6000, 256)
    index.set_q(ids, _core.DRAFT, rng.uniform(-1, 1, len(ids)), np.ones(len(ids), np.int64))
    queries = rng.standard_normal((3, 256)).astype(np.float32)
    out = {}
    for threads in (1, 2, 3, 5):
        index.num_threads = threads
        # ~1500 rows of 1 KiB pass the filter: a parallel scan whenever threads are allowed.
        assert (index._scan_threads(1, 3, 1) > 1) == (threads > 1)
        picks = [index.select(q, 6, _core.DRAFT, seed=7, epsilon=0.3, tag_mask=3, tag_value=1)
                 for q in queries]
        out[threads] = (picks, index.search(queries, 9, tag_mask=3, tag_value=1))
    for threads in (2, 3, 5):
        for got, ref in zip(out[threads][0], out[1][0]):
            for a, b in zip(got, ref):
                np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(out[threads][1][0], out[1][1][0])
        np.testing.assert_array_equal(out[threads][1][1], out[1][1][1])


def test_an_idle_pool_sleeps(make_index, rng):
    """After a burst of parallel scans the workers spin briefly, then sleep: ~0% CPU when idle."""
    index, *_ = make_index(4000, 256)
    index.num_threads = 2
    assert index._scan_threads() == 2
    query = rng.standard_normal(256).astype(np.float32)
    for _ in range(300):
        index.search(query, 5)
    time.sleep(0.05)  # far longer than any spin
    cpu0, wall0 = time.process_time(), time.perf_counter()
    time.sleep(0.5)
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    # All threads of the process count; a spinning worker would show about `wall`.
    assert cpu < 0.1 * wall, f"the idle process used {cpu:.3f} s of CPU in {wall:.3f} s"
