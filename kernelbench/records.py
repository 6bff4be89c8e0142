"""Run records: ``RUN_DIR/results.jsonl``, written by `evokernel bench` (both modes) and read by reports.

One JSON object per line. The first line is the header, then results (and, for agent runs,
attempts and rounds) in the order they happened:

    {"type": "header", "format": "evokernel.run/1", "mode": "solutions" | "agent", "settings": {...},
     "versions": {"evokernel", "torch", "triton", "python"}, "device": "...", "backend": "cpu",
     "suite": "builtin", "created": "2025-01-01T12:00:00+00:00", "problems": 40,
     "problem_ids": ["level1/19_ReLU", ...], "problem_groups": {"level1/19_ReLU": [1, "activation"], ...}, ...}
    {"type": "result", "problem_id": "level1/19_ReLU", "level": 1, "category": "activation",
     "categories": [...], "problem_hash": "...", "status": "correct" | <verdict status> | "missing" | "unreadable" | "problem_error"
     | "harness_error" | "no_result" (reports only),
     "verdict": {...Verdict.to_dict()...} | null, "solution": "path" | null, "message": "...",
     # agent runs also:
     "attempts": 12, "first_feasible_attempt": 3, "first_latency_ms": 1.9, "best_latency_ms": 0.7}
    {"type": "attempt", "problem_id", "attempt", "round", "stage", "status", "feasible",
     "latency_ms", "reward", ...}
    {"type": "round", "round": 1, "solved": 7, "total": 40, ...}   # solved = tasks with a feasible kernel so far

A later result for the same problem replaces an earlier one (resumed runs). Lines are flushed as
they are written, so an interrupted run keeps every finished record; a truncated last line is
ignored with a warning when reading.

The header lists the selected problems (``problem_ids``, with level and category in
``problem_groups``) before any is evaluated, so a report on an interrupted run counts the problems
without a result as failures (status ``no_result``) and says the run is incomplete
(:meth:`RunRecords.coverage`). Agent runs also keep the ids as ``task_ids`` (resume reads them).
Runs written before the list existed fall back to the header's ``problems`` count, or to the results.
"""

from __future__ import annotations

import json
import logging
import math
import platform
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from evokernel.errors import UserError

__all__ = [
    "FORMAT",
    "RESULTS_FILE",
    "Coverage",
    "NO_RESULT",
    "RunRecords",
    "RunWriter",
    "check_new_run_dir",
    "read_run",
    "make_header",
    "result_record",
    "versions",
    "json_safe",
]

log = logging.getLogger(__name__)

FORMAT = "evokernel.run/1"
RESULTS_FILE = "results.jsonl"
MISSING = "missing"  # result status of a problem without a solution file
NO_RESULT = "no_result"  # status of a selected problem the run holds no result for (it was interrupted)


