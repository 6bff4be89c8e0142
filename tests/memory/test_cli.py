"""`evokernel memory stats|export|import|prune`, and bad input -> exit 2 with one line on stderr."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evokernel.cli import main
from evokernel.memory import Memory


@pytest.fixture
def mem_path(tmp_path, make_item, make_note):
    """A closed memory file with three experiences (two tasks) and one note."""
    path = tmp_path / "m.sqlite"
    with Memory.open(path) as mem:
        ids = mem.add([make_item("relu"), make_item("relu", feasible=False), make_item("softmax")])
        mem.add([make_note("Online softmax", "subtract the row max")])
        mem.record_rewards([ids[1]], "draft", -1.0)
    return path


def _one_line_error(capsys, argv: list[str], match: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("evokernel: error: ") and match in err, err


def test_stats_text_and_json(capsys, mem_path) -> None:
    assert main(["memory", "stats", "--memory", str(mem_path)]) == 0
    out = capsys.readouterr().out
    assert "structural-v1" in out and "experience=3" in out and "knowledge=1" in out
    assert main(["memory", "stats", "--json", "--memory", str(mem_path)]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["items"] == 4 and stats["tasks"] == 2 and stats["tasks_solved"] == 2


def test_default_path_from_environment(capsys, monkeypatch, mem_path) -> None:
    monkeypatch.setenv("EVOKERNEL_MEMORY", str(mem_path))
    assert main(["memory", "stats", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["path"] == str(mem_path)


def test_default_path_in_the_user_data_dir(monkeypatch) -> None:
    import platformdirs

    from evokernel.memory import default_memory_path

    monkeypatch.delenv("EVOKERNEL_MEMORY", raising=False)
    path = default_memory_path()
    assert path.name == "memory.sqlite"
    assert path.parent == Path(platformdirs.user_data_dir("evokernel", appauthor=False))


def test_export_import_merge(capsys, tmp_path, mem_path) -> None:
    out = tmp_path / "out.jsonl"
    assert main(["memory", "export", str(out), "--memory", str(mem_path)]) == 0
    assert "exported 4 items" in capsys.readouterr().out
    assert main(["memory", "export", str(tmp_path / "relu.jsonl"), "--task", "level1/relu",
                 "--memory", str(mem_path)]) == 0  # fmt: skip
    assert "exported 2 items" in capsys.readouterr().out
    fresh = tmp_path / "fresh" / "new.sqlite"
    assert main(["memory", "import", str(out), "--memory", str(fresh)]) == 0
    assert "imported 4 items" in capsys.readouterr().out
    other = tmp_path / "other.sqlite"
    assert main(["memory", "import", str(tmp_path / "relu.jsonl"), "--memory", str(other)]) == 0
    capsys.readouterr()
    assert main(["memory", "import", str(mem_path), "--memory", str(other)]) == 0  # a memory file: merged
    assert "merged 2 items" in capsys.readouterr().out  # the relu items were there already
    with Memory.open(other) as mem:
        assert len(mem) == 4


def test_prune(capsys, mem_path) -> None:
    base = ["memory", "prune", "--memory", str(mem_path)]
    assert main([*base, "--q-below", "-0.1", "--dry-run"]) == 0
    assert "would delete 1 items" in capsys.readouterr().out
    assert main([*base, "--q-below", "-0.1"]) == 0
    assert "deleted 1 items" in capsys.readouterr().out
    assert main([*base, "--task", "level1/softmax"]) == 0
    assert main([*base, "--older-than", "0", "--include-knowledge"]) == 0
    capsys.readouterr()
    with Memory.open(mem_path) as mem:
        assert len(mem) == 0


def test_bad_input_exits_2_with_one_line(capsys, tmp_path, mem_path) -> None:
    missing = tmp_path / "missing.sqlite"
    _one_line_error(capsys, ["memory", "stats", "--memory", str(missing)], "no memory here")
    assert not missing.exists()
    corrupt = tmp_path / "corrupt.sqlite"
    corrupt.write_bytes(bytes(range(256)) * 64)
    _one_line_error(capsys, ["memory", "stats", "--memory", str(corrupt)], "not a readable EvoKernel memory")
    _one_line_error(capsys, ["memory", "export", str(tmp_path / "x.jsonl"), "--memory", str(corrupt)], "corrupt")
    _one_line_error(
        capsys, ["memory", "stats", "--memory", str(mem_path), "--embedder", "litellm:openai/some-model"],
        "made with embedder 'structural-v1'",
    )  # fmt: skip
    stats = ["memory", "stats", "--memory", str(mem_path)]
    _one_line_error(capsys, [*stats, "--embedder", "word2vec"], "unknown embedder")
    _one_line_error(capsys, ["memory", "import", str(tmp_path / "no.jsonl"), "--memory", str(mem_path)], "no such file")
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_text("hello\n")
    _one_line_error(capsys, ["memory", "import", str(garbage), "--memory", str(mem_path)], "garbage.jsonl:1")
    _one_line_error(capsys, ["memory", "prune", "--memory", str(mem_path)], "at least one rule")
    _one_line_error(capsys, ["memory", "import", str(corrupt), "--memory", str(mem_path)], "corrupt.sqlite")


def test_a_failed_import_leaves_no_new_memory_behind(capsys, tmp_path, mem_path) -> None:
    target = tmp_path / "new.sqlite"
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    _one_line_error(capsys, ["memory", "import", str(empty), "--memory", str(target)], "not an EvoKernel memory export")
    nan = tmp_path / "nan.jsonl"
    nan.write_text('{"type": "header", "format": "evokernel-memory-jsonl", "version": 1}\n'
                   '{"type": "item", "id": 1, "kind": "experience", "task_id": "t", "backend": "cpu", '
                   '"stage": "draft", "code": "x", "q_draft": NaN}\n')
    _one_line_error(capsys, ["memory", "import", str(nan), "--memory", str(target)], "nan.jsonl:2: q_draft")
    assert list(tmp_path.glob("new.sqlite*")) == []
    # values that pass json.loads but not the memory: an infinite visit count, NaN reward statistics
    inf = tmp_path / "inf.jsonl"
    inf.write_text('{"type": "header", "format": "evokernel-memory-jsonl", "version": 1}\n'
                   '{"type": "item", "id": 1, "kind": "experience", "task_id": "t", "backend": "cpu", '
                   '"stage": "draft", "code": "x", "visits_draft": Infinity}\n')
    _one_line_error(capsys, ["memory", "import", str(inf), "--memory", str(target)], "inf.jsonl:2: visits_draft")
    stats = tmp_path / "stats.jsonl"
    stats.write_text('{"type": "header", "format": "evokernel-memory-jsonl", "version": 1, '
                     '"reward_stats": {"draft": [3, NaN, 0.5]}}\n')
    _one_line_error(capsys, ["memory", "import", str(stats), "--memory", str(target)], "stats.jsonl:1: reward_stats")
    assert list(tmp_path.glob("new.sqlite*")) == []
    # an existing memory is never removed by a failed import
    _one_line_error(capsys, ["memory", "import", str(nan), "--memory", str(mem_path)], "nan.jsonl:2")
    assert mem_path.exists()


@pytest.mark.parametrize("where", ["under-a-file", "proc"])
def test_a_memory_path_that_cannot_be_created_is_one_line(capsys, tmp_path, mem_path, where) -> None:
    if where == "proc":
        if not Path("/proc/self").exists():
            pytest.skip("needs /proc")
        target = Path("/proc/evokernel-test/m.sqlite")
    else:
        target = mem_path / "m.sqlite"  # the parent is a file
    export = tmp_path / "e.jsonl"
    assert main(["memory", "export", str(export), "--memory", str(mem_path)]) == 0
    capsys.readouterr()
    _one_line_error(capsys, ["memory", "import", str(export), "--memory", str(target)], f"{target}: cannot create")
