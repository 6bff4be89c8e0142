"""A run that stops early (a stop error, Ctrl-C, cancellation) keeps its best kernel and its records.

A stub verifier reports simulated latencies so that refining happens on the CPU: unit tests of the
bookkeeping, never reported numbers.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from evokernel.agent.agent import Agent
from evokernel.agent.settings import AgentSettings
from evokernel.agent.types import Proposal, ProposalRequest
from evokernel.errors import UserError
from evokernel.memory import Memory

DATA = Path(__file__).parent / "data"


class StubVerifier:
    """Verdicts from the candidate's first line ("# correct 2.0", "# incorrect"), as if timed on a GPU."""

    def evaluate(self, problem: Any, code: str, settings: Any) -> Any:
        words = code.splitlines()[0].lstrip("# ").split()
        status, latency = words[0], (float(words[1]) if len(words) > 1 else None)
        data = {"status": status, "feasible": status == "correct", "message": status, "latency_ms": latency,
                "kernels_launched": ["k"] if status == "correct" else []}
        return SimpleNamespace(to_dict=lambda: dict(data))

    def backend_info(self) -> Any:
        return SimpleNamespace(name="cuda", times_kernels=True, device="simulated")

    def close(self) -> None:
        pass


class StoppingProposer:
    """Replies from a script; at attempt ``stop_at`` it raises ``stop`` (or waits forever when None)."""

    name = "stopping"

    def __init__(self, script: list[str], stop_at: int, stop: BaseException | None) -> None:
        self.script, self.stop_at, self.stop = script, stop_at, stop

    async def propose(self, request: ProposalRequest) -> Proposal:
        if request.attempt == self.stop_at:
            if self.stop is None:
                await asyncio.sleep(3600)
            raise self.stop
        return Proposal(code=f"{self.script[request.attempt]}\n# attempt {request.attempt}")


SCRIPT = ["# correct 2.0", "# correct 1.0", "# correct 1.5"]


def settings(budget: int = 10) -> AgentSettings:
    s = AgentSettings(budget=budget)
    s.retrieval.epsilon = 0.0
    s.refine_epsilon = 0.0
    return s


def check_stopped_run(agent: Agent, memory: Memory, reason: str) -> None:
    result = agent.last_result
    assert result is not None and result.solved and result.best_latency_ms == 1.0  # the refined kernel is kept
    assert len(result.attempts) == 2 and result.stop_reason == f"stopped: {reason}"
    assert result.best_code is not None and result.best_code.startswith("# correct 1.0")
    run = next(r for r in memory.runs() if r["id"] == agent.last_run_id)
    assert run["ended"] is not None
    assert run["summary"]["interrupted"] is True and run["summary"]["reason"] == reason
    assert run["summary"]["attempts"] == 2


@pytest.mark.parametrize(
    "stop, reason",
    [(UserError("the provider rejected the API key (401)"), "the provider rejected the API key (401)"),
     (KeyboardInterrupt(), "interrupted")],
    ids=["user-error", "ctrl-c"],
)
def test_a_stop_keeps_the_best_kernel_and_ends_the_run(tmp_path: Path, stop: BaseException, reason: str) -> None:
    with Memory.open(tmp_path / "m.sqlite") as memory:
        agent = Agent(settings(), memory=memory, proposer=StoppingProposer(SCRIPT, 2, stop), verifier=StubVerifier())
        with pytest.raises(type(stop)):
            agent.synthesize(DATA / "relu_problem.py")
        check_stopped_run(agent, memory, reason)


def test_cancellation_keeps_the_best_kernel_and_ends_the_run(tmp_path: Path) -> None:
    with Memory.open(tmp_path / "m.sqlite") as memory:
        agent = Agent(settings(), memory=memory, proposer=StoppingProposer(SCRIPT, 2, None), verifier=StubVerifier())

        async def go() -> None:
            task = asyncio.ensure_future(agent.asynthesize(DATA / "relu_problem.py"))
            while agent.last_result is None or len(agent.last_result.attempts) < 2:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)  # the third proposal is waiting
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(go())
        check_stopped_run(agent, memory, "interrupted")


