"""Live progress of agent runs on the terminal (rich): stage, attempt and best so far per task."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from evokernel.agent.loop import TaskState
from evokernel.agent.records import AttemptRecord, TaskResult, TaskSpec

__all__ = ["LiveProgress", "SuiteProgress", "best_text"]


def best_text(state: TaskState) -> str:
    """What the best kernel of a task is so far, in a few words."""
    if state.best is None:
        return "no correct kernel yet"
    if state.best.latency_ms is not None:
        return f"best {state.best.latency_ms:.4g} ms"
    return "correct"


class LiveProgress:
    """A progress bar per task and one line per attempt; a context manager around a run."""

    def __init__(self, budget: int, tasks: Sequence[TaskSpec], *, console: Console | None = None,
                 quiet: bool = False) -> None:
        self.console = console or Console(stderr=True)
        self.quiet = quiet
        self.budget = budget
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[stage]}"),
            TextColumn("{task.fields[best]}"),
            TimeElapsedColumn(),
            console=self.console,
            disable=quiet,
        )
        self._bars = {
            t.id: self._progress.add_task(t.id, total=budget, stage="draft", best="no correct kernel yet") for t in tasks
        }
        self._started = time.perf_counter()
        self.wall_s = 0.0

    def __enter__(self) -> LiveProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()
        self.wall_s = time.perf_counter() - self._started

    def on_attempt(self, state: TaskState, record: AttemptRecord) -> None:
        """Advance the task's bar and print the attempt's one-line lesson."""
        bar = self._bars.get(state.spec.id)
        if bar is None:
            return
        done = state.done
        used = len(state.attempts)
        self._progress.update(
            bar,
            completed=used,
            total=used if done else self.budget,  # a finished task's bar is full and counts the attempts it used
            stage="done" if done else record.stage,
            best=best_text(state),
        )
        if not self.quiet:
            line = f"#{record.attempt} [{record.stage}] {record.lesson}"  # lessons quote candidates: no markup
            self._progress.console.print(f"[dim]{escape(state.spec.id)}[/dim] {escape(line)}", highlight=False)

    def summary(self, result: TaskResult, out: Path | None, record: Path | None) -> None:
        """Final lines: outcome, where the kernel and the run record went."""
        n = len(result.attempts)
        attempts = f"{n} attempt{'s' if n != 1 else ''}"
        if result.solved:
            speed = f", {result.best_latency_ms:.4g} ms" if result.best_latency_ms is not None else ""
            self.console.print("[green]correct kernel[/green] " + escape(
                f"for {result.task_id}{speed} ({attempts}; {result.stop_reason})"))
        else:
            self.console.print("[red]no correct kernel[/red] " + escape(
                f"for {result.task_id} ({attempts}): {result.stop_reason}"))
        if out is not None:
            self.console.print(f"kernel: {out}", markup=False)
        if record is not None:
            self.console.print(f"run record: {record}", markup=False)


class SuiteProgress:
    """One bar for a suite run: problems finished, and how many are solved, round by round."""

    def __init__(self, tasks: int, *, console: Console | None = None, quiet: bool = False) -> None:
        self.console = console or Console(stderr=True)
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("solved {task.fields[solved]}"),
            TimeElapsedColumn(),
            console=self.console,
            disable=quiet,
        )
        self._bar = self._progress.add_task("round 0", total=tasks, solved=0)
        self._done: set[str] = set()
        self._solved: set[str] = set()

    def __enter__(self) -> SuiteProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def on_attempt(self, state: TaskState, record: AttemptRecord) -> None:
        """Count finished and solved problems."""
        if state.done:
            self._done.add(state.spec.id)
        if state.best is not None:
            self._solved.add(state.spec.id)
        self._progress.update(
            self._bar, description=f"round {record.round + 1}", completed=len(self._done), solved=len(self._solved)
        )
