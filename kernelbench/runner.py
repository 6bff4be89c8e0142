"""Evaluate the solution file of every problem of a suite with the verifier and record the run.

A solutions folder mirrors the problem ids: the solution of ``level1/19_ReLU`` is
``DIR/level1/19_ReLU.py`` (a Python source defining ``ModelNew``). Problems without a solution file
are recorded with status ``missing`` and count as failures in every metric, as are solutions that
cannot be read (status ``unreadable``: not UTF-8 text, a folder, no permission) and problems whose
reference program fails (status ``problem_error``); the run goes on with the next problem.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evokernel._interrupts import wait_result
from evokernel.errors import UserError
from kernelbench.metrics import compute_metrics
from kernelbench.records import MISSING, RunWriter, check_new_run_dir, make_header, result_record

if TYPE_CHECKING:
    from evokernel.verify import VerifySettings
    from kernelbench.problem import Problem

__all__ = [
    "BenchRun",
    "run_solutions",
    "solution_path",
    "default_run_dir",
    "reference_cache_path",
    "resolve_backend",
    "HARNESS_ERROR",
    "UNREADABLE",
    "PROBLEM_ERROR",
]

log = logging.getLogger(__name__)

HARNESS_ERROR = "harness_error"  # the verifier itself failed on a problem (a bug, recorded, never fatal)
UNREADABLE = "unreadable"  # the solution file exists but cannot be read as UTF-8 text
PROBLEM_ERROR = "problem_error"  # the problem cannot be evaluated: its reference program fails
REFERENCE_CACHE = "reference_timings.json"
STOP_GRACE_S = 3.0  # how long a stopping bench waits for killed candidates before it says what it waits for


@dataclass
class BenchRun:
    """What a bench run produced: its folder, result records and metrics."""

    run_dir: Path
    results: list[dict[str, Any]]
    metrics: dict[str, Any]
    header: dict[str, Any]


def solution_path(solutions_dir: str | Path, problem: Problem) -> Path:
    """``DIR/<problem id>.py``."""
    return Path(solutions_dir) / problem.solution_relpath


def default_run_dir(base: str | Path = "runs", prefix: str = "bench") -> Path:
    """A fresh run folder name: ``runs/bench-YYYYmmdd-HHMMSS`` (suffixed when taken)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    candidate = Path(base) / f"{prefix}-{stamp}"
    n = 1
    while candidate.exists():
        n += 1
        candidate = Path(base) / f"{prefix}-{stamp}-{n}"
    return candidate


def reference_cache_path(run_dir: str | Path) -> Path:
    """Where reference timings are cached: beside the run folders (``RUN_DIR/../reference_timings.json``).

    Runs written to the same parent folder share it, so repeated benches do not re-time references;
    the verifier keys its entries by problem hash, sizes, device and torch version.
    """
    return Path(run_dir).resolve().parent / REFERENCE_CACHE


def resolve_backend(backend: str) -> tuple[str, str]:
    """(concrete backend name, device description) for a --backend value; UserError when it is absent."""
    from evokernel.backends import get_backend

    chosen = get_backend(backend)
    return chosen.name, chosen.describe()


class _Unreadable(Exception):
    """A solution file that exists but cannot be read; the message says why."""