def json_safe(value: Any) -> Any:
    """A copy with non-finite floats as None, tuples as lists, paths and other objects as strings."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "to_dict"):
        return json_safe(value.to_dict())
    return str(value)


def versions() -> dict[str, str | None]:
    """Versions of the packages that decide results (evokernel, torch, triton, python)."""
    from importlib import metadata

    out: dict[str, str | None] = {"python": platform.python_version()}
    for dist in ("evokernel", "torch", "triton"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def make_header(
    mode: str,
    *,
    settings: dict[str, Any],
    suite: str,
    device: str,
    backend: str,
    problems: int | Sequence[Any],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The header record of a run (mode "solutions" or "agent").

    ``problems`` are the selected kernelbench Problems (recorded as ``problem_ids`` and
    ``problem_groups`` besides their count), or only their count.
    """
    header: dict[str, Any] = {
        "type": "header",
        "format": FORMAT,
        "mode": mode,
        "settings": settings,
        "versions": versions(),
        "device": device,
        "backend": backend,
        "suite": suite,
        "problems": problems if isinstance(problems, int) else len(problems),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if not isinstance(problems, int):
        header["problem_ids"] = [p.id for p in problems]
        header["problem_groups"] = {p.id: [p.level, p.category] for p in problems}
    if extra:
        header.update(extra)
    return header


def result_record(
    problem: Any,
    verdict: dict[str, Any] | None,
    *,
    status: str | None = None,
    solution: str | Path | None = None,
    message: str = "",
    **extra: Any,
) -> dict[str, Any]:
    """A result record for one problem (``problem`` is a kernelbench Problem); no verdict means missing."""
    if status is None:
        status = verdict.get("status", "runtime_error") if verdict is not None else MISSING
    if not message and verdict is not None:
        message = str(verdict.get("message", ""))
    record: dict[str, Any] = {
        "type": "result",
        "problem_id": problem.id,
        "level": problem.level,
        "category": problem.category,
        "categories": list(problem.categories),
        "problem_hash": problem.hash,
        "status": status,
        "verdict": verdict,
        "solution": str(solution) if solution is not None else None,
        "message": message,
    }
    record.update(extra)
    return record


@dataclass
class Coverage:
    """How many of a run's selected problems have a result, and where the selection came from."""

    total: int  # problems the run selected
    with_results: int  # of those, problems with a result record
    pending: list[str]  # ids of the selected problems without a result (empty when unknown)
    source: str  # "ids" (the header lists them), "count" (only their number) or "results" (neither)

    @property
    def complete(self) -> bool:
        """Whether every selected problem has a result."""
        return self.with_results >= self.total

    def note(self) -> str:
        """One line for tables and reports: "" for a complete run listed in its header."""
        text = ""
        if not self.complete:
            text = (
                f"incomplete: {self.with_results} of {self.total} problems have results; "
                f"the {self.total - self.with_results} without one count as failures"
            )
        if self.source == "count":
            text += ("; " if text else "") + "this run's header records the problem count but not the problem ids"
        elif self.source == "results":
            text += "the run's header does not list its problems: counted over the problems with results"
        return text

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``complete`` and ``note`` included)."""
        return {
            "complete": self.complete,
            "total": self.total,
            "with_results": self.with_results,
            "pending": list(self.pending),
            "source": self.source,
            "note": self.note(),
        }


@dataclass
class RunRecords:
    """Everything in one results.jsonl, grouped by record type."""

    path: Path
    header: dict[str, Any]
    results: list[dict[str, Any]] = field(default_factory=list)  # the last record per problem, first-seen order
    attempts: list[dict[str, Any]] = field(default_factory=list)
    rounds: list[dict[str, Any]] = field(default_factory=list)
    other: list[dict[str, Any]] = field(default_factory=list)

    @property
    def run_dir(self) -> Path:
        """The folder holding results.jsonl."""
        return self.path.parent

    @property
    def name(self) -> str:
        """A short label for tables: the run folder's name."""
        return self.run_dir.name or str(self.run_dir)

    @property
    def mode(self) -> str:
        """ "solutions" or "agent"."""
        return str(self.header.get("mode", "solutions"))

    @property
    def backend(self) -> str:
        """The backend the run was verified on (header, else the first verdict's, else "unknown")."""
        backend = self.header.get("backend") or (self.header.get("settings") or {}).get("backend")
        if backend in (None, "auto"):
            for r in self.results:
                if r.get("verdict") and r["verdict"].get("backend"):
                    return str(r["verdict"]["backend"])
            return "unknown" if backend is None else str(backend)
        return str(backend)

    @property
    def selected_ids(self) -> list[str] | None:
        """The problem ids the header lists (``problem_ids``, or an agent run's ``task_ids``); None in older runs."""
        ids = self.header.get("problem_ids", self.header.get("task_ids"))
        return [str(i) for i in ids] if isinstance(ids, list) else None

    def coverage(self) -> Coverage:
        """How many selected problems have a result (see :class:`Coverage`)."""
        have = {str(r.get("problem_id")) for r in self.results}
        ids = self.selected_ids
        if ids is not None:
            pending = [i for i in ids if i not in have]
            return Coverage(len(ids), len(ids) - len(pending), pending, "ids")
        count = self.header.get("problems")
        if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
            return Coverage(max(count, len(have)), len(have), [], "count")
        return Coverage(len(have), len(have), [], "results")

    def scored_results(self) -> list[dict[str, Any]]:
        """The results plus a ``no_result`` failure for every selected problem without one (for metrics)."""
        coverage = self.coverage()
        groups = self.header.get("problem_groups")
        groups = groups if isinstance(groups, dict) else {}
        placeholders = [_no_result(pid, groups.get(pid)) for pid in coverage.pending]
        if coverage.source == "count":
            unknown = coverage.total - coverage.with_results
            placeholders += [_no_result(f"(problem without a result {i})", None) for i in range(1, unknown + 1)]
        if not placeholders:
            return list(self.results)
        ids = self.selected_ids
        if ids is None:
            return [*self.results, *placeholders]
        by_id = {str(r.get("problem_id")): r for r in self.results}
        by_id.update((p["problem_id"], p) for p in placeholders)
        selected = set(ids)
        extra = [r for pid, r in by_id.items() if pid not in selected]
        return [by_id[i] for i in ids] + extra


