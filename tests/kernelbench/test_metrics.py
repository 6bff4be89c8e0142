"""Metrics on hand-computed examples: denominators, fast_p, geometric means, CPU runs, edge cases."""

from __future__ import annotations

import math
from typing import Any

import pytest

from kernelbench.metrics import NOT_MEASURED, NOT_MEASURED_TEXT, compute_metrics, format_value, geomean, is_compiled


def res(
    pid: str,
    level: int,
    cat: str,
    status: str | None,
    *,
    speed: float | None = None,
    comp: float | None = None,
    backend: str = "cuda",
    rule: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    verdict = None
    if status is not None:
        verdict = {
            "status": status,
            "feasible": status == "correct",
            "rule": rule,
            "backend": backend,
            "speedup_eager": speed,
            "speedup_compile": comp,
            "latency_ms": 1.0 if speed else None,
            "message": f"{status} message",
            "flagged": False,
        }
    return {
        "type": "result",
        "problem_id": pid,
        "level": level,
        "category": cat,
        "status": status or "missing",
        "verdict": verdict,
        **extra,
    }


GPU_RUN = [
    res("level1/a", 1, "activation", "correct", speed=2.0, comp=1.0),
    res("level1/b", 1, "activation", "correct", speed=0.5, comp=0.25),
    res("level1/c", 1, "norm", "incorrect"),
    res("level2/d", 2, "fusion", None),  # missing solution
    res("level2/e", 2, "fusion", "rejected", rule="try_fallback"),  # static gate: never built
    res("level2/f", 2, "fusion", "correct", speed=1.6, comp=None),
]


def test_overall_hand_computed() -> None:
    m = compute_metrics(GPU_RUN, backend="cuda")
    o = m["overall"]
    assert m["speed_measured"] is True
    assert (o["n"], o["compiled"], o["correct"]) == (6, 4, 3)
    assert o["compile_rate"] == pytest.approx(4 / 6)
    assert o["correctness"] == pytest.approx(0.5)
    assert o["fast_0"] == pytest.approx(0.5)
    assert o["fast_1"] == pytest.approx(2 / 6)  # a (2.0) and f (1.6)
    assert o["fast_1.5"] == pytest.approx(2 / 6)
    assert o["fast_2"] == 0.0  # 2.0 is not *more* than 2x
    assert o["speedup_eager"] == pytest.approx((2.0 * 0.5 * 1.6) ** (1 / 3))
    assert o["speedup_compile"] == pytest.approx(0.5)  # f was not timed against compile
    assert o["timed"] == 3
    assert o["statuses"] == {"correct": 3, "incorrect": 1, "missing": 1, "rejected": 1}
    assert o["within_task_speedup"] is None and "no attempt histories" in o["notes"]["within_task_speedup"]
    assert "fast_1" not in o["notes"]


def test_levels_and_categories_use_their_own_denominators() -> None:
    m = compute_metrics(GPU_RUN, backend="cuda")
    l1, l2 = m["levels"]["1"], m["levels"]["2"]
    assert (l1["n"], l1["correctness"], l1["compile_rate"], l1["fast_1"]) == (
        3,
        pytest.approx(2 / 3),
        1.0,
        pytest.approx(1 / 3),
    )
    assert (l2["n"], l2["correctness"], l2["compile_rate"], l2["fast_1"]) == (
        3,
        pytest.approx(1 / 3),
        pytest.approx(1 / 3),
        pytest.approx(1 / 3),
    )
    assert l2["speedup_eager"] == pytest.approx(1.6)
    cats = m["categories"]
    assert list(cats) == ["activation", "fusion", "norm"]
    assert cats["activation"]["correctness"] == 1.0 and cats["activation"]["fast_1"] == 0.5
    assert cats["norm"]["correctness"] == 0.0
    assert cats["norm"]["speedup_eager"] is None and cats["norm"]["notes"]["speedup_eager"] == "no correct problems"
    rows = {r["problem_id"]: r for r in m["problems"]}
    assert rows["level2/d"]["status"] == "missing" and not rows["level2/d"]["compiled"]
    assert rows["level1/b"]["speedup_eager"] == 0.5


def test_missing_solutions_count_as_failures() -> None:
    one = [res("level1/a", 1, "activation", "correct", speed=3.0, comp=2.0)]
    with_missing = one + [res(f"level1/m{i}", 1, "activation", None) for i in range(3)]
    assert compute_metrics(one, backend="cuda")["overall"]["correctness"] == 1.0
    o = compute_metrics(with_missing, backend="cuda")["overall"]
    assert (o["correctness"], o["fast_2"], o["compile_rate"]) == (0.25, 0.25, 0.25)
    assert o["speedup_eager"] == pytest.approx(3.0)  # geometric mean over correct problems only


def test_zero_correct() -> None:
    run = [
        res("level1/a", 1, "conv", "incorrect"),
        res("level1/b", 1, "conv", "compile_error"),
        res("level1/c", 1, "conv", None),
    ]
    o = compute_metrics(run, backend="cuda")["overall"]
    assert (o["correct"], o["correctness"], o["compile_rate"]) == (0, 0.0, pytest.approx(1 / 3))
    assert all(o[k] == 0.0 for k in ("fast_0", "fast_1", "fast_1.5", "fast_2"))
    assert o["speedup_eager"] is None and o["notes"]["speedup_eager"] == "no correct problems"
    assert format_value(o, "speedup_eager") == "-"


def test_cpu_runs_do_not_report_speed() -> None:
    run = [
        res("level1/a", 1, "activation", "correct", speed=5.0, comp=5.0, backend="cpu"),
        res("level1/b", 1, "activation", "incorrect", backend="cpu"),
    ]
    for backend in ("cpu", None):  # from the header, or inferred from the verdicts
        m = compute_metrics(run, backend=backend)
        o = m["overall"]
        assert m["speed_measured"] is False
        assert o["correctness"] == 0.5 and o["fast_0"] == 0.5
        for key in ("fast_1", "fast_1.5", "fast_2", "speedup_eager", "speedup_compile", "within_task_speedup"):
            assert o[key] is None, key
            assert o["notes"][key] == NOT_MEASURED
            assert format_value(o, key) == NOT_MEASURED_TEXT
        assert m["problems"][0]["speedup_eager"] is None


def test_compiled_rules() -> None:
    assert is_compiled(res("x", 1, "c", "rejected", rule="ghost_replay"))  # ran, then caught
    assert not is_compiled(res("x", 1, "c", "rejected", rule="monkey_patch"))  # static gate
    assert not is_compiled(res("x", 1, "c", "compile_error"))
    assert is_compiled(res("x", 1, "c", "timeout"))
    assert not is_compiled(res("x", 1, "c", None))


def test_within_task_speedup_from_attempt_histories() -> None:
    run = [
        res("level1/a", 1, "activation", "correct", speed=2.0, comp=1.0, first_latency_ms=3.0, best_latency_ms=1.0),
        res("level1/b", 1, "activation", "correct", speed=1.0, comp=1.0, first_latency_ms=2.0, best_latency_ms=1.0),
        res("level1/c", 1, "activation", "incorrect", first_latency_ms=None, best_latency_ms=None),
    ]
    o = compute_metrics(run, backend="cuda", attempts=[{"type": "attempt"}])["overall"]
    assert o["within_task_speedup"] == pytest.approx(math.sqrt(6.0))
    assert o["within_task_speedup_median"] == pytest.approx(2.5)


def test_geomean() -> None:
    assert geomean([]) is None
    assert geomean([4.0, 1.0]) == pytest.approx(2.0)
    assert geomean([2.0, None, 0.0, float("inf")]) == pytest.approx(2.0)  # type: ignore[list-item]
