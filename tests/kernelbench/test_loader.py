"""The loader: public layout, single files, own folders, the built-in suite, filters and bad input."""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import pytest

from evokernel.errors import UserError
from evokernel.programs import ProblemError, size_constants, source_hash
from kernelbench.loader import BUILTIN_ROOT, load_problem, load_suite
from kernelbench.problem import Problem

FIXTURE_IDS = ["level1/2_Matmul", "level1/10_RowSum", "level1/19_ReLU", "level2/3_Linear_Sigmoid_Scale"]


def test_public_layout_ids_levels_and_order(kb_root: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        problems = load_suite(kb_root)
    assert [p.id for p in problems] == FIXTURE_IDS  # natural order; notes.py skipped
    assert "notes.py" in caplog.text
    by_id = {p.id: p for p in problems}
    relu = by_id["level1/19_ReLU"]
    assert (relu.level, relu.name, relu.category) == (1, "19_ReLU", "activation")
    assert relu.path == kb_root / "level1" / "19_ReLU.py"
    assert relu.sizes == {"batch_size": 4, "dim": 256}
    assert relu.hash == source_hash(relu.source)
    assert relu.forward_signature == "(x: torch.Tensor) -> torch.Tensor"
    assert relu.init_signature == "() -> None"
    assert by_id["level1/10_RowSum"].init_signature == "(dim: int) -> None"
    assert by_id["level1/10_RowSum"].category == "reduction"
    assert by_id["level1/2_Matmul"].category == "matmul"
    fused = by_id["level2/3_Linear_Sigmoid_Scale"]
    assert fused.level == 2
    assert fused.categories[:2] == ["fusion", "matmul"]
    assert fused.solution_relpath == Path("level2/3_Linear_Sigmoid_Scale.py")


def test_checkout_root_with_nested_kernelbench_folder(kb_root: Path, tmp_path: Path) -> None:
    shutil.copytree(kb_root, tmp_path / "repo" / "KernelBench")
    (tmp_path / "repo" / "scripts").mkdir()
    (tmp_path / "repo" / "scripts" / "run.py").write_text("print('not a problem')\n")
    assert [p.id for p in load_suite(tmp_path / "repo")] == FIXTURE_IDS


def test_level_and_filter(kb_root: Path) -> None:
    assert [p.id for p in load_suite(kb_root, level=2)] == ["level2/3_Linear_Sigmoid_Scale"]
    assert [p.id for p in load_suite(kb_root, filter=r"ReLU|Matmul")] == ["level1/2_Matmul", "level1/19_ReLU"]
    assert [p.id for p in load_suite(kb_root, level=1, filter=re.compile("Sum"))] == ["level1/10_RowSum"]
    assert load_suite(kb_root, level=3) == []


def test_single_file_ids(kb_root: Path, tmp_path: Path) -> None:
    # inside a levelN folder: levelN/<stem>
    (p,) = load_suite(kb_root / "level1" / "19_ReLU.py")
    assert (p.id, p.level) == ("level1/19_ReLU", 1)
    # anywhere else: <stem>, no level
    loose = tmp_path / "my_relu.py"
    loose.write_text((kb_root / "level1" / "19_ReLU.py").read_text())
    problem = load_problem(loose)
    assert (problem.id, problem.level) == ("my_relu", None)
    # explicit root
    assert (
        load_problem(kb_root / "level2" / "3_Linear_Sigmoid_Scale.py", root=kb_root).id
        == "level2/3_Linear_Sigmoid_Scale"
    )


def test_own_flat_folder(kb_root: Path, tmp_path: Path) -> None:
    own = tmp_path / "mine"
    (own / "activations").mkdir(parents=True)
    shutil.copy(kb_root / "level1" / "19_ReLU.py", own / "activations" / "relu.py")
    shutil.copy(kb_root / "level1" / "2_Matmul.py", own / "mm.py")
    (own / "_private.py").write_text("x = 1\n")
    problems = load_suite(own)
    assert [(p.id, p.level) for p in problems] == [("activations/relu", None), ("mm", None)]


@pytest.mark.parametrize(
    ("spec", "kwargs", "fragment"),
    [
        ("/no/such/suite", {}, "unknown suite"),
        ("builtin", {"filter": "(["}, "not a valid regular expression"),
        ("builtin", {"level": 0}, "positive integer level"),
    ],
)
def test_bad_input_is_one_line_user_error(spec: str, kwargs: dict, fragment: str) -> None:
    with pytest.raises(UserError, match=re.escape(fragment)) as info:
        load_suite(spec, **kwargs)
    assert "\n" not in str(info.value)


def test_broken_problem_file_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "level1").mkdir()
    bad = tmp_path / "level1" / "1_Bad.py"
    bad.write_text(
        "import torch\nclass Model(torch.nn.Module):\n    def forward(self, x):\n        return x\n"
        "def get_inputs():\n    return [torch.randn(4)]\ndef get_init_inputs():\n    return [\n"
    )
    with pytest.raises(ProblemError, match="1_Bad.py"):
        load_suite(tmp_path)


def test_folder_without_problems(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("nothing here\n")
    with pytest.raises(UserError, match="no KernelBench problems found"):
        load_suite(tmp_path)


def test_builtin_suite_is_complete() -> None:
    problems = load_suite("builtin")
    assert len(problems) >= 40
    assert all(isinstance(p, Problem) for p in problems)
    ids = [p.id for p in problems]
    assert len(set(ids)) == len(ids)
    assert {p.level for p in problems} == {1, 2, 3}
    for p in problems:
        level_dir, stem = p.id.split("/")
        assert level_dir == f"level{p.level}" and stem == p.name
        assert re.fullmatch(r"\d+_[A-Za-z0-9_]+", p.name), p.id
        assert p.path == BUILTIN_ROOT / level_dir / f"{stem}.py"
        assert p.categories and p.category == p.categories[0] and p.category != "other", p.id
        assert p.sizes, f"{p.id}: sizes must be module-level integer constants"
        assert p.sizes == size_constants(p.source)
        assert p.profile is not None and p.profile.traced, p.id
    # N unique per level
    for level in (1, 2, 3):
        numbers = [int(p.name.split("_")[0]) for p in problems if p.level == level]
        assert len(numbers) == len(set(numbers))
    # the categories KernelBench has, at level 1
    level1 = {p.category for p in problems if p.level == 1}
    assert {
        "activation",
        "reduction",
        "argreduce",
        "softmax",
        "norm",
        "matmul",
        "pooling",
        "conv",
        "loss",
        "scan",
    } <= level1
    assert {p.category for p in problems if p.level == 2} == {"fusion"}
    assert {p.category for p in problems if p.level == 3} == {"block"}


def test_builtin_sizes_are_gpu_sized() -> None:
    """Defaults are GPU-sized: every problem has an input of at least a million elements or a big GEMM."""
    import torch

    for p in load_suite("builtin"):
        shapes = p.profile.input_shapes
        biggest = max(int(torch.Size(s).numel()) for s in shapes)
        assert biggest >= 2**18, f"{p.id}: largest input has only {biggest} elements"
