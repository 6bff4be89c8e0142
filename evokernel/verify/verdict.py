"""The verifier's answer for one candidate: a JSON-serialisable record."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = ["Verdict", "STATUSES", "VERDICT_VERSION"]

STATUSES = (
    "correct",
    "compile_error",
    "runtime_error",
    "incorrect",
    "rejected",
    "timeout",
    "crashed",
    "memory_exceeded",
)

VERDICT_VERSION = 1


@dataclass
class Verdict:
    """What happened to one candidate; ``feasible`` is ``status == "correct"``."""

    status: str
    feasible: bool = False
    rule: str | None = None  # the anti-hack rule that fired (status "rejected")
    message: str = ""  # one trimmed, decisive line (file:line inside the candidate where known)
    backend: str = ""
    device: str = ""
    trials: list[dict[str, Any]] = field(default_factory=list)  # one per checked case (trial/probe/ghost/recheck)
    kernels_launched: list[str] = field(default_factory=list)
    torch_ops: list[str] = field(default_factory=list)  # torch compute ops seen in forward
    timing: dict[str, Any] | None = None
    latency_ms: float | None = None
    speedup_eager: float | None = None
    speedup_compile: float | None = None
    flagged: bool = False
    profile: str | None = None  # where the device time goes (GPU backends with a profiler), for refining
    sizes: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0
    signal: str | None = None
    # Added beyond docs/architecture.md:
    checks: dict[str, str] = field(default_factory=dict)  # check name -> "pass" | "fail: ..." | "skipped: ..."
    phase: str | None = None  # where the candidate's run ended ("import", "trial 2", ...) when it failed
    problem_id: str | None = None
    # Where the candidate ran (filled in by the executor): executor name, host, pid or actor id,
    # device, and the attempt number when a dead worker forced a retry. None from a bare Verifier.
    worker: dict[str, Any] | None = None
    version: int = VERDICT_VERSION

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown verdict status {self.status!r}; expected one of {', '.join(STATUSES)}")
        self.feasible = self.status == "correct"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only."""
        return asdict(self)

    def to_json(self, **kwargs: Any) -> str:
        """The record as a JSON string."""
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verdict:
        """Inverse of to_dict; keys this version does not know are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def summary(self) -> str:
        """One line: status, rule and message."""
        head = self.status if self.rule is None else f"{self.status} ({self.rule})"
        return f"{head}: {self.message}" if self.message else head