@pytest.fixture
def stub_agent_parts(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The CLI's Agent gets the stopping proposer and the stub verifier."""
    import evokernel.agent.agent as agent_mod
    import evokernel.verify.executors as executors

    parts = SimpleNamespace(stop=UserError("the provider rejected the API key (401)"), stop_at=2)
    monkeypatch.setattr(agent_mod, "make_proposer",
                        lambda s: StoppingProposer(SCRIPT, parts.stop_at, parts.stop))
    monkeypatch.setattr(executors, "make_executor", lambda *a, **k: StubVerifier())
    return parts


@pytest.mark.parametrize("stop, code", [(UserError("the provider rejected the API key (401)"), 2),
                                        (KeyboardInterrupt(), 130)], ids=["user-error", "ctrl-c"])
def test_synthesize_writes_the_best_kernel_and_a_stopped_record(tmp_path: Path, stub_agent_parts: Any,
                                                                  capsys: pytest.CaptureFixture, stop: BaseException,
                                                                  code: int) -> None:
    from evokernel.cli import main

    stub_agent_parts.stop = stop
    out = tmp_path / "out" / "k.py"
    rc = main(["synthesize", str(DATA / "relu_problem.py"), "--memory", str(tmp_path / "m.sqlite"), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == code and "Traceback" not in err
    assert out.read_text().startswith("# correct 1.0")
    record = json.loads(out.with_suffix(".run.json").read_text())
    reason = "interrupted" if code == 130 else str(stop)
    assert record["stopped"] == reason and record["kernel"] == str(out)
    assert record["result"]["stop_reason"] == f"stopped: {reason}" and len(record["result"]["attempts"]) == 2
    assert f"kernel: {out}" in err and "run record:" in err


def test_synthesize_stopped_before_any_attempt_writes_nothing(tmp_path: Path, stub_agent_parts: Any,
                                                              capsys: pytest.CaptureFixture) -> None:
    from evokernel.cli import main

    stub_agent_parts.stop_at = 0
    out = tmp_path / "k.py"
    rc = main(["synthesize", str(DATA / "relu_problem.py"), "--memory", str(tmp_path / "m.sqlite"), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1] == "evokernel: error: the provider rejected the API key (401)"
    assert not out.exists() and not out.with_suffix(".run.json").exists()


class BreakingVerifier(StubVerifier):
    """Verifies two candidates, then fails as a pool that lost its workers twice would."""

    def __init__(self) -> None:
        self.calls = 0

    def evaluate(self, problem: Any, code: str, settings: Any) -> Any:
        self.calls += 1
        if self.calls > 2:
            raise RuntimeError("the verifier pool broke twice")
        return super().evaluate(problem, code, settings)


def test_synthesize_writes_the_best_kernel_before_an_unexpected_error(tmp_path: Path, stub_agent_parts: Any,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import evokernel.verify.executors as executors
    from evokernel.cli import main

    monkeypatch.setattr(executors, "make_executor", lambda *a, **k: BreakingVerifier())
    stub_agent_parts.stop_at = 99
    out = tmp_path / "k.py"
    with pytest.raises(RuntimeError, match="broke twice"):  # not a user error: raised as it is
        main(["synthesize", str(DATA / "relu_problem.py"), "--memory", str(tmp_path / "m.sqlite"), "--out", str(out)])
    assert out.read_text().startswith("# correct 1.0")  # ... after the best kernel was written
    record = json.loads(out.with_suffix(".run.json").read_text())
    assert record["stopped"] == "RuntimeError: the verifier pool broke twice"


HANG_S = 40.0


class HangingVerifier(StubVerifier):
    """Every candidate runs until close() (a real verifier kills its workers there)."""

    def __init__(self) -> None:
        import threading

        self.started, self.closed = threading.Event(), threading.Event()

    def evaluate(self, problem: Any, code: str, settings: Any) -> Any:
        import threading
        import time

        self.thread = threading.get_ident()
        start = time.monotonic()
        self.started.set()
        self.closed.wait(HANG_S)
        self.waited = time.monotonic() - start
        return super().evaluate(problem, "# timeout", settings)

    def close(self) -> None:
        self.closed.set()


@pytest.mark.parametrize("receiver", ["main", "worker"])
def test_ctrl_c_in_synthesize_closes_the_verifier_when_asked(tmp_path: Path, receiver: str) -> None:
    """The OS hands a process's SIGINT to any thread: the run must stop promptly either way."""
    import os
    import signal
    import threading
    import time

    verifier = HangingVerifier()

    def interrupt() -> None:
        verifier.started.wait(60)
        if receiver == "main":
            os.kill(os.getpid(), signal.SIGINT)
        else:  # the thread running the candidate gets it while the main thread sleeps in the event loop
            time.sleep(0.5)
            signal.pthread_kill(verifier.thread, signal.SIGINT)

    with Memory.open(tmp_path / "m.sqlite") as memory:
        agent = Agent(settings(), memory=memory, proposer=StoppingProposer(SCRIPT, 5, None), verifier=verifier)
        threading.Thread(target=interrupt, daemon=True).start()
        with pytest.raises(KeyboardInterrupt):  # without the close, the candidate would run its 120 s
            agent.synthesize(DATA / "relu_problem.py", close_on_interrupt=True)
    assert verifier.closed.is_set()
    assert agent.last_result is not None and agent.last_result.stop_reason == "stopped: interrupted"
    assert verifier.waited < HANG_S / 2  # closed by the interrupt, not released by the time limit
