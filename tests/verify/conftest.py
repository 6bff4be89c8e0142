"""Fixtures for the verifier tests: one warm CPU Verifier per session, and the data files."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


class Data:
    """Test problems (problems/), good candidates (good/) and hostile candidates (hostile/)."""

    root = HERE

    def problem(self, name: str) -> Path:
        """Path of a test problem."""
        return HERE / "problems" / f"{name}.py"

    def good(self, name: str) -> str:
        """Text of a good candidate."""
        return (HERE / "good" / f"{name}.py").read_text()

    def hostile(self, name: str) -> str:
        """Text of a hostile candidate."""
        return (HERE / "hostile" / f"{name}.py").read_text()


@pytest.fixture(scope="session")
def data() -> Data:
    """Access to the data files."""
    return Data()


@pytest.fixture(scope="session")
def settings():
    """Small problems (the interpreter is slow), short limits."""
    from evokernel.verify import VerifySettings

    return VerifySettings(backend="cpu", max_elements=4096, timeout_s=60.0, memory_limit_gb=2.0)


@pytest.fixture(scope="session")
def verifier(settings):
    """One warm worker pool shared by every test that evaluates a candidate."""
    from evokernel.verify import Verifier

    with Verifier(settings, workers=2) as v:
        yield v