def _no_result(problem_id: str, group: Any) -> dict[str, Any]:
    level, category = group if isinstance(group, list) and len(group) == 2 else (None, "unknown")
    return {
        "type": "result",
        "problem_id": problem_id,
        "level": level if isinstance(level, int) else None,
        "category": category if isinstance(category, str) else "unknown",
        "status": NO_RESULT,
        "verdict": None,
        "solution": None,
        "message": "no result: the run stopped before this problem finished",
    }


def check_new_run_dir(run_dir: str | Path) -> Path:
    """Create the folder of a new run and return its ``results.jsonl`` path; a UserError (naming
    --out) when the folder cannot be created or already holds results.

    RunWriter checks this itself; callers that record a run elsewhere first (the agent's memory)
    call it before, so a refused folder leaves nothing behind."""
    run_dir = Path(run_dir)
    path = run_dir / RESULTS_FILE
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{run_dir}: cannot create the run folder ({exc}); pass another --out") from exc
    if path.exists() and path.stat().st_size > 0:
        raise UserError(f"{path} already exists; pass another --out folder (or resume the run where supported)")
    return path


class RunWriter:
    """Append records to ``RUN_DIR/results.jsonl``, one flushed line each; a context manager.

    A new run writes the header first; ``resume=True`` appends to an existing file (its header is
    kept and ``header`` is ignored).
    """

    def __init__(self, run_dir: str | Path, header: dict[str, Any] | None = None, *, resume: bool = False) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / RESULTS_FILE
        if resume and self.path.exists():
            self._fh: IO[str] = self.path.open("a", encoding="utf-8")
            return
        if header is None:
            raise ValueError("a new run needs a header record")
        check_new_run_dir(self.run_dir)
        self._fh = self.path.open("w", encoding="utf-8")
        self.write(header)

    def write(self, record: dict[str, Any]) -> None:
        """Write one record as a line and flush it."""
        if "type" not in record:
            raise ValueError("every record needs a 'type'")
        self._fh.write(json.dumps(json_safe(record), allow_nan=False, sort_keys=False) + "\n")
        self._fh.flush()

    def write_all(self, records: Iterable[dict[str, Any]]) -> None:
        """Write several records."""
        for record in records:
            self.write(record)

    def close(self) -> None:
        """Close the file."""
        self._fh.close()

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def results_path(path: str | Path) -> Path:
    """``path`` itself when it is a file, else ``path/results.jsonl``."""
    p = Path(path).expanduser()
    return p if p.is_file() else p / RESULTS_FILE


