"""`evokernel eval`: verdicts on stdout, exit codes, one-line errors for bad input."""

from __future__ import annotations

import json

import pytest

from evokernel.cli import main


@pytest.mark.slow
def test_good_candidate_json(data, capsys, tmp_path) -> None:
    out_file = tmp_path / "verdict.json"
    code = main(["eval", str(data.problem("relu")), str(data.root / "good" / "relu.py"), "--backend", "cpu",
                 "--max-elements", "1024", "--trials", "2", "--json", "--output", str(out_file)])
    printed = json.loads(capsys.readouterr().out)
    assert code == 0 and printed["status"] == "correct"
    assert json.loads(out_file.read_text()) == printed
    assert printed["backend"] == "cpu" and printed["kernels_launched"] == ["relu_kernel"]


def test_rejected_candidate_exits_1_with_a_readable_verdict(data, capsys) -> None:
    code = main(["eval", str(data.problem("relu")), str(data.root / "hostile" / "torch_fallback.py"),
                 "--backend", "cpu"])
    out = capsys.readouterr().out
    assert code == 1 and "rejected (no_triton_kernel)" in out


def _error(capsys, argv) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("evokernel: error: ") and "Traceback" not in err
    return lines[0]


def test_missing_problem_file(data, capsys, tmp_path) -> None:
    line = _error(capsys, ["eval", str(tmp_path / "nope.py"), str(data.root / "good" / "relu.py"), "--backend", "cpu"])
    assert "nope.py: no such problem file" in line


def test_missing_candidate_file(data, capsys, tmp_path) -> None:
    line = _error(capsys, ["eval", str(data.problem("relu")), str(tmp_path / "nope.py"), "--backend", "cpu"])
    assert "nope.py: no such candidate file" in line


def test_syntax_error_in_problem(data, capsys, tmp_path) -> None:
    bad = tmp_path / "bad_problem.py"
    bad.write_text("import torch\nclass Model(:\n    pass\n")
    line = _error(capsys, ["eval", str(bad), str(data.root / "good" / "relu.py"), "--backend", "cpu"])
    assert "bad_problem.py:2: syntax error in the problem" in line


def test_problem_without_get_inputs(data, capsys, tmp_path) -> None:
    bad = tmp_path / "no_inputs.py"
    bad.write_text(data.problem("relu").read_text().replace("def get_inputs", "def make_inputs"))
    line = _error(capsys, ["eval", str(bad), str(data.root / "good" / "relu.py"), "--backend", "cpu"])
    assert "no_inputs.py: missing get_inputs" in line


def test_candidate_without_model_new(data, capsys, tmp_path) -> None:
    bad = tmp_path / "no_model.py"
    bad.write_text(data.good("relu").replace("class ModelNew", "class Something"))
    line = _error(capsys, ["eval", str(data.problem("relu")), str(bad), "--backend", "cpu"])
    assert "no_model.py: defines no ModelNew" in line


def test_candidate_path_is_a_folder(data, capsys, tmp_path) -> None:
    line = _error(capsys, ["eval", str(data.problem("relu")), str(tmp_path), "--backend", "cpu"])
    assert "is a folder, not a candidate file" in line


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        # the problem's own code fails or exits: one line, never a traceback from the reference worker
        (("def get_inputs():\n", "def get_inputs():\n    raise RuntimeError('boom')\n"),
         "get_inputs() failed while measuring the sizes (on the meta device): RuntimeError: boom"),
        (("batch_size = 16\n", "batch_size = 16\nraise SystemExit(3)\n"), "importing the problem failed: SystemExit: 3"),
        # a reference answer that cannot tell a kernel from a wrong one
        (("return [torch.rand(batch_size, dim)]", "return [torch.rand(batch_size, dim) * float('nan')]"),
         "the reference output is NaN everywhere"),
        (("batch_size = 16\n", "batch_size = 0\n"), "the reference output has no elements"),
    ],
)
def test_broken_problem_code_is_one_line(data, capsys, tmp_path, edit, expected: str) -> None:
    source = data.problem("relu").read_text()
    assert edit[0] in source
    bad = tmp_path / "broken.py"
    bad.write_text(source.replace(edit[0], edit[1], 1))
    line = _error(capsys, ["eval", str(bad), str(data.root / "good" / "relu.py"), "--backend", "cpu"])
    assert "broken.py: " in line and expected in line


@pytest.mark.parametrize("where", ["folder", "missing_parent"])
def test_bad_output_path_is_refused_before_the_run(data, capsys, tmp_path, where: str) -> None:
    target = tmp_path if where == "folder" else tmp_path / "no" / "verdict.json"
    line = _error(capsys, ["eval", str(data.problem("relu")), str(data.root / "good" / "relu.py"), "--backend", "cpu",
                           "--output", str(target)])
    assert line.startswith(f"evokernel: error: --output {target}: ")


def test_seed_out_of_range(data, capsys) -> None:
    line = _error(capsys, ["eval", str(data.problem("relu")), str(data.root / "good" / "relu.py"), "--backend", "cpu",
                           "--seed", str(2**64)])
    assert "verify setting seed=" in line and "64-bit" in line


def test_bad_setting(data, capsys) -> None:
    line = _error(capsys, ["eval", str(data.problem("relu")), str(data.root / "good" / "relu.py"), "--trials", "0",
                           "--backend", "cpu"])
    assert "trials" in line


def test_help_lists_eval() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["eval", "--help"])
    assert exc.value.code == 0


def test_messages_with_console_markup_print_literally(data, capsys) -> None:
    code = main(["eval", str(data.problem("relu")), str(data.root / "hostile" / "markup_message.py"),
                 "--backend", "cpu", "--max-elements", "1024", "--trials", "2"])
    out = capsys.readouterr().out
    assert code == 1 and "runtime_error" in out
    assert "[/] [bold]markup[/bold] [/nothing]" in out
