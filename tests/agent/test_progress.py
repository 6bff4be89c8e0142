"""The live progress bar says how many attempts a task used, also when it finished early."""

from __future__ import annotations

import io
from types import SimpleNamespace

from rich.console import Console

from evokernel.agent.progress import LiveProgress
from evokernel.agent.records import AttemptRecord, TaskSpec


def test_a_task_solved_early_shows_the_attempts_it_used() -> None:
    spec = TaskSpec(id="level1/relu", name="relu", source="")
    out = io.StringIO()
    progress = LiveProgress(30, [spec], console=Console(file=out, width=120, force_terminal=False))
    running = SimpleNamespace(spec=spec, done=False, attempts=[object()], best=None)
    with progress:
        progress.on_attempt(running, AttemptRecord(task_id=spec.id, attempt=0, round=0, stage="draft", seed=0, lesson="incorrect"))
        (task,) = progress._progress.tasks
        assert (task.completed, task.total, task.fields["stage"]) == (1, 30, "draft")
        solved = SimpleNamespace(spec=spec, done=True, attempts=[object(), object()],
                                 best=SimpleNamespace(latency_ms=None))
        progress.on_attempt(solved, AttemptRecord(task_id=spec.id, attempt=1, round=1, stage="draft", seed=0, lesson="correct [/] [bold]x"))
        assert (task.completed, task.total, task.fields["stage"]) == (2, 2, "done")
        assert task.fields["best"] == "correct"
    assert "#0 [draft] incorrect" in out.getvalue()
    assert "#1 [draft] correct [/] [bold]x" in out.getvalue()  # lessons quote candidates: printed literally


def test_a_failed_task_says_why_it_stopped() -> None:
    out = io.StringIO()
    progress = LiveProgress(30, [], console=Console(file=out, width=200, force_terminal=False))
    result = SimpleNamespace(solved=False, task_id="level1/inv", attempts=[object()],
                             stop_reason="the proposer cannot write a kernel for this task: no template for [aten.eye]")
    progress.summary(result, None, None)
    assert ("no correct kernel for level1/inv (1 attempt): the proposer cannot write a kernel for this task: "
            "no template for [aten.eye]") in out.getvalue()
