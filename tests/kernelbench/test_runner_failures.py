"""A bench records what it cannot evaluate (unreadable solution, failing reference) and goes on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from evokernel.errors import UserError
from evokernel.programs import ProblemError
from evokernel.verify import Verdict
from kernelbench.loader import load_suite
from kernelbench.records import read_run
from kernelbench.runner import PROBLEM_ERROR, UNREADABLE, run_solutions


class _FakeVerifier:
    """Every candidate is correct, except that the named problems' references fail (ProblemError)."""

    def __init__(self, bad_reference: set[str] = frozenset(), error: type[Exception] = ProblemError) -> None:
        self.bad_reference, self.error = bad_reference, error
        self.seen: list[str] = []

    def evaluate(self, problem: Any, source: str, settings: Any = None) -> Verdict:
        self.seen.append(problem.id)
        if problem.id in self.bad_reference:
            raise self.error(f"{problem.id}.py: computing the reference raised RuntimeError: boom")
        return Verdict(status="correct", message="ok", backend="cpu")


def _solutions(tmp_path: Path, problems: list) -> Path:
    root = tmp_path / "solutions"
    for p in problems:
        path = root / f"{p.id}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("class ModelNew: pass\n")
    return root


def _run(problems: list, solutions: Path, run_dir: Path, verifier: _FakeVerifier) -> Any:
    return run_solutions(problems, solutions, run_dir=run_dir, verifier=verifier, progress=False,
                         settings=None, suite="kb")


def test_unreadable_solutions_are_recorded_and_the_bench_goes_on(kb_root: Path, tmp_path: Path) -> None:
    problems = load_suite(kb_root)
    solutions = _solutions(tmp_path, problems)
    latin1, folder = problems[0], problems[1]
    (solutions / f"{latin1.id}.py").write_bytes(b"# caf\xe9\nclass ModelNew: pass\n")
    (solutions / f"{folder.id}.py").unlink()
    (solutions / f"{folder.id}.py").mkdir()
    verifier = _FakeVerifier()
    result = _run(problems, solutions, tmp_path / "run", verifier)
    status = {r["problem_id"]: r["status"] for r in result.results}
    assert status[latin1.id] == UNREADABLE and status[folder.id] == UNREADABLE
    assert all(status[p.id] == "correct" for p in problems[2:])
    assert verifier.seen == [p.id for p in problems[2:]]
    by_id = {r["problem_id"]: r for r in read_run(tmp_path / "run").results}
    assert "not UTF-8 text" in by_id[latin1.id]["message"]
    assert "is a folder" in by_id[folder.id]["message"]
    assert result.metrics["overall"]["n"] == len(problems)
    assert result.metrics["overall"]["correct"] == len(problems) - 2
    assert result.metrics["overall"]["compiled"] == len(problems) - 2


def test_a_failing_reference_is_recorded_and_the_bench_goes_on(kb_root: Path, tmp_path: Path) -> None:
    problems = load_suite(kb_root)
    bad = problems[1].id
    result = _run(problems, _solutions(tmp_path, problems), tmp_path / "run", _FakeVerifier({bad}))
    by_id = {r["problem_id"]: r for r in read_run(tmp_path / "run").results}
    assert len(by_id) == len(problems)
    assert by_id[bad]["status"] == PROBLEM_ERROR
    assert "could not be evaluated" in by_id[bad]["message"] and "boom" in by_id[bad]["message"]
    assert all(r["status"] == "correct" for pid, r in by_id.items() if pid != bad)
    assert result.metrics["overall"]["correctness"] == (len(problems) - 1) / len(problems)


def test_other_user_errors_still_stop_the_bench(kb_root: Path, tmp_path: Path) -> None:
    problems = load_suite(kb_root)
    with pytest.raises(UserError, match="boom"):
        _run(problems, _solutions(tmp_path, problems), tmp_path / "run", _FakeVerifier({problems[0].id}, UserError))
