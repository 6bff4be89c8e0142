"""Every SIMD level agrees with the scalar kernels; the environment override works."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from evokernel import _core

LEVELS = _core.simd_levels()  # the levels this build can run on this CPU


def test_levels_reported():
    levels = _core.simd_levels()
    assert levels[0] == "scalar" and _core.simd_level() in levels
    with pytest.raises(ValueError, match="not available"):
        _core._set_simd_level("sse9")


def run_all(index, queries, k, **kw):
    single = [index.search(q, k, **kw) for q in queries]
    batch = index.search(queries, k, **kw)
    return single, batch


@pytest.mark.parametrize("fp16", [False, True])
@pytest.mark.parametrize("dim", [3, 16, 100, 256])
@pytest.mark.parametrize("simd_level", LEVELS, indirect=True)
def test_level_agrees_with_scalar(make_index, rng, simd_level, dim, fp16):
    index, ids, vectors, tags = make_index(301, dim, fp16=fp16)
    queries = rng.standard_normal((7, dim)).astype(np.float32)
    k = 301
    single, batch = run_all(index, queries, k, tag_mask=1, tag_value=0)
    for b in range(7):
        # Within a level a pair's similarity does not depend on the kernel (single or batch).
        np.testing.assert_array_equal(single[b][0], batch[0][b])
        np.testing.assert_array_equal(single[b][1], batch[1][b])
    _core._set_simd_level("scalar")
    ref_single, _ = run_all(index, queries, k, tag_mask=1, tag_value=0)
    for b in range(7):
        got = dict(zip(single[b][0].tolist(), single[b][1].tolist()))
        ref = dict(zip(ref_single[b][0].tolist(), ref_single[b][1].tolist()))
        assert got.keys() == ref.keys()
        keys = [i for i in ref if i >= 0]
        np.testing.assert_allclose([got[i] for i in keys], [ref[i] for i in keys], atol=2e-6, rtol=0)
    _core._set_simd_level(simd_level)
    # select uses the same scans: same picks as scalar unless two scores are within rounding.
    q = rng.uniform(-1, 1, len(ids))
    index.set_q(ids, _core.DRAFT, q, np.ones(len(ids), np.int64))
    got = index.select(queries[0], 5, _core.DRAFT, epsilon=0.0)
    _core._set_simd_level("scalar")
    ref = index.select(queries[0], 5, _core.DRAFT, epsilon=0.0)
    np.testing.assert_allclose(got[1], ref[1], atol=2e-6)
    np.testing.assert_allclose(got[2], ref[2], atol=1e-4)


@pytest.mark.parametrize("simd_level", LEVELS, indirect=True)
def test_fp16_dequantisation_is_exact_on_every_level(rng, simd_level, unit):
    index = _core.ExperienceIndex(37, fp16=True)
    vectors = rng.standard_normal((4, 37)).astype(np.float32)
    vectors[0, :5] = [1e-6, -1e-7, 3e-5, 0.0, 1e4]  # subnormal halves and a dominant value
    index.add(np.arange(4), vectors)
    for i in range(4):
        expected = unit(vectors[i]).astype(np.float16).astype(np.float32)
        np.testing.assert_array_equal(index.vector(i), expected)


def _run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ, **env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=full_env, timeout=60, check=False)


def test_environment_override_selects_scalar():
    proc = _run_python("from evokernel import _core; print(_core.simd_level())",
                       EVOKERNEL_SIMD="scalar")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "scalar"


def test_environment_override_unknown_level_warns_and_falls_back():
    proc = _run_python(
        "import warnings\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    from evokernel import _core\n"
        "print(_core.simd_level() == _core.simd_levels()[-1], [str(x.message) for x in w])",
        EVOKERNEL_SIMD="sse9",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("True") and "EVOKERNEL_SIMD=sse9" in proc.stdout


@pytest.mark.skipif(not {"avx2", "avx512"} <= set(LEVELS), reason="needs AVX2 and AVX-512")
@pytest.mark.parametrize("fp16", [False, True])
def test_x86_levels_are_bit_identical(make_index, rng, fp16):
    """AVX2 and AVX-512 compute every pair with the same arithmetic: identical answers."""
    before = _core.simd_level()
    index, *_ = make_index(203, 72, fp16=fp16)
    queries = rng.standard_normal((13, 72)).astype(np.float32)
    try:
        out = {}
        for level in ("avx2", "avx512"):
            _core._set_simd_level(level)
            out[level] = run_all(index, queries, 50)
    finally:
        _core._set_simd_level(before)
    (s2, b2), (s5, b5) = out["avx2"], out["avx512"]
    for a, b in zip(b2, b5):
        np.testing.assert_array_equal(a, b)
    for (i2, v2), (i5, v5) in zip(s2, s5):
        np.testing.assert_array_equal(i2, i5)
        np.testing.assert_array_equal(v2, v5)
