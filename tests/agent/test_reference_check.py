"""A broken reference stops synthesize before the first attempt: one line naming the file, exit 2, no memory writes."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from evokernel.agent.agent import Agent
from evokernel.agent.settings import AgentSettings
from evokernel.agent.types import Proposal, ProposalRequest
from evokernel.errors import UserError
from evokernel.memory import Memory
from evokernel.programs import ProblemError, run_reference

DATA = Path(__file__).parent / "data"

BROKEN_FORWARD = (DATA / "relu_problem.py").read_text().replace(
    "def forward(self, x", "def forward(self, x, _unused=None):\n        raise RuntimeError('boom')\n\n    def _old(self, x", 1
)


class CountingProposer:
    name = "counting"

    def __init__(self) -> None:
        self.requests: list[ProposalRequest] = []

    async def propose(self, request: ProposalRequest) -> Proposal:
        self.requests.append(request)
        return Proposal(code=None, error="no code")


class CPUStub:
    def evaluate(self, *a: Any) -> Any:  # pragma: no cover - never reached
        raise AssertionError("no candidate should be verified")

    def backend_info(self) -> Any:
        return SimpleNamespace(name="cpu", times_kernels=False, device="cpu")

    def close(self) -> None:
        pass


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    path = tmp_path / "broken_forward.py"
    path.write_text(BROKEN_FORWARD)
    return path


def test_run_reference_names_the_file_and_the_step(broken: Path) -> None:
    with pytest.raises(ProblemError, match=r"broken_forward.py: the reference forward failed: RuntimeError: boom"):
        run_reference(broken.read_text(), str(broken))
    out = run_reference((DATA / "relu_problem.py").read_text(), "relu_problem.py")
    assert out is not None


def test_a_broken_reference_stops_before_any_attempt(tmp_path: Path, broken: Path) -> None:
    proposer = CountingProposer()
    with Memory.open(tmp_path / "m.sqlite") as memory:
        agent = Agent(AgentSettings(budget=3), memory=memory, proposer=proposer, verifier=CPUStub())
        with pytest.raises(UserError, match="broken_forward.py: the reference forward failed"):
            agent.synthesize(broken)
        assert proposer.requests == []
        assert memory.items(kind="experience") == [] and memory.runs() == []


def test_synthesize_cli_reports_a_broken_reference_with_exit_2(tmp_path: Path, broken: Path, monkeypatch,
                                                               capsys: pytest.CaptureFixture) -> None:
    import evokernel.verify.executors as executors
    from evokernel.cli import main

    monkeypatch.setattr(executors, "make_executor", lambda *a, **k: CPUStub())
    rc = main(["synthesize", str(broken), "--memory", str(tmp_path / "m.sqlite"), "--out", str(tmp_path / "k.py")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and str(broken) in err[0] and "reference forward failed" in err[0]
    with Memory.open(tmp_path / "m.sqlite") as memory:
        assert memory.items(kind="experience") == [] and memory.runs() == []


def test_run_reference_turns_exit_into_a_problem_error_and_keeps_the_callers_rng() -> None:
    import torch

    source = (DATA / "relu_problem.py").read_text()
    exiting = source.replace("return torch.relu(x)", "raise SystemExit(3)")
    assert exiting != source
    with pytest.raises(ProblemError, match="the reference forward failed: SystemExit: 3"):
        run_reference(exiting, "exits.py")
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    run_reference(source, "relu_problem.py", seed=7)
    assert torch.equal(torch.rand(3), expected)
