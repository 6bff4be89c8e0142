"""Ctrl-C during an agent suite run kills the running verifications instead of waiting for them."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from evokernel.verify import Verdict

# A hanging candidate runs this long unless killed; the interrupted run must end far sooner (STOP_BOUND_S).
# Both are generous: CI runs this on two loaded cores, and the interrupt waits on an event, not a sleep.
HANG_S = 120.0
STOP_BOUND_S = 60.0
AGENT_DATA = Path(__file__).parents[1] / "agent" / "data"


class _HangingVerifier:
    """Every candidate runs until close() (or HANG_S); ``running[problem_id]`` is set once one of that
    problem's candidates has started."""

    def __init__(self, problem_ids: list[str]) -> None:
        self.closed = threading.Event()
        self.running = {pid: threading.Event() for pid in problem_ids}

    def evaluate(self, problem: Any, source: str, settings: Any = None) -> Verdict:
        self.running[problem.id].set()
        self.closed.wait(HANG_S)
        return Verdict(status="timeout", message="ran to its timeout", backend="cpu")

    def close(self) -> None:
        self.closed.set()


def test_ctrl_c_in_an_agent_suite_run_stops_at_once(tmp_path: Path) -> None:
    from evokernel.agent.agent import Agent
    from evokernel.agent.settings import load_settings
    from evokernel.agent.suite import run_agent_suite
    from evokernel.verify.executors.local import LocalExecutor
    from kernelbench.loader import load_problem

    settings = load_settings(None, {"budget": 2, "verify.backend": "cpu"})
    problem = load_problem(AGENT_DATA / "relu_problem.py")
    fake = _HangingVerifier([problem.id])
    sent = threading.Event()

    def interrupt_once_running() -> None:  # Ctrl-C once the candidate runs, however long the setup took
        if fake.running[problem.id].wait(STOP_BOUND_S):
            sent.set()
            os.kill(os.getpid(), signal.SIGINT)

    interrupt = threading.Thread(target=interrupt_once_running, daemon=True)
    with Agent(settings, memory=tmp_path / "m.db", verifier=LocalExecutor(settings.verify, verifiers=[fake])) as agent:
        interrupt.start()
        start = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            run_agent_suite(agent, [problem], tmp_path / "run", device="cpu", close_on_interrupt=True)
        assert time.monotonic() - start < STOP_BOUND_S  # not the running candidate's whole run (HANG_S)
    assert sent.is_set() and fake.closed.is_set()
