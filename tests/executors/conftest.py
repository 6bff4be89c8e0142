"""Fixtures of the executor tests: data files shared with the verifier and agent tests, CPU settings."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent
TESTS = HERE.parent


class Data:
    """Problems and candidates: tests/verify/{problems,good,hostile}, tests/agent/data, and problems/ here."""

    def problem(self, name: str) -> Path:
        """A verifier test problem, or one of this folder's (``slow_relu``)."""
        local = HERE / "problems" / f"{name}.py"
        return local if local.exists() else TESTS / "verify" / "problems" / f"{name}.py"

    def good(self, name: str) -> str:
        """Text of a correct candidate."""
        return (TESTS / "verify" / "good" / f"{name}.py").read_text()

    def hostile(self, name: str) -> str:
        """Text of a hostile candidate."""
        return (TESTS / "verify" / "hostile" / f"{name}.py").read_text()

    def agent(self, name: str) -> Path:
        """A file of tests/agent/data."""
        return TESTS / "agent" / "data" / f"{name}.py"


@pytest.fixture(scope="session")
def data() -> Data:
    """Access to the data files."""
    return Data()


@pytest.fixture(scope="session")
def cpu_settings():
    """The interpreter, small inputs, two trials: fast and still the full check."""
    from evokernel.verify import VerifySettings

    return VerifySettings(backend="cpu", max_elements=4096, trials=2, timeout_s=60.0, memory_limit_gb=2.0)
