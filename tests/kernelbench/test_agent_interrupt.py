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

HANG_S = 30.0
AGENT_DATA = Path(__file__).parents[1] / "agent" / "data"


class _HangingVerifier:
    """Every candidate runs until close() (or HANG_S)."""

    def __init__(self) -> None:
        self.closed = threading.Event()
        self.started = threading.Event()

    def evaluate(self, problem: Any, source: str, settings: Any = None) -> Verdict:
        self.started.set()
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
    fake = _HangingVerifier()
    problem = load_problem(AGENT_DATA / "relu_problem.py")
    interrupt = threading.Thread(
        target=lambda: fake.started.wait(HANG_S) and os.kill(os.getpid(), signal.SIGINT), daemon=True
    )
    with Agent(settings, memory=tmp_path / "m.db", verifier=LocalExecutor(settings.verify, verifiers=[fake])) as agent:
        interrupt.start()
        start = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            run_agent_suite(agent, [problem], tmp_path / "run", device="cpu", close_on_interrupt=True)
        assert time.monotonic() - start < HANG_S / 2
    assert fake.closed.is_set()
