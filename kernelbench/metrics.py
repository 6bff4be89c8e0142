"""KernelBench metrics over a run's result records: per problem, per level, per category, overall.

For every group of problems (denominators are always all problems of the group; a missing
solution counts as a failure):

- ``compile_rate``: share whose candidate built (imported, constructed, ran far enough to be judged);
- ``correctness``: share with a feasible (``correct``) kernel;
- ``fast_p`` for p in 0, 1, 1.5, 2: share that is correct *and* more than p times faster than the
  eager reference (fast_0 = correctness);
- ``speedup_eager`` / ``speedup_compile``: geometric-mean speedup over eager PyTorch and over
  torch.compile, on the correct problems that were timed;
- ``within_task_speedup``: geometric mean (and median) over problems of first feasible latency /
  best latency, for agent runs that record attempt histories.

Speed is measured on GPUs and NPUs only. On the CPU backend (the Triton interpreter) every speed
metric is ``None`` and ``notes[metric]`` says "not measured on cpu"; tables print
``NOT_MEASURED_TEXT`` instead of a number.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "P_VALUES",
    "NOT_MEASURED",
    "NOT_MEASURED_TEXT",
    "compute_metrics",
    "group_metrics",
    "problem_row",
    "is_compiled",
    "fast_key",
    "geomean",
    "format_value",
]

P_VALUES: tuple[float, ...] = (0.0, 1.0, 1.5, 2.0)
NOT_MEASURED = "not measured on cpu"
NOT_MEASURED_TEXT = "not measured (CPU interpreter)"
NO_HISTORY = "no attempt histories in this run"
NONE_CORRECT = "no correct problems"
NOT_TIMED = "no correct problem was timed"

# Statuses whose candidate got past building (import + construction); "rejected" depends on the rule.
_RAN_STATUSES = frozenset({"correct", "incorrect", "runtime_error", "timeout", "crashed", "memory_exceeded"})


def fast_key(p: float) -> str:
    """The key of fast_p in the metrics dicts: ``"fast_0"``, ``"fast_1"``, ``"fast_1.5"``, ``"fast_2"``."""
    return f"fast_{p:g}"


def geomean(values: Iterable[float]) -> float | None:
    """Geometric mean of positive values; None when there are none."""
    logs = [math.log(v) for v in values if v is not None and v > 0 and math.isfinite(v)]
    return math.exp(sum(logs) / len(logs)) if logs else None


def _static_rules() -> frozenset[str]:
    try:
        from evokernel.verify.rules import RULES
    except ImportError:  # pragma: no cover - the verifier is part of the package
        return frozenset()
    return frozenset(name for name, rule in RULES.items() if rule.stage == "static")


def is_compiled(result: dict[str, Any]) -> bool:
    """Whether the result's candidate built: not missing, no compile error, not stopped by the static gate.

    A candidate rejected by a dynamic anti-hack check (it ran) counts as compiled. A verdict that
    carries an explicit ``compiled`` flag is believed.
    """
    verdict = result.get("verdict") or {}
    if "compiled" in verdict:
        return bool(verdict["compiled"])
    status = result.get("status") or verdict.get("status")
    if status in _RAN_STATUSES:
        if status == "runtime_error" and verdict.get("phase") in ("import", "build", "construct"):
            return False
        return True
    if status == "rejected":
        rule = verdict.get("rule")
        return rule is not None and rule not in _static_rules()
    return False


def _speed_measured(results: Sequence[dict[str, Any]], backend: str | None) -> bool:
    if backend == "cpu":
        return False
    if backend in (None, "unknown", "auto"):
        backends = {(r.get("verdict") or {}).get("backend") for r in results} - {None, ""}
        return bool(backends) and backends != {"cpu"}
    return True


def _pos(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0:
        return float(value)
    return None


def _within_task(result: dict[str, Any]) -> float | None:
    first, best = _pos(result.get("first_latency_ms")), _pos(result.get("best_latency_ms"))
    return first / best if first is not None and best is not None else None


def problem_row(result: dict[str, Any], *, measured: bool = True) -> dict[str, Any]:
    """Per-problem metrics: status, compiled, correct, speedups (None where not measured)."""
    verdict = result.get("verdict") or {}
    correct = result.get("status") == "correct" or bool(verdict.get("feasible"))
    row = {
        "problem_id": result.get("problem_id"),
        "level": result.get("level"),
        "category": result.get("category") or "other",
        "status": result.get("status") or verdict.get("status") or "missing",
        "compiled": is_compiled(result),
        "correct": correct,
        "latency_ms": _pos(verdict.get("latency_ms")) if measured else None,
        "speedup_eager": _pos(verdict.get("speedup_eager")) if measured and correct else None,
        "speedup_compile": _pos(verdict.get("speedup_compile")) if measured and correct else None,
        "within_task_speedup": _within_task(result) if measured else None,
        "flagged": bool(verdict.get("flagged")),
        "message": result.get("message") or verdict.get("message") or "",
    }
    return row


def _histories(results: Sequence[dict[str, Any]], attempts: Sequence[dict[str, Any]] | None) -> bool:
    if attempts:
        return True
    return any("first_feasible_attempt" in r or "first_latency_ms" in r for r in results)


def group_metrics(rows: Sequence[dict[str, Any]], *, measured: bool, histories: bool) -> dict[str, Any]:
    """The metric block of one group of problem rows (see module docstring)."""
    n = len(rows)
    compiled = sum(1 for r in rows if r["compiled"])
    correct_rows = [r for r in rows if r["correct"]]
    correct = len(correct_rows)
    statuses: dict[str, int] = {}
    for r in rows:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    notes: dict[str, str] = {}
    fast: dict[str, float | None] = {}
    for p in P_VALUES:
        key = fast_key(p)
        if p == 0.0:
            fast[key] = correct / n if n else None
        elif not measured:
            fast[key] = None
            notes[key] = NOT_MEASURED
        else:
            fast[key] = sum(1 for r in correct_rows if (r["speedup_eager"] or 0.0) > p) / n if n else None
    out: dict[str, Any] = {
        "n": n,
        "compiled": compiled,
        "compile_rate": compiled / n if n else None,
        "correct": correct,
        "correctness": correct / n if n else None,
        **fast,
        "speedup_eager": None,
        "speedup_compile": None,
        "within_task_speedup": None,
        "within_task_speedup_median": None,
        "timed": 0,
        "flagged": sum(1 for r in rows if r["flagged"]),
        "statuses": dict(sorted(statuses.items())),
        "notes": notes,
    }
    for key in ("speedup_eager", "speedup_compile"):
        if not measured:
            notes[key] = NOT_MEASURED
            continue
        values = [r[key] for r in correct_rows if r[key] is not None]
        out[key] = geomean(values)
        if out[key] is None:
            notes[key] = NONE_CORRECT if not correct_rows else NOT_TIMED
    out["timed"] = sum(1 for r in correct_rows if r["speedup_eager"] is not None)
    if not measured:
        notes["within_task_speedup"] = NOT_MEASURED
    elif not histories:
        notes["within_task_speedup"] = NO_HISTORY
    else:
        values = [r["within_task_speedup"] for r in rows if r["within_task_speedup"] is not None]
        out["within_task_speedup"] = geomean(values)
        out["within_task_speedup_median"] = statistics.median(values) if values else None
        if not values:
            notes["within_task_speedup"] = "no problem has two timed feasible kernels"
    return out


def _level_key(level: Any) -> str:
    return str(level) if level is not None else "none"


def compute_metrics(
    results: Sequence[dict[str, Any]],
    *,
    backend: str | None = None,
    attempts: Sequence[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Metrics of a run: ``{"speed_measured", "backend", "overall", "levels", "categories", "problems"}``.

    ``results`` are result records (one per problem of the suite, missing solutions included);
    ``backend`` is the run's backend ("cpu" turns every speed metric into None plus a note).
    """
    measured = _speed_measured(results, backend)
    histories = _histories(results, attempts)
    rows = [problem_row(r, measured=measured) for r in results]
    levels: dict[str, list[dict[str, Any]]] = {}
    categories: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        levels.setdefault(_level_key(row["level"]), []).append(row)
        categories.setdefault(row["category"], []).append(row)

    def level_order(key: str) -> tuple[int, str]:
        return (int(key), key) if key.isdigit() else (10**9, key)

    return {
        "speed_measured": measured,
        "backend": backend,
        "overall": group_metrics(rows, measured=measured, histories=histories),
        "levels": {
            k: group_metrics(levels[k], measured=measured, histories=histories) for k in sorted(levels, key=level_order)
        },
        "categories": {
            k: group_metrics(categories[k], measured=measured, histories=histories) for k in sorted(categories)
        },
        "problems": rows,
    }


def format_value(block: dict[str, Any], key: str, *, percent: bool | None = None) -> str:
    """A metric as table text: percentages for rates, ``1.23x`` for speedups, the note where None."""
    value = block.get(key)
    if value is None:
        note = (block.get("notes") or {}).get(key)
        return NOT_MEASURED_TEXT if note == NOT_MEASURED else "-"
    if percent is None:
        percent = key in ("compile_rate", "correctness") or key.startswith("fast_")
    if percent:
        return f"{100.0 * value:.1f}%"
    if "speedup" in key:
        return f"{value:.2f}x"
    return str(value)
