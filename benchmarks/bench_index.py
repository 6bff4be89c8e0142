"""Benchmark of the compiled ExperienceIndex against numpy (and faiss-cpu when installed).

Prints one JSON object per line:
    {"op", "impl", "n", "dim", "k", "batch", "p50_ms", "per_s", ...}
with extra fields p20_ms, p80_ms, reps and, for scans, gb_s (embedding bytes read per second).

ops
  search     exact top-k cosine, one query (batch=1) and a batch of queries (batch=64)
  select     the full value-driven retrieval (filter passing 1/4 of the rows, pool 3*N, z-score
             fusion, Q floor, epsilon slots); select_all is the same without a tag filter
  update_q   Monte-Carlo Q update of 10k distinct ids
  read       the memory-read floor: impl "floor", method "cpp_read" (ExperienceIndex._read_floor:
             a tight C++ loop summing every stored float once, with the same loads, threads and
             chunking as the scan; the floor the targets refer to) and method "numpy_sum" (one
             numpy sum over the same matrix, single-threaded)

per_s: queries per second for search/select, ids per second for update_q, bytes read once per
second for read. Usage: python benchmarks/bench_index.py [--n 10000 100000] [--ops search select]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from typing import Any, Callable

import numpy as np

from evokernel import _core

try:  # optional baseline
    import faiss  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the environment
    faiss = None

TAG_MASK, TAG_VALUE = 3, 1  # kind bit and backend bit: one of four groups passes


def timeit(fn: Callable[[], Any], min_reps: int = 5, max_reps: int = 200, budget_s: float = 1.0):
    """Warm up, then time `fn` until the budget or max_reps is spent; returns (p20, p50, p80) ms."""
    fn()
    fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < max_reps and (len(times) < min_reps or time.perf_counter() - start < budget_s):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    p20, p50, p80 = np.percentile(times, [20, 50, 80])
    return float(p20), float(p50), float(p80), len(times)


def emit(op: str, impl: str, n: int, dim: int, k: int, batch: int, stats, per_item: float,
         nbytes: int | None = None, **extra: Any) -> None:
    p20, p50, p80, reps = stats
    rec: dict[str, Any] = {
        "op": op, "impl": impl, "n": n, "dim": dim, "k": k, "batch": batch,
        "p50_ms": round(p50, 4), "per_s": round(per_item * 1e3 / p50, 1),
        "p20_ms": round(p20, 4), "p80_ms": round(p80, 4), "reps": reps,
    }
    if nbytes is not None:
        rec["gb_s"] = round(nbytes / (p50 * 1e-3) / 1e9, 2)
    rec.update(extra)
    print(json.dumps(rec), flush=True)


def zscore(x: np.ndarray) -> np.ndarray:
    sd = x.std()
    return np.zeros_like(x) if sd == 0 else (x - x.mean()) / sd


def numpy_select(E, ids, tags, Q, q, n, *, mask=0, value=0, pool_factor=3.0, w_sim=0.5,
                 w_q=0.5, q_floor=-0.8, epsilon=0.1, rng=None):
    """The value-driven retrieval as a careful numpy user writes it."""
    qn = q / np.linalg.norm(q)
    sims = E @ qn  # one matvec
    if mask:
        cand = np.flatnonzero((tags & mask) == value)
        csims = sims[cand]
    else:
        cand = None
        csims = sims
    K = min(math.ceil(pool_factor * n), csims.shape[0])
    part = np.argpartition(-csims, K - 1)[:K] if K < csims.shape[0] else np.arange(csims.shape[0])
    rows = part if cand is None else cand[part]
    ps = csims[part].astype(np.float64)
    pq = Q[rows]
    score = w_sim * zscore(ps) + w_q * zscore(pq)
    keep = np.ones(K, dtype=bool)
    low = np.flatnonzero(pq < q_floor)
    if K > n and low.size:
        low = low[np.lexsort((ids[rows][low], pq[low]))][: K - n]
        keep[low] = False
    idx = np.flatnonzero(keep)
    order = idx[np.lexsort((ids[rows][idx], -ps[idx], -score[idx]))].tolist()
    out = []
    for _ in range(min(n, len(order))):
        j = int(rng.random() * len(order)) if rng.random() < epsilon else 0
        out.append(order.pop(j))
    return ids[rows][out], ps[out], score[out]


def bench_n(n: int, args: argparse.Namespace) -> None:
    dim, k, batch = args.dim, args.k, args.batch
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, dim), dtype=np.float32)
    ids = np.arange(n, dtype=np.int64) * 7 + 3  # not row numbers
    tags = rng.integers(0, 4, n).astype(np.uint32)
    index = _core.ExperienceIndex(dim, fp16=args.fp16)
    index.num_threads = args.threads
    index.add(ids, X, tags)
    E = X / np.linalg.norm(X, axis=1, keepdims=True)
    del X
    Q = rng.uniform(-1, 1, n)
    index.set_q(ids, _core.DRAFT, Q, np.ones(n, dtype=np.int64))
    nbytes = n * dim * (2 if args.fp16 else 4)
    q1 = rng.standard_normal(dim, dtype=np.float32)
    qb = rng.standard_normal((batch, dim), dtype=np.float32)
    slow = n >= 1_000_000
    reps = dict(min_reps=3 if slow else 5, budget_s=args.budget)

    if "read" in args.ops:
        emit("read", "floor", n, dim, k, 1, timeit(index._read_floor, **reps), nbytes, nbytes,
             method="cpp_read")
        emit("read", "floor", n, dim, k, 1, timeit(lambda: E.sum(), **reps), nbytes, nbytes,
             method="numpy_sum")

    # one implementation at a time: a library's idle worker threads keep spinning for a while after its
    # calls (numpy's BLAS after a matmul, faiss's OpenMP after a search), and on a small machine they tax
    # whatever is measured next (select at 1e4 read 3.4x numpy right after the numpy search, 5.8x alone)
    for impl in [i for i in ("core", "numpy", "faiss") if i in args.impl]:
        if impl == "faiss" and faiss is None:
            continue
        _bench_impl(impl, index, E, ids, tags, Q, q1, qb, n, nbytes, reps, args)


def _bench_impl(impl: str, index: Any, E: np.ndarray, ids: np.ndarray, tags: np.ndarray, Q: np.ndarray,
                q1: np.ndarray, qb: np.ndarray, n: int, nbytes: int, reps: dict[str, Any],
                args: argparse.Namespace) -> None:
    dim, k, batch = args.dim, args.k, args.batch
    if "search" in args.ops:
        fidx = None
        if impl == "faiss":
            fidx = faiss.IndexFlatIP(dim)
            fidx.add(E)
        for b, qs in ((1, q1), (batch, qb)):
            per = float(b)
            if impl == "core":
                emit("search", "core", n, dim, k, b, timeit(lambda: index.search(qs, k), **reps),
                     per, nbytes)
            if impl == "numpy":
                def np_search(qs=qs):
                    qq = np.atleast_2d(qs)
                    qq = qq / np.linalg.norm(qq, axis=1, keepdims=True)
                    s = qq @ E.T
                    top = np.argpartition(-s, k - 1, axis=1)[:, :k]
                    ts = np.take_along_axis(s, top, 1)
                    o = np.argsort(-ts, axis=1)
                    return ids[np.take_along_axis(top, o, 1)], np.take_along_axis(ts, o, 1)
                emit("search", "numpy", n, dim, k, b, timeit(np_search, **reps), per, nbytes)
            if fidx is not None:
                def f_search(qs=qs):
                    qq = np.atleast_2d(qs)
                    qq = qq / np.linalg.norm(qq, axis=1, keepdims=True)
                    return fidx.search(qq, k)
                emit("search", "faiss", n, dim, k, b, timeit(f_search, **reps), per, nbytes)
        del fidx

    if "select" in args.ops:
        for op, mask, value in (("select", TAG_MASK, TAG_VALUE), ("select_all", 0, 0)):
            scanned = nbytes // 4 if mask else nbytes
            if impl == "core":
                emit(op, "core", n, dim, k, 1, timeit(lambda: index.select(
                    q1, args.select_n, _core.DRAFT, seed=1, tag_mask=mask, tag_value=value),
                    **reps), 1, scanned, select_n=args.select_n)
            if impl == "numpy":
                r = np.random.default_rng(1)
                emit(op, "numpy", n, dim, k, 1, timeit(lambda: numpy_select(
                    E, ids, tags, Q, q1, args.select_n, mask=mask, value=value, rng=r), **reps),
                    1, nbytes, select_n=args.select_n)

    if "update_q" in args.ops and impl in ("core", "numpy"):
        m = min(10_000, n)
        upd = np.random.default_rng(2).choice(ids, m, replace=False)
        rewards = np.random.default_rng(3).uniform(-1, 1, m)
        ureps = dict(min_reps=20, max_reps=2000, budget_s=args.budget)
        if impl == "core":
            emit("update_q", "core", n, dim, k, m, timeit(
                lambda: index.update_q(upd, _core.DRAFT, rewards), **ureps), m)
        if impl == "numpy":
            Qn = Q.copy()
            visits = np.zeros(n, dtype=np.int64)
            sorted_ids = ids  # already sorted: a numpy user keeps a sorted id column

            def np_update():
                rows = np.searchsorted(sorted_ids, upd)
                Qn[rows] += 0.2 * (rewards - Qn[rows])
                visits[rows] += 1
                return Qn[rows]
            emit("update_q", "numpy", n, dim, k, m, timeit(np_update, **ureps), m)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--select-n", type=int, default=4, help="N of select (pool = 3N)")
    p.add_argument("--threads", type=int, default=0, help="core scan threads (0 = auto)")
    p.add_argument("--fp16", action="store_true", help="core stores fp16")
    p.add_argument("--budget", type=float, default=1.0, help="seconds of timing per case")
    p.add_argument("--ops", nargs="+", default=["read", "search", "select", "update_q"],
                   choices=["read", "search", "select", "update_q"])
    p.add_argument("--impl", nargs="+", default=["core", "numpy", "faiss"],
                   choices=["core", "numpy", "faiss"])
    args = p.parse_args(argv)
    if faiss is None and "faiss" in args.impl:
        print("faiss not installed: skipping the faiss baseline", file=sys.stderr)
    print(json.dumps({"info": "bench_index", "simd": _core.simd_level(),
                      "faiss": getattr(faiss, "__version__", None),
                      "numpy": np.__version__}), file=sys.stderr, flush=True)
    for n in args.n:
        bench_n(n, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
