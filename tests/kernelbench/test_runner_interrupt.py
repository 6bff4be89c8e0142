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

# A hanging candidate runs this long unless killed; a stopped run must end far sooner (STOP_BOUND_S).
# Both are generous: CI runs these on two loaded cores, and nothing here waits on a sleep.
HANG_S = 120.0
STOP_BOUND_S = 60.0


class _HangingVerifier:
    """The first problem is correct at once; every other candidate runs until close() (or HANG_S).

    ``running[problem_id]`` is set when that problem's candidate has started."""

    workers = 2

    def __init__(self, first: str, problems: list) -> None:
        self.first = first
        self.closed = threading.Event()
        self.started: list[str] = []
        self.running = {p.id: threading.Event() for p in problems}

    def evaluate(self, problem: Any, source: str, settings: Any = None) -> Verdict:
        if problem.id == self.first:
            return Verdict(status="correct", message="ok", backend="cpu")
        self.started.append(problem.id)
        self.running[problem.id].set()
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


def _interrupt_once_running(fake: _HangingVerifier, ids: list[str]):
    """An on_result hook (called in the bench's thread) that presses Ctrl-C once the candidates of ``ids``
    have started."""

    def hook(record: dict) -> None:
        for pid in ids:
            assert fake.running[pid].wait(STOP_BOUND_S), f"{pid} never started"
        raise KeyboardInterrupt

    return hook


def test_ctrl_c_kills_the_running_candidates_of_its_own_verifier(
    kb_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from evokernel.verify import executors
    from evokernel.verify.executors.local import LocalExecutor

    problems = load_suite(kb_root)
    fake = _HangingVerifier(problems[0].id, problems)
    monkeypatch.setattr(executors, "make_executor",
                        lambda name, settings, **kw: LocalExecutor(settings, verifiers=[fake]))
    interrupt = _interrupt_once_running(fake, [p.id for p in problems[1:3]])  # both workers busy
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        runner.run_solutions(problems, _solutions(tmp_path, problems), run_dir=tmp_path / "run", progress=False,
                             workers=2, on_result=interrupt)
    assert time.monotonic() - start < STOP_BOUND_S  # not the running candidates' whole run (HANG_S)
    assert len(problems) == 4 and fake.closed.is_set()
    assert sorted(fake.started) == sorted(p.id for p in problems[1:3])  # two workers busy; the fourth problem never started
    run = read_run(tmp_path / "run")
    assert [r["problem_id"] for r in run.results] == [problems[0].id]  # the finished result is flushed


def test_a_remaining_wait_is_announced(
    kb_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    problems = load_suite(kb_root)[:2]
    fake = _HangingVerifier(problems[0].id, problems)
    monkeypatch.setattr(runner, "STOP_GRACE_S", 0.2)
    stop_running = runner._stop_running

    def stop_then_end(*args: Any, **kwargs: Any) -> None:
        stop_running(*args, **kwargs)  # the candidate still runs: the wait is announced
        fake.close()  # a caller's verifier is not closed by the bench: its candidate ends later, on its own

    monkeypatch.setattr(runner, "_stop_running", stop_then_end)
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        runner.run_solutions(problems, _solutions(tmp_path, problems), run_dir=tmp_path / "run", progress=False,
                             workers=2, verifier=fake, on_result=_interrupt_once_running(fake, [problems[1].id]))
    assert time.monotonic() - start < STOP_BOUND_S
    assert fake.closed.is_set()
    err = capsys.readouterr().err
    assert "waiting for 1 running candidate(s) to end" in err and "Ctrl-C again" in err
    assert err.count("\n") == 1  # one line, no traceback of the killed candidate


def test_a_ctrl_c_delivered_to_a_worker_thread_stops_the_bench(
    kb_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The OS may hand SIGINT to any thread; the main thread waiting for results must still see it."""
    import signal

    from evokernel.verify import executors
    from evokernel.verify.executors.local import LocalExecutor

    problems = load_suite(kb_root)[:2]
    fake = _HangingVerifier(problems[0].id, problems)

    def interrupt_from_the_worker() -> None:
        assert fake.running[problems[1].id].wait(STOP_BOUND_S)
        time.sleep(0.5)  # the main thread is asleep, waiting for this candidate's result
        signal.pthread_kill(worker, signal.SIGINT)

    evaluate = fake.evaluate

    def evaluate_and_note_thread(problem: Any, source: str, settings: Any = None) -> Verdict:
        nonlocal worker
        worker = threading.get_ident()
        return evaluate(problem, source, settings)

    worker = 0
    fake.evaluate = evaluate_and_note_thread  # type: ignore[method-assign]
    monkeypatch.setattr(executors, "make_executor",
                        lambda name, settings, **kw: LocalExecutor(settings, verifiers=[fake]))
    threading.Thread(target=interrupt_from_the_worker, daemon=True).start()
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        runner.run_solutions(problems, _solutions(tmp_path, problems), run_dir=tmp_path / "run", progress=False,
                             workers=2)
    assert time.monotonic() - start < STOP_BOUND_S and fake.closed.is_set()