def _read_solution(path: Path) -> str | None:
    """The solution's text; None when there is no file; _Unreadable when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except IsADirectoryError as exc:
        raise _Unreadable("is a folder, not a solution file") from exc
    except UnicodeDecodeError as exc:
        raise _Unreadable(f"is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise _Unreadable(f"cannot be read ({exc.strerror or exc}); check its permissions") from exc


def check_solutions_dir(solutions_dir: Path, problems: Sequence[Problem]) -> None:
    """UserError when the folder is missing or holds no solution for any selected problem."""
    if not solutions_dir.is_dir():
        raise UserError(f"--solutions {solutions_dir}: no such folder; pass the folder holding <problem id>.py files")
    if problems and not any(solution_path(solutions_dir, p).is_file() for p in problems):
        example = solution_path(solutions_dir, problems[0])
        raise UserError(
            f"--solutions {solutions_dir}: no solution file for any selected problem; "
            f"expected files named after the problem ids, e.g. {example}"
        )


def run_solutions(
    problems: Sequence[Problem],
    solutions_dir: str | Path,
    *,
    run_dir: str | Path,
    settings: VerifySettings | None = None,
    suite: str = "builtin",
    progress: bool = True,
    console: Any = None,
    verifier: Any = None,
    workers: int | None = None,
    executor: str = "local",
    ray_address: str | None = None,
    jobs: int | None = None,
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> BenchRun:
    """Verify ``DIR/<id>.py`` for every problem, write ``run_dir/results.jsonl``, return records + metrics.

    ``settings.reference_cache`` defaults to ``reference_cache_path(run_dir)``. Solutions are verified
    by an executor (``executor`` "local" or "ray", see :func:`evokernel.verify.make_executor`) with
    ``workers`` workers: default one per GPU/NPU (all visible devices, or the Ray cluster's), 1 on the
    CPU interpreter. ``verifier`` may be a warm executor or ``Verifier`` to reuse instead (it is not
    closed here); with a bare Verifier on a device, solutions are verified one at a time so timings
    never share the device. Records come out in problem order. ``jobs`` is a deprecated alias of
    ``workers``.
    """
    from evokernel.verify import VerifySettings
    from evokernel.verify.executors import Executor, make_executor

    solutions_dir = Path(solutions_dir)
    check_solutions_dir(solutions_dir, problems)
    run_dir = Path(run_dir)
    settings = settings or VerifySettings()
    if settings.reference_cache is None:
        settings = settings.replace(reference_cache=str(reference_cache_path(run_dir)))
    if workers is None:
        workers = jobs
    if workers is not None and workers < 1:
        raise UserError(f"--workers {workers}: pass a positive number of concurrent verifications")
    check_new_run_dir(run_dir)  # before starting any worker
    own_verifier = verifier is None
    if own_verifier:
        if workers is None and executor == "local" and resolve_backend(settings.backend)[0] == "cpu":
            workers = 1
        verifier = make_executor(executor, settings, workers=workers, address=ray_address)
    try:
        if isinstance(verifier, Executor):
            info = verifier.backend_info()
            backend, device = info.name, info.device
            threads = min(workers or verifier.workers, verifier.workers)
        else:
            backend, device = resolve_backend(settings.backend)
            threads = workers or 1
            if threads > 1 and backend != "cpu":
                log.warning("--workers %d ignored with one Verifier on %s: solutions are timed one at a time",
                            threads, backend)
                threads = 1
        header = make_header(
            "solutions",
            settings=settings.to_dict(),
            suite=suite,
            device=device,
            backend=backend,
            problems=problems,
            extra={"solutions": str(solutions_dir), "workers": threads,
                   "executor": getattr(verifier, "name", "verifier")},
        )
        results: list[dict[str, Any]] = []
        started = time.monotonic()
        with RunWriter(run_dir, header) as writer:
            pool = ThreadPoolExecutor(threads, thread_name_prefix="evokernel-bench")
            stopping = threading.Event()
            futures: list[Future[dict[str, Any]]] = []
            try:
                with _progress(progress, console, len(problems)) as advance:
                    futures = [pool.submit(_evaluate_one, verifier, p, solutions_dir, settings, stopping)
                               for p in problems]
                    for problem, future in zip(problems, futures):
                        record = wait_result(future)  # wakes for a Ctrl-C that another thread received
                        writer.write(record)
                        results.append(record)
                        if on_result is not None:
                            on_result(record)
                        advance(problem.id, record["status"])
            except BaseException:  # Ctrl-C or an error: stop now; every finished record is already written
                stopping.set()
                _stop_running(pool, futures, verifier if own_verifier else None, settings.timeout_s)
                raise
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
    finally:
        if own_verifier:
            verifier.close()
    log.info("bench: %d problems in %.1fs -> %s", len(problems), time.monotonic() - started, run_dir)
    metrics = compute_metrics(results, backend=backend)
    return BenchRun(run_dir=run_dir, results=results, metrics=metrics, header=header)


def _stop_running(
    pool: ThreadPoolExecutor, futures: Sequence[Future[Any]], verifier: Any, timeout_s: float
) -> None:
    """Drop the queued problems and end the running candidates; say on stderr what any remaining wait is for.

    ``verifier`` (this run's own, else None) is closed, which kills the candidates running in its
    workers; a verifier the caller passed in is left alone, so its candidates run to their end.
    """
    pool.shutdown(wait=False, cancel_futures=True)
    if verifier is not None:
        try:
            verifier.close()
        except Exception:  # best effort: the run is stopping anyway
            log.debug("closing the verifier failed", exc_info=True)
    running = [f for f in futures if not f.done()]
    if running:
        running = list(wait(running, timeout=STOP_GRACE_S).not_done)
    if running:
        print(
            f"bench: stopping; waiting for {len(running)} running candidate(s) to end "
            f"(at most their {timeout_s:g} s timeout; Ctrl-C again to abort)",
            file=sys.stderr,
            flush=True,
        )


def _evaluate_one(
    verifier: Any, problem: Problem, solutions_dir: Path, settings: Any, stopping: threading.Event | None = None
) -> dict[str, Any]:
    """The result record of one problem; a bad solution file or a failing reference is recorded, not raised.

    Once ``stopping`` is set (the run was interrupted and its verifier closed), errors are not logged:
    the record will not be written.
    """
    from evokernel.programs import ProblemError

    path = solution_path(solutions_dir, problem)
    try:
        source = _read_solution(path)
    except _Unreadable as exc:
        return result_record(problem, None, status=UNREADABLE, solution=path, message=f"the solution {path} {exc}")
    if source is None:
        return result_record(problem, None, status=MISSING, message=f"no solution file {path}")
    try:
        verdict = verifier.evaluate(problem, source, settings)
    except ProblemError as exc:  # the reference fails: this problem cannot be judged, the others can
        log.warning("%s: not evaluated: %s", problem.id, exc)
        return result_record(
            problem, None, status=PROBLEM_ERROR, solution=path, message=f"the problem could not be evaluated: {exc}"
        )
    except UserError:
        raise
    except Exception as exc:  # the harness failed, not the candidate: record it and go on
        if stopping is None or not stopping.is_set():
            log.exception("verifier failed on %s", problem.id)
        return result_record(
            problem, None, status=HARNESS_ERROR, solution=path, message=f"verifier error: {type(exc).__name__}: {exc}"
        )
    return result_record(problem, verdict.to_dict(), solution=path)


class _progress:
    """A rich progress bar on stderr (or nothing), as a context manager yielding advance(id, status)."""

    def __init__(self, enabled: bool, console: Any, total: int) -> None:
        self.enabled, self.console, self.total = enabled, console, total
        self.correct = 0
        self._bar: Any = None

    def __enter__(self) -> Callable[[str, str], None]:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(
                TextColumn("[bold]bench[/]"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("correct {task.fields[correct]}"),
                TimeElapsedColumn(),
                TextColumn("{task.fields[current]}"),
                console=self.console or Console(stderr=True),
                transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task("bench", total=self.total, correct=0, current="")
        return self.advance

    def advance(self, problem_id: str, status: str) -> None:
        self.correct += status == "correct"
        if self._bar is not None:
            self._bar.update(self._task, advance=1, correct=self.correct, current=f"{problem_id}: {status}")

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