_NUMBER = (int, float)
# record type -> field -> accepted JSON types (None is always accepted): the fields reports use
_FIELD_TYPES: dict[str, dict[str, tuple[type, ...]]] = {
    "header": {
        "mode": (str,), "settings": (dict,), "versions": (dict,), "device": (str,), "backend": (str,),
        "suite": (str,), "created": (str,), "problems": (int,), "problem_ids": (list,), "task_ids": (list,),
        "problem_groups": (dict,), "rounds": (int,),
    },
    "result": {
        "problem_id": (str,), "level": (int,), "category": (str,), "categories": (list,), "status": (str,),
        "verdict": (dict,), "message": (str,), "first_latency_ms": _NUMBER, "best_latency_ms": _NUMBER,
    },
    "round": {"round": (int,), "solved": _NUMBER, "total": _NUMBER},
    "attempt": {"problem_id": (str,)},
}
_VERDICT_TYPES: dict[str, tuple[type, ...]] = {
    "status": (str,), "message": (str,), "backend": (str,), "phase": (str,), "rule": (str,),
    "latency_ms": _NUMBER, "speedup_eager": _NUMBER, "speedup_compile": _NUMBER,
}


def _wrong_type(fields: dict[str, Any], types: dict[str, tuple[type, ...]], where: str) -> str | None:
    for name, accepted in types.items():
        value = fields.get(name)
        if value is None:
            continue
        if isinstance(value, bool) and bool not in accepted or not isinstance(value, accepted):
            expected = "a number" if accepted == _NUMBER else f"a JSON {_JSON_NAMES[accepted[0]]}"
            return f"{where}{name!r} must be {expected}, not {json.dumps(value)[:40]}"
    return None


_JSON_NAMES = {str: "string", int: "integer", list: "list", dict: "object", float: "number"}


def _type_problem(rec: dict[str, Any]) -> str | None:
    """What is wrong with the types of the fields reports read, or None."""
    kind = str(rec.get("type"))
    problem = _wrong_type(rec, _FIELD_TYPES.get(kind, {}), "header " if kind == "header" else "")
    if problem is None and rec.get("type") == "result" and isinstance(rec.get("verdict"), dict):
        problem = _wrong_type(rec["verdict"], _VERDICT_TYPES, "verdict ")
    return problem


def read_run(path: str | Path) -> RunRecords:
    """Read a run folder (or its results.jsonl); UserError naming the line when it is missing, has no header,
    or a record's field that reports use (the header's settings, versions and problem list included) has
    the wrong JSON type."""
    file = results_path(path)
    if not file.is_file():
        raise UserError(f"{path}: no {RESULTS_FILE} there; pass a run folder written by `evokernel bench`")
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{file}: cannot be read ({exc})") from exc
    records: list[dict[str, Any]] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            if n == len(lines):  # an interrupted write
                log.warning("%s:%d: ignoring a truncated last record", file, n)
                continue
            raise UserError(f"{file}:{n}: not a JSON record ({exc.msg}); the file is damaged") from exc
        if not isinstance(rec, dict):
            raise UserError(f"{file}:{n}: a record must be a JSON object")
        problem = _type_problem(rec)
        if problem:
            raise UserError(f"{file}:{n}: {problem}; the file is damaged or was edited by hand")
        records.append(rec)
    if not records or records[0].get("type") != "header":
        raise UserError(f"{file}: the first record must be the run header; was this written by `evokernel bench`?")
    run = RunRecords(path=file, header=records[0])
    by_id: dict[str, dict[str, Any]] = {}
    for rec in records[1:]:
        kind = rec.get("type")
        if kind == "result":
            by_id[str(rec.get("problem_id"))] = rec  # later wins, first-seen order kept by dict
        elif kind == "attempt":
            run.attempts.append(rec)
        elif kind == "round":
            run.rounds.append(rec)
        elif kind == "header":
            continue  # a resumed run may repeat its header
        else:
            run.other.append(rec)
    run.results = list(by_id.values())
    return run
