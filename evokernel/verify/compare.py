"""Compare a candidate's outputs with the reference's, in the parent process.

Tolerances come from :func:`evokernel.verify.settings.tolerance_for`. A tolerance that cannot tell the
reference from a trivial output (zeros, the output's mean, an input of the same shape) is no check:
it is tightened, by factors of ten, until every trivial output misses by a margin of ten; where even
the tightest tolerance the dtype allows cannot separate them, the case is marked uninformative and
other cases (probes) decide. Mismatch reports say where errors cluster.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from evokernel.verify.settings import tolerance_for

__all__ = [
    "OutputReport",
    "CaseReport",
    "compare_case",
    "passes",
    "describe_mismatches",
    "TRIVIAL_MARGIN",
]

TRIVIAL_MARGIN = 10.0  # a trivial output must miss by this factor times the tolerance
_MAX_TIGHTENING = 6  # at most 1e-6 of the configured tolerance


@dataclass
class OutputReport:
    """Errors of one output tensor of one case."""

    index: int
    shape: list[int]
    dtype: str
    ok: bool
    max_abs: float = 0.0
    mean_abs: float = 0.0
    max_rel: float = 0.0
    mean_rel: float = 0.0
    mismatched: int = 0
    total: int = 0
    atol: float = 0.0
    rtol: float = 0.0
    tightened: bool = False
    informative: bool = True
    location: str = ""
    worst: dict[str, Any] | None = None
    problem: str = ""  # shape/dtype/structure/NaN problem in words
    trivial: str = ""  # what trivial output the candidate's output equals, if any


@dataclass
class CaseReport:
    """One case (trial, probe, ghost replay, re-check): did every output match?"""

    name: str
    kind: str
    ok: bool
    informative: bool
    input_shapes: list[list[int]] = field(default_factory=list)
    outputs: list[OutputReport] = field(default_factory=list)
    problem: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON form used in Verdict.trials."""
        return asdict(self)

    def first_failure(self) -> OutputReport | None:
        """The first output that did not match."""
        return next((o for o in self.outputs if not o.ok), None)


def _is_float(t: torch.Tensor) -> bool:
    return t.is_floating_point() or t.is_complex()


def _as_real64(t: torch.Tensor) -> np.ndarray:
    """float64 numpy copy (numpy: no thread pool to wake for the small tensors compared here)."""
    t = t.detach().cpu()
    if t.is_complex():
        t = torch.view_as_real(t)
    if t.dtype in (torch.bfloat16,) or str(t.dtype).startswith("torch.float8"):
        t = t.to(torch.float32)
    return t.numpy().astype(np.float64)


def passes(got: torch.Tensor, expected: torch.Tensor, atol: float, rtol: float) -> bool:
    """allclose with NaN allowed only where the reference has NaN, and infinities matched exactly."""
    if got.shape != expected.shape:
        return False
    return not bool(_mismatch_mask(_as_real64(got), _as_real64(expected), atol, rtol).any())


