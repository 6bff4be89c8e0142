"""One rule for problem ids: `synthesize` and the suite loader name a problem file the same way."""

from __future__ import annotations

from pathlib import Path

import pytest

from evokernel.agent.agent import as_task
from kernelbench.loader import BUILTIN_ROOT, load_problem
from kernelbench.problem import problem_id_for_path

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("folder, expected", [("level1", "level1/6_ReLU"), ("Level_2", "Level_2/6_ReLU"),
                                              ("mine", "6_ReLU")])
def test_synthesize_and_the_loader_agree_on_ids(tmp_path: Path, folder: str, expected: str) -> None:
    path = tmp_path / folder / "6_ReLU.py"
    path.parent.mkdir()
    path.write_text((DATA / "relu_problem.py").read_text())
    assert problem_id_for_path(path) == expected
    assert as_task(path).id == load_problem(path).id == expected
    assert as_task(path).name == "6_ReLU"  # names (and the default kernel file name) stay the stem


def test_builtin_problem_ids_match_the_suite() -> None:
    path = BUILTIN_ROOT / "level1" / "6_ReLU.py"
    assert as_task(path).id == "level1/6_ReLU"
