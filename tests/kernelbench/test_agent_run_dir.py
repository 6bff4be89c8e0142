"""An agent suite run refuses a used run folder before it records a run in the memory, and a run that
fails to start is ended in the memory (no row is left without an end time)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from evokernel.errors import UserError
from evokernel.verify import Verdict

AGENT_DATA = Path(__file__).parents[1] / "agent" / "data"


class _NoVerifier:
    """Fails the test if a candidate is ever verified."""

    def evaluate(self, problem: Any, source: str, settings: Any = None) -> Verdict:
        raise AssertionError("no candidate should be verified")

    def close(self) -> None:
        pass


def _agent(tmp_path: Path) -> Any:
    from evokernel.agent.agent import Agent
    from evokernel.agent.settings import load_settings
    from evokernel.verify.executors.local import LocalExecutor

    settings = load_settings(None, {"budget": 1, "verify.backend": "cpu"})
    return Agent(settings, memory=tmp_path / "m.db", verifier=LocalExecutor(settings.verify, verifiers=[_NoVerifier()]))


def test_a_used_run_folder_is_refused_before_the_memory_records_a_run(tmp_path: Path) -> None:
    from evokernel.agent.suite import run_agent_suite
    from kernelbench.loader import load_problem

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "results.jsonl").write_text('{"type": "header"}\n')
    with _agent(tmp_path) as agent:
        with pytest.raises(UserError, match="already exists; pass another --out"):
            run_agent_suite(agent, [load_problem(AGENT_DATA / "relu_problem.py")], run_dir, device="cpu")
        assert agent.memory.runs() == []
    assert (run_dir / "results.jsonl").read_text() == '{"type": "header"}\n'  # untouched


def test_a_run_that_fails_to_start_is_ended_in_the_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from evokernel.agent import suite
    from kernelbench.loader import load_problem

    def broken_header(*args: Any, **kwargs: Any) -> dict[str, Any]:
        raise OSError("disk full")

    monkeypatch.setattr(suite, "make_header", broken_header)
    with _agent(tmp_path) as agent:
        with pytest.raises(OSError, match="disk full"):
            suite.run_agent_suite(agent, [load_problem(AGENT_DATA / "relu_problem.py")], tmp_path / "run", device="cpu")
        (run,) = agent.memory.runs()
    assert run["ended"] is not None
    assert run["summary"]["interrupted"] is True and "disk full" in run["summary"]["reason"]
