"""results.jsonl: header first, flushed lines, later results win, damaged files are user errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evokernel.errors import UserError
from kernelbench.loader import load_suite
from kernelbench.records import FORMAT, RunWriter, make_header, read_run, result_record


def _header() -> dict:
    return make_header(
        "solutions", settings={"backend": "cpu"}, suite="builtin", device="cpu", backend="cpu", problems=2
    )


def test_round_trip_and_resume(kb_root: Path, tmp_path: Path) -> None:
    by_id = {p.id: p for p in load_suite(kb_root)}
    relu, rowsum = by_id["level1/19_ReLU"], by_id["level1/10_RowSum"]
    run_dir = tmp_path / "run"
    with RunWriter(run_dir, _header()) as w:
        w.write(result_record(relu, {"status": "incorrect", "message": "mismatch", "speedup_eager": float("nan")}))
        # the file is readable while the run is still going (flushed lines)
        assert read_run(run_dir).results[0]["status"] == "incorrect"
    with RunWriter(run_dir, resume=True) as w:
        w.write(result_record(rowsum, None))
        w.write(result_record(relu, {"status": "correct", "message": ""}))
        w.write({"type": "round", "round": 1, "solved": 1, "total": 2})
        w.write({"type": "attempt", "problem_id": relu.id, "attempt": 1})
    run = read_run(run_dir / "results.jsonl")
    assert run.header["format"] == FORMAT and run.header["mode"] == "solutions"
    assert set(run.header["versions"]) >= {"evokernel", "torch", "triton", "python"}
    assert [r["problem_id"] for r in run.results] == ["level1/19_ReLU", "level1/10_RowSum"]  # first-seen order
    assert run.results[0]["status"] == "correct"  # the later record wins
    assert run.results[1]["status"] == "missing" and run.results[1]["verdict"] is None
    assert run.results[1]["category"] == "reduction" and run.results[1]["level"] == 1
    assert len(run.rounds) == 1 and len(run.attempts) == 1
    assert run.backend == "cpu" and run.name == "run"
    first = json.loads((run_dir / "results.jsonl").read_text().splitlines()[1])
    assert first["verdict"]["speedup_eager"] is None  # NaN is not JSON


def test_a_new_run_never_overwrites(tmp_path: Path) -> None:
    RunWriter(tmp_path, _header()).close()
    with pytest.raises(UserError, match="already exists"):
        RunWriter(tmp_path, _header())


def test_truncated_last_line_is_ignored(tmp_path: Path) -> None:
    with RunWriter(tmp_path, _header()) as w:
        w.write({"type": "result", "problem_id": "a", "status": "correct"})
    with (tmp_path / "results.jsonl").open("a") as fh:
        fh.write('{"type": "result", "problem_id": "b", "sta')
    assert [r["problem_id"] for r in read_run(tmp_path).results] == ["a"]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (None, "no results.jsonl"),
        ('{"type": "result"}\n', "first record must be the run header"),
        ('{"type": "header"}\nnot json\n{"type": "result"}\n', ":2: not a JSON record"),
    ],
)
def test_damaged_runs_are_user_errors(tmp_path: Path, content: str | None, fragment: str) -> None:
    if content is not None:
        (tmp_path / "results.jsonl").write_text(content)
    with pytest.raises(UserError, match=fragment):
        read_run(tmp_path)


def test_fixture_runs_read(runs_dir: Path) -> None:
    agent = read_run(runs_dir / "agent")
    assert agent.mode == "agent" and len(agent.rounds) == 5 and len(agent.attempts) == 20
    assert {r["problem_id"] for r in agent.results} == {
        "level1/6_ReLU",
        "level1/14_Softmax",
        "level2/1_Linear_GELU_Scale",
        "level3/1_MLP",
    }
    assert read_run(runs_dir / "cpu_solutions").backend == "cpu"


@pytest.mark.parametrize(
    ("record", "fragment"),
    [
        ({"type": "result", "problem_id": "a", "verdict": "correct"}, "'verdict' must be a JSON object"),
        ({"type": "result", "problem_id": "a", "category": ["x"]}, "'category' must be a JSON string"),
        ({"type": "result", "problem_id": "a", "message": 5}, "'message' must be a JSON string"),
        ({"type": "result", "problem_id": "a", "level": True}, "'level' must be a JSON integer"),
        ({"type": "result", "problem_id": "a", "verdict": {"speedup_eager": "1.5"}}, "verdict 'speedup_eager' must be a number"),
        ({"type": "round", "round": "x", "solved": 1, "total": 2}, "'round' must be a JSON integer"),
    ],
)
def test_wrong_field_types_are_one_line_errors(tmp_path: Path, record: dict, fragment: str) -> None:
    (tmp_path / "results.jsonl").write_text(json.dumps(_header()) + "\n" + json.dumps(record) + "\n")
    with pytest.raises(UserError) as info:
        read_run(tmp_path)
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'results.jsonl'}:2: ") and fragment in message and "\n" not in message


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"settings": ["backend", "cpu"]}, "'settings' must be a JSON object"),
        ({"settings": "cpu"}, "'settings' must be a JSON object"),
        ({"versions": "torch 2"}, "'versions' must be a JSON object"),
        ({"problems": "2"}, "'problems' must be a JSON integer"),
        ({"problems": True}, "'problems' must be a JSON integer"),
        ({"problem_ids": "a,b"}, "'problem_ids' must be a JSON list"),
        ({"task_ids": {"a": 1}}, "'task_ids' must be a JSON list"),
        ({"problem_groups": ["a"]}, "'problem_groups' must be a JSON object"),
        ({"mode": 1}, "'mode' must be a JSON string"),
        ({"backend": ["cpu"]}, "'backend' must be a JSON string"),
        ({"rounds": "3"}, "'rounds' must be a JSON integer"),
    ],
)
def test_a_header_field_of_the_wrong_type_is_a_one_line_error(tmp_path: Path, fields: dict, fragment: str) -> None:
    (tmp_path / "results.jsonl").write_text(json.dumps({**_header(), **fields}) + "\n")
    with pytest.raises(UserError) as info:
        read_run(tmp_path)
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'results.jsonl'}:1: ") and fragment in message and "\n" not in message
    assert "header" in message


def test_a_header_with_null_optional_fields_reads(tmp_path: Path) -> None:
    (tmp_path / "results.jsonl").write_text(json.dumps({**_header(), "settings": None, "versions": None}) + "\n")
    assert read_run(tmp_path).backend == "cpu"