def _abs_diff(g: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    finite = np.isfinite(g) & np.isfinite(e)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.where(finite, np.abs(g - e), 0.0)
    return diff, finite


def _mismatch_mask(g: np.ndarray, e: np.ndarray, atol: float, rtol: float) -> np.ndarray:
    diff, finite = _abs_diff(g, e)
    e_inf = np.isinf(e)
    bad = finite & (diff > atol + rtol * np.abs(e))
    bad |= np.isnan(g) != np.isnan(e)
    with np.errstate(invalid="ignore"):
        bad |= e_inf & (g != e)
    bad |= np.isinf(g) & ~e_inf
    return bad


def _ranges(values: list[int], size: int) -> str:
    """Compact text for a sorted list of distinct indices along one dimension of length size."""
    k = len(values)
    lo, hi = values[0], values[-1]
    if k == size:
        return f"all {size}"
    if hi - lo + 1 == k:  # contiguous
        if lo == 0:
            return f"first {k} of {size}" if k > 1 else f"index 0 of {size}"
        if hi == size - 1:
            return f"last {k} of {size}" if k > 1 else f"index {hi} (last) of {size}"
        return f"{lo}-{hi} of {size}" if k > 1 else f"index {lo} of {size}"
    steps = {b - a for a, b in zip(values, values[1:])}
    if len(steps) == 1:
        return f"every {steps.pop()}th from {lo} to {hi} ({k} of {size})"
    return f"{k} of {size} in {lo}-{hi}"


def describe_mismatches(mask: np.ndarray | torch.Tensor) -> str:
    """Where mismatches cluster, e.g. "37/2048 elements (1.8%); rows: all 16; columns: last 37 of 128"."""
    mask = mask.numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
    flat = mask.reshape(-1)
    total = flat.size
    idx = np.flatnonzero(flat)
    n = int(idx.size)
    if n == 0:
        return ""
    head = f"{n}/{total} elements ({100.0 * n / total:.3g}%)"
    first, last = int(idx[0]), int(idx[-1])
    if n == total:
        return f"{head}: everywhere"
    if last == total - 1 and last - first + 1 == n:
        return f"{head}: elements with flat index >= {first}"
    if first == 0 and last == n - 1:
        return f"{head}: elements with flat index < {n}"
    shape = list(mask.shape)
    head += f", flat index {first}-{last}"
    if len(shape) < 2:
        return head
    coords = np.unravel_index(idx, shape)
    names = ["rows", "columns"] if len(shape) == 2 else [f"dim{d}" for d in range(len(shape))]
    parts = []
    for d, size in enumerate(shape):
        values = np.unique(coords[d]).tolist()
        parts.append(f"{names[d]}: {_ranges(values, size)}")
    return f"{head}; " + "; ".join(parts)


def _unravel(flat_index: int, shape: list[int]) -> list[int]:
    out = []
    for size in reversed(shape):
        out.append(flat_index % size if size else 0)
        flat_index = flat_index // size if size else 0
    return list(reversed(out))


def _trivials(expected: torch.Tensor, inputs: list[Any]) -> list[tuple[str, np.ndarray]]:
    e = _as_real64(expected)
    finite = e[np.isfinite(e)]
    mean = float(finite.mean()) if finite.size else 0.0
    out = [("all zeros", np.zeros_like(e)), (f"constant (the mean, {mean:.4g})", np.full_like(e, mean))]
    for i, x in enumerate(inputs):
        if isinstance(x, torch.Tensor) and _is_float(x) and tuple(x.shape) == tuple(expected.shape):
            out.append((f"input {i}", _as_real64(x)))
    return out


def _pass_scale(t: np.ndarray, e: np.ndarray, atol: float, rtol: float) -> float:
    """Smallest s such that ``t`` passes against ``e`` at tolerance (s * atol, s * rtol); inf if none."""
    if bool((np.isnan(t) != np.isnan(e)).any()):
        return math.inf
    e_inf = np.isinf(e)
    with np.errstate(invalid="ignore"):
        if bool((e_inf & (t != e)).any()) or bool((np.isinf(t) & ~e_inf).any()):
            return math.inf
    d, _ = _abs_diff(t, e)
    den = atol + rtol * np.abs(np.where(np.isfinite(e), e, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(d == 0, 0.0, d / den)  # d > 0 with den == 0 gives inf
    return float(ratio.max()) if ratio.size else 0.0


def _effective_tolerance(
    e: np.ndarray, trivials: list[tuple[str, np.ndarray]], atol: float, rtol: float, dtype: torch.dtype
) -> tuple[float, float, bool, bool]:
    """(atol, rtol, tightened, informative) for one expected output.

    s = 1, 1/10, 1/100, ... : the largest s at which every trivial output misses the tolerance
    (s * atol, s * rtol) by ``TRIVIAL_MARGIN``. Never below what the dtype can resolve; a case where
    even that cannot separate a trivial output is uninformative.
    """
    if not trivials or (atol == 0.0 and rtol == 0.0):
        return atol, rtol, False, True
    need = min(_pass_scale(t, e, atol, rtol) for _, t in trivials)  # a trivial passes at any s >= need
    if need > TRIVIAL_MARGIN:
        return atol, rtol, False, True
    finite = e[np.isfinite(e)]
    scale = float(np.abs(finite).max()) if finite.size else 0.0
    eps = torch.finfo(dtype).eps if dtype.is_floating_point else 0.0
    min_s = max(10.0 ** -_MAX_TIGHTENING, (16.0 * eps * scale / atol) if atol > 0 else 0.0)
    s = 1.0
    while s * TRIVIAL_MARGIN >= need and s / 10.0 >= min_s:
        s /= 10.0
    informative = s * TRIVIAL_MARGIN < need or s < need
    return atol * s, rtol * s, s < 1.0, informative


def compare_output(
    index: int,
    got: Any,
    expected: Any,
    inputs: list[Any],
    atol: float | None,
    rtol: float | None,
) -> OutputReport:
    """Compare one output leaf (tensor or Python scalar)."""
    if not isinstance(expected, torch.Tensor):
        exp_t = torch.as_tensor(expected) if isinstance(expected, (int, float, bool)) else None
        if exp_t is None:
            ok = got == expected
            return OutputReport(index, [], type(expected).__name__, bool(ok), problem="" if ok else
                                f"expected {expected!r}, got {got!r}"[:200])
        expected = exp_t
        if isinstance(got, (int, float, bool)):
            got = torch.as_tensor(got, dtype=expected.dtype)
    shape, dtype = list(expected.shape), str(expected.dtype).removeprefix("torch.")
    report = OutputReport(index, shape, dtype, False, total=expected.numel())
    if not isinstance(got, torch.Tensor):
        report.problem = f"expected a tensor of shape {tuple(shape)}, got {type(got).__name__}"
        return report
    if list(got.shape) != shape:
        report.problem = f"shape {tuple(got.shape)}, expected {tuple(shape)}"
        return report
    if got.dtype != expected.dtype:
        report.problem = f"dtype {str(got.dtype).removeprefix('torch.')}, expected {dtype}"
        return report
    a0, r0 = tolerance_for(dtype, atol, rtol)
    g, e = _as_real64(got), _as_real64(expected)
    trivials = _trivials(expected, inputs) if _is_float(expected) and e.size > 1 else []
    a, r, tightened, informative = _effective_tolerance(e, trivials, a0, r0, expected.dtype)
    report.atol, report.rtol, report.tightened, report.informative = a, r, tightened, informative
    if e.size == 0:
        report.ok = True
        return report
    mask = _mismatch_mask(g, e, a, r)
    diff, finite = _abs_diff(g, e)
    rel = diff / np.maximum(np.abs(np.where(np.isfinite(e), e, 0.0)), max(a0, 1e-12))
    report.max_abs = float(diff.max())
    report.mean_abs = float(diff.mean())
    report.max_rel = float(rel.max())
    report.mean_rel = float(rel.mean())
    report.mismatched = int(mask.sum())
    report.ok = report.mismatched == 0
    if not report.ok:
        bad_nan = np.isnan(g) & ~np.isnan(e)
        bad_inf = np.isinf(g) & ~np.isinf(e)
        notes = []
        if int(bad_nan.sum()):
            notes.append(f"{int(bad_nan.sum())} NaN where the reference has none")
        if int(bad_inf.sum()):
            notes.append(f"{int(bad_inf.sum())} Inf where the reference has none")
        report.problem = "; ".join(notes)
        report.location = describe_mismatches(mask.reshape(e.shape))
        score = np.where(mask, np.where(finite, diff, np.inf), -1.0)
        worst = int(np.argmax(score.reshape(-1)))
        report.worst = {
            "index": _unravel(worst, shape),
            "got": float(g.reshape(-1)[worst]),
            "expected": float(e.reshape(-1)[worst]),
        }
        tight = (max(a * 1e-3, 1e-12), r * 1e-3)
        for name, t in trivials:
            if t.shape == g.shape and not bool(_mismatch_mask(g, t, *tight).any()):
                report.trivial = name
                break
    return report


def compare_case(
    name: str,
    kind: str,
    got: dict[str, Any] | None,
    expected: dict[str, Any],
    inputs: list[Any],
    atol: float | None = None,
    rtol: float | None = None,
) -> CaseReport:
    """Compare one case's outputs ({"structure", "leaves"} from both sides)."""
    shapes = [list(x.shape) for x in inputs if isinstance(x, torch.Tensor)]
    if got is None:
        return CaseReport(name, kind, False, True, shapes, problem="no output recorded")
    if got.get("structure") != expected.get("structure"):
        return CaseReport(
            name, kind, False, True, shapes,
            problem=f"output structure {got.get('structure')}, expected {expected.get('structure')}",
        )
    reports = [
        compare_output(i, g, e, inputs, atol, rtol)
        for i, (g, e) in enumerate(zip(got["leaves"], expected["leaves"]))
    ]
    ok = all(r.ok for r in reports)
    informative = any(r.informative for r in reports) if reports else True
    return CaseReport(name, kind, ok, informative, shapes, reports)
