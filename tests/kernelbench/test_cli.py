"""`evokernel bench` and `evokernel report` end to end, and their one-line errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from evokernel.cli import main
from kernelbench.metrics import NOT_MEASURED, NOT_MEASURED_TEXT
from kernelbench.records import read_run

RELU_OK = """import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def relu_kernel(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    tl.store(y_ptr + offs, tl.maximum(x, 0.0), mask=mask)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        y = torch.empty_like(x)
        n = x.numel()
        relu_kernel[(triton.cdiv(n, 1024),)](x, y, n, BLOCK=1024)
        return y
"""

# Halves every row sum: compiles and runs, but is wrong.
ROWSUM_WRONG = """import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def half_row_sum_kernel(x_ptr, y_ptr, cols, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    offs = tl.arange(0, BLOCK)
    x = tl.load(x_ptr + row * cols + offs, mask=offs < cols, other=0.0)
    tl.store(y_ptr + row, tl.sum(x, axis=0) * 0.5)


class ModelNew(nn.Module):
    def __init__(self, dim):
        super().__init__()

    def forward(self, x):
        rows, cols = x.shape
        y = torch.empty(rows, device=x.device, dtype=x.dtype)
        half_row_sum_kernel[(rows,)](x, y, cols, BLOCK=triton.next_power_of_2(cols))
        return y
"""


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("evokernel: error: ") and "\n" not in err and "Traceback" not in err, err
    return err


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["bench", "--suite", "/no/such/suite", "--solutions", "."], "unknown suite"),
        (["bench", "--filter", "([", "--solutions", "."], "not a valid regular expression"),
        (["bench", "--level", "0", "--solutions", "."], "positive integer level"),
        (["bench"], "--solutions DIR"),
        (["bench", "--agent", "--rounds", "0"], "--rounds must be at least 1 (got 0)"),
        (["report", "/no/such/run"], "no results.jsonl"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert fragment in _one_error_line(capsys)


def test_no_match_names_only_the_given_flags(kb_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--suite", str(kb_root), "--filter", "NoSuchProblem", "--solutions", "."]) == 2
    err = _one_error_line(capsys)
    assert "--filter 'NoSuchProblem'" in err and "--level" not in err and "None" not in err
    assert main(["bench", "--suite", str(kb_root), "--level", "9", "--solutions", "."]) == 2
    err = _one_error_line(capsys)
    assert "--level 9" in err and "--filter" not in err and "None" not in err


def test_workers_help_says_the_default_of_each_executor() -> None:
    import argparse

    from evokernel.commands import bench

    subparsers = argparse.ArgumentParser().add_subparsers()
    bench.register(subparsers)
    text = " ".join(subparsers.choices["bench"].format_help().split())
    workers = text[text.rindex("--workers N") :].split(")", 1)[0]  # its entry under the options, to its default
    assert "2 in agent mode" in workers
    assert "1 with the local executor" in workers and "one per CPU of the Ray cluster" in workers


def test_bench_unknown_solutions_folder(kb_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--suite", str(kb_root), "--solutions", str(tmp_path / "nope"), "--backend", "cpu"]) == 2
    assert "no such folder" in _one_error_line(capsys)
    (tmp_path / "empty").mkdir()
    assert main(["bench", "--suite", str(kb_root), "--solutions", str(tmp_path / "empty"), "--backend", "cpu"]) == 2
    assert "level1/2_Matmul.py" in _one_error_line(capsys)


def test_report_single_and_compare(runs_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("cpu_solutions", "gpu_solutions"):
        shutil.copytree(runs_dir / name, tmp_path / name)
    assert main(["report", str(tmp_path / "cpu_solutions")]) == 0
    out = Path(capsys.readouterr().out.strip())
    assert out == tmp_path / "cpu_solutions" / "report.html"
    assert NOT_MEASURED_TEXT in out.read_text()
    target = tmp_path / "reports" / "cmp.html"
    assert main(["report", str(tmp_path / "gpu_solutions"), str(tmp_path / "cpu_solutions"), "-o", str(target)]) == 0
    assert capsys.readouterr().out.strip() == str(target)
    assert "Per-problem differences" in target.read_text()
    assert main(["report", str(tmp_path / "cpu_solutions"), "--json", "-o", str(tmp_path / "r.html")]) == 0
    captured = capsys.readouterr()
    metrics = json.loads(captured.out)["cpu_solutions"]  # stdout is the JSON alone
    assert captured.err.splitlines()[-1] == str(tmp_path / "r.html")
    assert metrics["overall"]["fast_1"] is None and metrics["overall"]["notes"]["fast_1"] == NOT_MEASURED


@pytest.mark.slow
def test_bench_solutions_end_to_end_on_cpu(kb_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("evokernel.verify", reason="needs the verifier")
    solutions = tmp_path / "solutions"
    (solutions / "level1").mkdir(parents=True)
    (solutions / "level1" / "19_ReLU.py").write_text(RELU_OK)
    (solutions / "level1" / "10_RowSum.py").write_text(ROWSUM_WRONG)
    # level1/2_Matmul has no solution file
    run_dir = tmp_path / "runs" / "first"
    argv = [
        "bench",
        "--suite",
        str(kb_root),
        "--level",
        "1",
        "--solutions",
        str(solutions),
        "--backend",
        "cpu",
        "--out",
        str(run_dir),
        "--trials",
        "2",
        "--no-progress",
    ]
    assert main(argv) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "correct" in printed and NOT_MEASURED_TEXT in printed

    run = read_run(run_dir)
    assert run.header["mode"] == "solutions" and run.header["backend"] == "cpu"
    assert run.header["settings"]["backend"] == "cpu" and run.header["settings"]["trials"] == 2
    assert run.header["settings"]["reference_cache"] == str((tmp_path / "runs" / "reference_timings.json").resolve())
    assert set(run.header["versions"]) >= {"evokernel", "torch", "triton"}
    status = {r["problem_id"]: r["status"] for r in run.results}
    assert status == {"level1/2_Matmul": "missing", "level1/10_RowSum": "incorrect", "level1/19_ReLU": "correct"}
    relu = next(r for r in run.results if r["problem_id"] == "level1/19_ReLU")
    assert relu["verdict"]["feasible"] and relu["verdict"]["speedup_eager"] is None
    assert relu["category"] == "activation" and relu["problem_hash"]

    # the same run folder again is refused; the report renders from it
    assert main(argv) == 2
    assert "already exists" in _one_error_line(capsys)
    assert main(["report", str(run_dir)]) == 0
    html = (run_dir / "report.html").read_text()
    assert "level1/10_RowSum" in html and NOT_MEASURED_TEXT in html
