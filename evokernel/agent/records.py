"""What the agent loop records: the task it works on, each attempt, and each task's outcome."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evokernel.programs import ProblemError, load_program, read_source, source_hash
from kernelbench.problem import problem_id_for_path

__all__ = ["TaskSpec", "AttemptRecord", "TaskResult"]


@dataclass(frozen=True)
class TaskSpec:
    """One reference program to write a kernel for (duck-types as a problem for the verifier)."""

    id: str
    name: str
    source: str
    path: Path | None = None

    @property
    def hash(self) -> str:
        """Hash of the reference text: start points only come from kernels of the same program."""
        return source_hash(self.source)

    @classmethod
    def from_path(cls, path: str | Path, task_id: str | None = None) -> TaskSpec:
        """Read and check a problem file; its id defaults to the loader's (``levelN/<stem>`` inside a level
        folder, else ``<stem>``: ``kernelbench.problem.problem_id_for_path``), its name is the stem."""
        p = Path(path)
        source = read_source(p)
        load_program(source, str(p))  # fails early, with the file name, on a broken problem
        return cls(id=task_id or problem_id_for_path(p), name=p.stem, source=source, path=p)

    @classmethod
    def from_problem(cls, problem: Any) -> TaskSpec:
        """From a kernelbench Problem (or anything with id, name and source)."""
        try:
            return cls(id=problem.id, name=problem.name, source=problem.source, path=getattr(problem, "path", None))
        except AttributeError as exc:
            raise ProblemError(f"not a problem record: {problem!r} ({exc})") from exc


@dataclass
class AttemptRecord:
    """One attempt: what was retrieved, proposed and verified, the reward and the Q changes it caused."""

    task_id: str
    attempt: int  # 0-based index within the task, in this run
    round: int  # lockstep round (equals attempt for a single task)
    stage: str
    seed: int
    start_point_id: int | None = None
    context_ids: list[int] = field(default_factory=list)
    knowledge_ids: list[int] = field(default_factory=list)
    item_id: int | None = None  # the memory item written for this attempt
    status: str = "no_kernel"  # the verdict status, or "no_kernel" when the proposer gave no code
    feasible: bool = False
    latency_ms: float | None = None
    reward_raw: float | None = 0.0  # None: no reward (see q_skipped)
    reward: float | None = 0.0  # what the Q updates used (normalized when refining); None: no reward
    q_changes: dict[str, list[float]] = field(default_factory=dict)  # item id -> [Q before, Q after]
    q_skipped: str | None = None  # why no reward was given (provider failure, give-up): no Q update at all
    lesson: str = ""
    proposal_error: str | None = None
    gave_up: bool = False  # the proposer said it can never write code for this task (Proposal.final)
    prompt_chars: int = 0
    reply_chars: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    cached: bool = False
    wall_s: float = 0.0
    verdict: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AttemptRecord:
        """Inverse of to_dict (unknown keys ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class TaskResult:
    """A task's outcome in one run: its best kernel and the history that led there."""

    task_id: str
    task_name: str
    solved: bool
    stop_reason: str
    best_code: str | None = None
    best_item_id: int | None = None
    best_latency_ms: float | None = None
    best_verdict: dict[str, Any] | None = None
    first_feasible_attempt: int | None = None
    first_latency_ms: float | None = None
    attempts: list[AttemptRecord] = field(default_factory=list)

    @property
    def within_task_speedup(self) -> float | None:
        """First feasible latency over best latency (GPU/NPU only)."""
        if self.first_latency_ms and self.best_latency_ms:
            return self.first_latency_ms / self.best_latency_ms
        return None

    def to_dict(self, *, with_attempts: bool = True) -> dict[str, Any]:
        """JSON-friendly form."""
        data = dataclasses.asdict(self)
        data["within_task_speedup"] = self.within_task_speedup
        if not with_attempts:
            data.pop("attempts")
        return data
