"""Fixtures of the kernelbench tests: paths of the fixture suite and recorded runs."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def kb_root() -> Path:
    """A few problems in the public KernelBench layout (level1/..., level2/...)."""
    return FIXTURES / "kb"


@pytest.fixture
def runs_dir() -> Path:
    """Recorded runs: gpu_solutions, gpu_solutions_b, cpu_solutions, agent."""
    return FIXTURES / "runs"
