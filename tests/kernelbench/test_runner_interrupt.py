"""Ctrl-C stops a bench at once: queued problems dropped, running candidates killed, finished results kept."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

import kernelbench.runner as runner
from evokernel.verify import Verdict
from kernelbench.loader import load_suite
from kernelbench.records import read_run

HANG_S = 20.0


class _HangingVerifier:
    """The first problem is correct at once; every other candidate runs until close() (or HANG_S)."""

    workers = 2

    def __init__(self, first: str) -> None:
        self.first = first
        self.closed = threading.Event()
        self.started: list[str] = []

    def evaluate(self, problem: Any, source: str, settings: Any = None) -> Verdict:
        if problem.id == self.first:
            return Verdict(status="correct", message="ok", backend="cpu")
        self.started.append(problem.id)
        if self.closed.wait(HANG_S):
            raise RuntimeError("the worker was killed")
        return Verdict(status="timeout", message="ran to its timeout", backend="cpu")

    def close(self) -> None:
        self.closed.set()


def _solutions(tmp_path: Path, problems: list) -> Path:
    root = tmp_path / "solutions"
    for p in problems:
        (root / f"{p.id}.py").parent.mkdir(parents=True, exist_ok=True)
        (root / f"{p.id}.py").write_text("class ModelNew: pass\n")
    return root


def _interrupt_after_first(record: dict) -> None:
    time.sleep(0.3)  # the second candidate is running by now
    raise KeyboardInterrupt


def test_ctrl_c_kills_the_running_candidates_of_its_own_verifier(
    kb_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from evokernel.verify import executors
    from evokernel.verify.executors.local import LocalExecutor

    problems = load_suite(kb_root)
    fake = _HangingVerifier(problems[0].id)
    monkeypatch.setattr(executors, "make_executor",
                        lambda name, settings, **kw: LocalExecutor(settings, verifiers=[fake]))
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        runner.run_solutions(problems, _solutions(tmp_path, problems), run_dir=tmp_path / "run", progress=False,
                             workers=2, on_result=_interrupt_after_first)
    assert time.monotonic() - start < HANG_S / 2  # not the running candidate's whole run
    assert len(problems) == 4 and fake.closed.is_set()
    assert sorted(fake.started) == sorted(p.id for p in problems[1:3])  # two workers busy; the fourth problem never started
    run = read_run(tmp_path / "run")
    assert [r["problem_id"] for r in run.results] == [problems[0].id]  # the finished result is flushed


def test_a_remaining_wait_is_announced(
    kb_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    problems = load_suite(kb_root)[:2]
    fake = _HangingVerifier(problems[0].id)
    monkeypatch.setattr(runner, "STOP_GRACE_S", 0.2)
    threading.Timer(1.5, fake.close).start()  # a caller's verifier is not closed by the bench: it ends later
    with pytest.raises(KeyboardInterrupt):
        runner.run_solutions(problems, _solutions(tmp_path, problems), run_dir=tmp_path / "run", progress=False,
                             workers=2, verifier=fake, on_result=_interrupt_after_first)
    err = capsys.readouterr().err
    assert "waiting for 1 running candidate(s) to end" in err and "Ctrl-C again" in err
    assert err.count("\n") == 1  # one line, no traceback of the killed candidate
