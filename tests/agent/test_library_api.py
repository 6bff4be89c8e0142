"""`evokernel.synthesize` takes settings by keyword, as its docstring says."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import evokernel
from evokernel.agent.settings import AgentSettings
from evokernel.agent.types import Proposal, ProposalRequest
from evokernel.errors import UserError

DATA = Path(__file__).parent / "data"


class NoCode:
    name = "no-code"

    def __init__(self) -> None:
        self.requests: list[ProposalRequest] = []

    async def propose(self, request: ProposalRequest) -> Proposal:
        self.requests.append(request)
        return Proposal(code=None, error="nothing to say")


class CPUStub:
    def backend_info(self) -> Any:
        return SimpleNamespace(name="cpu", times_kernels=False, device="cpu")

    def close(self) -> None:
        pass


def test_synthesize_accepts_settings_by_keyword(tmp_path: Path) -> None:
    proposer = NoCode()
    base = AgentSettings(seed=5)
    result = evokernel.synthesize(DATA / "relu_problem.py", base, memory=tmp_path / "m.sqlite", proposer=proposer,
                                  verifier=CPUStub(), budget=3, retrieval={"mode": "none"})
    assert len(result.attempts) == 3 and result.stop_reason == "budget spent"
    assert all(r.context == [] and r.knowledge == [] for r in proposer.requests)  # retrieval mode none
    assert base.budget == 30 and base.retrieval.mode == "value"  # the caller's settings are not changed


def test_unknown_keywords_name_the_accepted_forms(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"unknown setting 'budgte'.*budget=3.*settings=AgentSettings"):
        evokernel.synthesize(DATA / "relu_problem.py", memory=tmp_path / "m.sqlite", verifier=CPUStub(), budgte=3)
    with pytest.raises(UserError, match=r"\[retrieval\]: unknown setting 'mood'"):
        evokernel.synthesize(DATA / "relu_problem.py", memory=tmp_path / "m.sqlite", verifier=CPUStub(),
                             retrieval={"mood": "none"})
