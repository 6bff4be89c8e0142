"""What every executor promises: ``evaluate(problem, candidate_source, settings) -> Verdict``.

An executor is a drop-in for a :class:`~evokernel.verify.Verifier` wherever the agent or the bench
runner uses one: blocking, thread-safe ``evaluate``, ``evaluate_async``, ``close`` and the context
manager. It adds where candidates run (one worker per device, on this machine or on a Ray
cluster), which backend those workers have (``backend_info``), and what happens when a worker dies
mid-candidate: the attempt is retried once on another worker, then recorded as ``crashed``.

A candidate that crashes its own sandboxed child is not a worker death: the Verifier already turns
that into a normal ``crashed`` verdict, and nothing is retried.
"""

from __future__ import annotations

import asyncio
import collections
import os
import socket
from dataclasses import dataclass
from typing import Any

from evokernel.verify.settings import VerifySettings
from evokernel.verify.verdict import Verdict

__all__ = ["Executor", "BackendInfo", "ShippedProblem", "ship_problem", "worker_died_verdict", "HOST"]

HOST = socket.gethostname()
_AFFINITY = 16  # problems remembered per worker (the Verifier caches 16 references)


@dataclass(frozen=True)
class BackendInfo:
    """The backend the executor's workers verify on."""

    name: str  # cpu | cuda | rocm | npu | package.module:Class
    device: str  # human-readable description, e.g. "NVIDIA H200" or "cpu (x86_64, Triton interpreter)"
    times_kernels: bool  # False on the interpreter: no timings, no refining


@dataclass(frozen=True)
class ShippedProblem:
    """A problem resolved on the driver, small and picklable, for workers that cannot read its path.

    Has the ``.source`` / ``.id`` / ``.path`` attributes :func:`evokernel.verify.problem.resolve_problem`
    reads from problem objects (``path`` is only used as the file name in messages).
    """

    source: str
    id: str | None
    path: str


def ship_problem(problem: Any) -> tuple[ShippedProblem, str]:
    """(picklable problem, source hash); ProblemError (a UserError) for a bad problem, raised here on the driver."""
    from evokernel.verify.problem import resolve_problem

    spec = resolve_problem(problem)
    return ShippedProblem(spec.source, spec.id, spec.filename), spec.hash


def worker_died_verdict(problem_id: str | None, backend: BackendInfo, notes: list[str], worker: dict[str, Any],
                        wall_s: float) -> Verdict:
    """The verdict of a candidate whose worker died on both tries: ``crashed``, saying so."""
    return Verdict(
        status="crashed",
        message=trim_line(f"the verification worker died twice while running this candidate ({'; '.join(notes)}); "
                          "it was retried once on another worker and is recorded as failed"),
        backend=backend.name,
        device=backend.device,
        phase="executor",
        problem_id=problem_id,
        worker=worker,
        wall_s=round(wall_s, 4),
    )


def trim_line(text: str, limit: int = 600) -> str:
    """One line of at most ``limit`` characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


class Affinity:
    """Which problems a worker has verified lately: a worker that holds a problem's reference is preferred.

    Not thread-safe on its own; executors call it under their dispatch lock.
    """

    def __init__(self) -> None:
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()

    def note(self, key: str) -> None:
        """Remember that this worker computed (and caches) the reference of ``key``."""
        self._seen[key] = None
        self._seen.move_to_end(key)
        while len(self._seen) > _AFFINITY:
            self._seen.popitem(last=False)

    def __contains__(self, key: str) -> bool:
        return key in self._seen

    def clear(self) -> None:
        """Forget everything (the worker was replaced)."""
        self._seen.clear()


class Executor:
    """Verifies candidates on a set of workers; subclasses implement ``evaluate``, ``backend_info`` and ``close``.

    Thread safety: ``evaluate`` may be called from any number of threads at once; at most ``workers``
    candidates run at a time and the rest wait for a free worker. ``close`` may be called once from
    any thread after the callers are done.
    """

    name: str = "base"
    workers: int = 1

    def evaluate(self, problem: Any, candidate_source: str, settings: VerifySettings | None = None) -> Verdict:
        """Verify one candidate on a free worker. Bad problems or settings raise UserError; a worker that dies
        mid-candidate costs a retry on another worker, and a second death a ``crashed`` verdict."""
        raise NotImplementedError

    async def evaluate_async(self, problem: Any, candidate_source: str,
                             settings: VerifySettings | None = None) -> Verdict:
        """``evaluate`` on a worker thread, for asyncio callers."""
        return await asyncio.to_thread(self.evaluate, problem, candidate_source, settings)

    def backend_info(self) -> BackendInfo:
        """The backend and device the workers verify on (asked of the workers, not of this machine)."""
        raise NotImplementedError

    def close(self) -> None:
        """Stop every worker (idempotent)."""
        raise NotImplementedError

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def base_worker(executor: str, **fields: Any) -> dict[str, Any]:
    """The ``Verdict.worker`` record: executor name, host and pid of the process that ran the Verifier, and more."""
    record: dict[str, Any] = {"executor": executor, "host": HOST, "pid": os.getpid()}
    record.update({k: v for k, v in fields.items() if v is not None})
    return record
