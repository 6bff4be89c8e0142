"""Reports count every selected problem: an interrupted run's missing results are failures, and it says so."""

from __future__ import annotations

import io
import json
from pathlib import Path

from evokernel.cli import main
from kernelbench.loader import load_suite
from kernelbench.records import NO_RESULT, RunWriter, make_header, read_run, result_record
from kernelbench.report import render_html, run_metrics
from kernelbench.summary import print_summary


def _interrupted_run(kb_root: Path, run_dir: Path) -> list:
    """A solutions run over the fixture suite that stopped after two results (one correct)."""
    problems = load_suite(kb_root)
    header = make_header("solutions", settings={}, suite=str(kb_root), device="cpu", backend="cpu", problems=problems)
    with RunWriter(run_dir, header) as w:
        w.write(result_record(problems[0], {"status": "correct", "message": ""}))
        w.write(result_record(problems[1], {"status": "incorrect", "message": "mismatch"}))
    return problems


def test_header_lists_the_selected_problems(kb_root: Path, tmp_path: Path) -> None:
    problems = _interrupted_run(kb_root, tmp_path / "run")
    header = read_run(tmp_path / "run").header
    assert header["problems"] == len(problems)
    assert header["problem_ids"] == [p.id for p in problems]
    assert header["problem_groups"][problems[2].id] == [problems[2].level, problems[2].category]


def test_interrupted_run_counts_unfinished_problems_as_failures(kb_root: Path, tmp_path: Path) -> None:
    problems = _interrupted_run(kb_root, tmp_path / "run")
    n = len(problems)
    assert n > 2
    run = read_run(tmp_path / "run")
    m = run_metrics(run)
    assert m["overall"]["n"] == n
    assert m["overall"]["correctness"] == 1 / n
    assert m["overall"]["statuses"][NO_RESULT] == n - 2
    assert sum(block["n"] for block in m["levels"].values()) == n
    pending = {r["problem_id"]: r for r in m["problems"] if r["status"] == NO_RESULT}
    assert pending[problems[2].id]["category"] == problems[2].category  # grouped where it belongs
    cov = m["coverage"]
    assert cov["complete"] is False and cov["total"] == n and cov["with_results"] == 2
    assert cov["pending"] == [p.id for p in problems[2:]]
    assert f"incomplete: 2 of {n} problems have results" in cov["note"]
    assert f"incomplete: 2 of {n} problems have results" in render_html([run])


def test_summary_and_report_command_say_incomplete(kb_root: Path, tmp_path: Path, capsys) -> None:
    from rich.console import Console

    n = len(_interrupted_run(kb_root, tmp_path / "run"))
    console = Console(file=io.StringIO(), width=160)
    print_summary(run_metrics(read_run(tmp_path / "run")), console=console)
    assert f"incomplete: 2 of {n} problems have results" in console.file.getvalue()
    assert main(["report", str(tmp_path / "run"), "--json", "-o", str(tmp_path / "r.html")]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out.splitlines()[0])
    assert data["run"]["coverage"]["with_results"] == 2 and data["run"]["overall"]["n"] == n
    assert f"incomplete: 2 of {n} problems have results" in captured.err


def test_agent_run_without_results_counts_its_tasks(tmp_path: Path) -> None:
    run_dir = tmp_path / "agent"
    run_dir.mkdir()
    header = {"type": "header", "mode": "agent", "backend": "cpu", "task_ids": ["level1/a", "level1/b", "level1/c"]}
    (run_dir / "results.jsonl").write_text(json.dumps(header) + "\n")
    m = run_metrics(read_run(run_dir))
    assert m["overall"]["n"] == 3 and m["overall"]["correctness"] == 0.0
    assert m["coverage"]["note"].startswith("incomplete: 0 of 3 problems have results")


def _old_run(run_dir: Path, header: dict, statuses: list[str]) -> None:
    run_dir.mkdir()
    lines = [{"type": "header", "mode": "solutions", "backend": "cpu", **header}]
    lines += [{"type": "result", "problem_id": f"level1/{i}", "level": 1, "category": "activation", "status": s}
              for i, s in enumerate(statuses)]
    (run_dir / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))


def test_old_run_with_only_a_count_still_renders(tmp_path: Path) -> None:
    _old_run(tmp_path / "old", {"problems": 6}, ["correct", "incorrect"])
    run = read_run(tmp_path / "old")
    m = run_metrics(run)
    assert m["overall"]["n"] == 6 and m["overall"]["correctness"] == 1 / 6
    assert m["coverage"]["source"] == "count"
    assert "records the problem count but not the problem ids" in m["coverage"]["note"]
    assert "incomplete: 2 of 6" in render_html([run])


def test_old_run_without_count_falls_back_to_results(tmp_path: Path) -> None:
    _old_run(tmp_path / "old", {}, ["correct", "incorrect"])
    run = read_run(tmp_path / "old")
    m = run_metrics(run)
    assert m["overall"]["n"] == 2 and m["coverage"]["complete"] is True
    assert "counted over the problems with results" in m["coverage"]["note"]
    render_html([run])


def test_complete_run_has_no_note(kb_root: Path, tmp_path: Path) -> None:
    problems = load_suite(kb_root)
    header = make_header("solutions", settings={}, suite="x", device="cpu", backend="cpu", problems=problems)
    with RunWriter(tmp_path / "run", header) as w:
        w.write_all(result_record(p, {"status": "correct", "message": ""}) for p in problems)
    m = run_metrics(read_run(tmp_path / "run"))
    assert m["coverage"] == {"complete": True, "total": len(problems), "with_results": len(problems),
                             "pending": [], "source": "ids", "note": ""}
    assert m["overall"]["correctness"] == 1.0
