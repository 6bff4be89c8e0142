"""Comparison in the parent: tolerances by dtype, trivial outputs, where mismatches cluster."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evokernel.verify.compare import compare_case, describe_mismatches, passes
from evokernel.verify.settings import tolerance_for


def packed(*tensors: torch.Tensor) -> dict:
    return {"structure": "tensor" if len(tensors) == 1 else f"tuple({', '.join(['tensor'] * len(tensors))})",
            "leaves": list(tensors)}


def test_tolerances_by_dtype() -> None:
    assert tolerance_for("float32") == (1e-2, 1e-2)
    assert tolerance_for("torch.float16")[0] > 1e-2
    assert tolerance_for("bfloat16")[0] > tolerance_for("float16")[0]
    assert tolerance_for("int64") == (0.0, 0.0)
    assert tolerance_for("float32", atol=1e-4) == (1e-4, 1e-2)


def test_exact_match_passes_with_error_stats() -> None:
    x = torch.randn(8, 32)
    report = compare_case("trial_0", "trial", packed(x * 2), packed(x * 2), [x])
    assert report.ok and report.informative
    out = report.outputs[0]
    assert out.max_abs == 0.0 and out.mismatched == 0 and out.total == 256


def test_small_errors_within_tolerance_pass_and_large_fail() -> None:
    x = torch.randn(8, 32)
    ref = x * 3
    assert compare_case("t", "trial", packed(ref + 1e-3), packed(ref), [x]).ok
    report = compare_case("t", "trial", packed(ref + 0.5), packed(ref), [x])
    assert not report.ok and report.outputs[0].max_abs == pytest.approx(0.5, rel=1e-3)


def test_shape_dtype_and_structure_mismatches_are_named() -> None:
    x = torch.randn(4, 4)
    assert "shape (4, 5)" in compare_case("t", "trial", packed(torch.zeros(4, 5)), packed(x), [x]).outputs[0].problem
    r = compare_case("t", "trial", packed(x.double()), packed(x), [x])
    assert "dtype float64" in r.outputs[0].problem
    r = compare_case("t", "trial", packed(x, x), packed(x), [x])
    assert not r.ok and "structure" in r.problem
    assert "no output" in compare_case("t", "trial", None, packed(x), [x]).problem


def test_nan_where_reference_has_none_fails_and_matching_nan_passes() -> None:
    ref = torch.randn(4, 8)
    got = ref.clone()
    got[1, 2] = float("nan")
    report = compare_case("t", "trial", packed(got), packed(ref), [ref])
    assert not report.ok and "1 NaN where the reference has none" in report.outputs[0].problem
    ref_nan = ref.clone()
    ref_nan[0, 0] = float("nan")
    got_nan = ref_nan.clone()
    assert compare_case("t", "trial", packed(got_nan), packed(ref_nan), [ref]).ok
    inf = ref.clone()
    inf[0, 0] = float("inf")
    assert not passes(inf, ref, 1e-2, 1e-2)


def test_degenerate_tolerance_is_tightened_softmax() -> None:
    # softmax over 4096 uniform inputs: every value ~2.4e-4, far below atol = 1e-2
    x = torch.rand(4, 4096)
    ref = torch.softmax(x, dim=1)
    zeros = compare_case("t", "trial", packed(torch.zeros_like(ref)), packed(ref), [x])
    assert not zeros.ok, "zeros must not pass the softmax check"
    assert zeros.outputs[0].tightened and zeros.outputs[0].atol < 1e-4
    assert zeros.outputs[0].trivial == "all zeros"
    uniform = compare_case("t", "trial", packed(torch.full_like(ref, 1 / 4096)), packed(ref), [x])
    assert not uniform.ok
    good = compare_case("t", "trial", packed(ref * (1 + 1e-6)), packed(ref), [x])
    assert good.ok and good.informative


def test_reference_equal_to_an_input_is_uninformative() -> None:
    x = torch.rand(8, 64)  # relu is the identity here
    report = compare_case("t", "trial", packed(x.clone()), packed(torch.relu(x)), [x])
    assert report.ok and not report.informative
    signed = x * (torch.randint(0, 2, x.shape) * 2 - 1)
    probe = compare_case("p", "probe", packed(signed.clone()), packed(torch.relu(signed)), [signed])
    assert not probe.ok and probe.informative
    assert probe.outputs[0].trivial == "input 0"


def test_large_outputs_keep_default_tolerance() -> None:
    x = torch.randn(16, 64)
    out = compare_case("t", "trial", packed(x * 10), packed(x * 10), [x]).outputs[0]
    assert not out.tightened and (out.atol, out.rtol) == (1e-2, 1e-2)


def test_integer_outputs_compare_exactly() -> None:
    idx = torch.randint(0, 10, (32,))
    assert compare_case("t", "trial", packed(idx.clone()), packed(idx), []).ok
    off = idx.clone()
    off[3] += 1
    assert not compare_case("t", "trial", packed(off), packed(idx), []).ok


def test_location_rows_and_last_columns() -> None:
    mask = np.zeros((64, 128), dtype=bool)
    mask[0:16, -37:] = True
    text = describe_mismatches(mask)
    assert text.startswith("592/8192 elements")
    assert "rows: first 16 of 64" in text and "columns: last 37 of 128" in text


def test_location_flat_suffix() -> None:
    mask = np.zeros((8192,), dtype=bool)
    mask[4096:] = True
    assert "elements with flat index >= 4096" in describe_mismatches(mask)
    mask2 = np.zeros((16, 512), dtype=bool)
    mask2.reshape(-1)[:100] = True
    assert "flat index < 100" in describe_mismatches(mask2)


def test_location_strided_and_everywhere() -> None:
    mask = np.zeros((4, 64), dtype=bool)
    mask[:, ::2] = True
    assert "every 2th from 0 to 62" in describe_mismatches(mask)
    assert "everywhere" in describe_mismatches(np.ones((3, 3), dtype=bool))
    assert describe_mismatches(np.zeros((3, 3), dtype=bool)) == ""


def test_worst_element_reported() -> None:
    ref = torch.zeros(4, 8)
    got = ref.clone()
    got[2, 5] = 3.0
    got[1, 1] = 0.5
    out = compare_case("t", "trial", packed(got), packed(ref + 1.0), [ref]).outputs[0]
    assert out.worst is not None and out.worst["expected"] == 1.0


def test_scalar_outputs() -> None:
    got = {"structure": "tuple(tensor, float)", "leaves": [torch.ones(2), 1.0]}
    exp = {"structure": "tuple(tensor, float)", "leaves": [torch.ones(2), 1.0]}
    assert compare_case("t", "trial", got, exp, []).ok
    bad = {"structure": "tuple(tensor, float)", "leaves": [torch.ones(2), 2.0]}
    assert not compare_case("t", "trial", bad, exp, []).ok
