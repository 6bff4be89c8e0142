"""Records of the memory: what callers add (NewItem), what comes back (Item, Retrieved), and settings."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from evokernel.errors import UserError

__all__ = [
    "KINDS",
    "BACKENDS",
    "STAGES",
    "RETRIEVAL_MODES",
    "NewItem",
    "Item",
    "Retrieved",
    "RetrievalSettings",
    "check_stage",
    "check_backend",
]

KINDS = ("experience", "knowledge")
BACKENDS = ("cpu", "cuda", "rocm", "npu", "any")  # "any": knowledge that applies to every backend
STAGES = ("draft", "refine")
RETRIEVAL_MODES = ("value", "similarity", "none")


def check_stage(stage: str) -> str:
    """Return ``stage`` if it is "draft" or "refine", else raise UserError."""
    if stage not in STAGES:
        raise UserError(f"unknown stage {stage!r}; use one of {', '.join(STAGES)}")
    return stage


def check_backend(backend: str) -> str:
    """Return ``backend`` if it is a known backend name, else raise UserError."""
    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    return backend


@dataclass
class NewItem:
    """One attempt (experience) or one note (knowledge), as callers add it."""

    kind: str  # "experience" | "knowledge"
    task_id: str  # problem id, e.g. "level1/19_ReLU" ("" for knowledge)
    task_name: str
    backend: str  # "cpu" | "cuda" | "rocm" | "npu" | "any" (knowledge only)
    stage: str  # "draft" | "refine" ("" for knowledge)
    code: str  # candidate source (knowledge: the note's text)
    lesson: str  # short lesson (knowledge: title)
    outcome: dict[str, Any]  # the Verdict as JSON (knowledge: {})
    reward: float | None
    parent_id: int | None  # the start point when refining
    run_id: str | None
    feasible: bool = False
    latency_ms: float | None = None  # measured on GPU/NPU only
    meta: dict[str, Any] = field(default_factory=dict)  # proposer data
    task_source: str = ""  # reference program text (experiences): what is embedded
    keywords: list[str] = field(default_factory=list)  # knowledge: ops/topics it is about

    def validate(self) -> None:
        """Raise UserError when a field holds a value the memory cannot store."""
        if self.kind not in KINDS:
            raise UserError(f"unknown item kind {self.kind!r}; use one of {', '.join(KINDS)}")
        check_backend(self.backend)
        if self.kind == "experience":
            if self.backend == "any":
                raise UserError("an experience needs a concrete backend (cpu, cuda, rocm or npu), not 'any'")
            check_stage(self.stage)
            if not self.task_id:
                raise UserError("an experience needs a task_id")
        elif self.stage not in ("", *STAGES):
            raise UserError(f"unknown stage {self.stage!r} for a knowledge item; leave it empty")

    def embedding_text(self) -> str:
        """The text embedded for a knowledge item: title, keywords and the note itself."""
        return "\n".join([self.lesson, " ".join(self.keywords), self.code])


@dataclass
class Item(NewItem):
    """A stored item with its id, creation time, Q values and visit counts per stage."""

    id: int = 0
    created: float = 0.0
    q_draft: float = 0.0
    q_refine: float = 0.0
    visits_draft: int = 0
    visits_refine: int = 0

    def q(self, stage: str) -> float:
        """Q value of the item for a stage ("draft" | "refine")."""
        return self.q_draft if check_stage(stage) == "draft" else self.q_refine

    def visits(self, stage: str) -> int:
        """Visit count of the item for a stage."""
        return self.visits_draft if check_stage(stage) == "draft" else self.visits_refine


@dataclass
class Retrieved:
    """An item chosen for a prompt, with its cosine similarity to the query and its fused score."""

    item: Item
    similarity: float
    score: float


@dataclass
class RetrievalSettings:
    """Knobs of the learned retrieval policy; "similarity" and "none" modes are the ablations."""

    mode: str = "value"  # "value" | "similarity" | "none"
    n: int = 4
    epsilon: float = 0.1
    pool_factor: float = 3.0
    pool_growth: float = 1.5
    pool_factor_cap: float = 30.0
    w_sim: float = 0.5
    w_q: float = 0.5
    q_floor: float = -0.8
    alpha: float = 0.2
    n_knowledge: int = 2

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise UserError naming the first setting out of range (also called after a settings file is merged)."""
        for name in ("epsilon", "pool_factor", "pool_growth", "pool_factor_cap", "w_sim", "w_q", "q_floor", "alpha"):
            if not math.isfinite(getattr(self, name)):
                raise UserError(f"retrieval {name} must be a finite number, got {getattr(self, name)}")
        if self.mode not in RETRIEVAL_MODES:
            raise UserError(f"unknown retrieval mode {self.mode!r}; use one of {', '.join(RETRIEVAL_MODES)}")
        if self.n < 0 or self.n_knowledge < 0:
            raise UserError("retrieval n and n_knowledge must be >= 0")
        if not 0.0 <= self.epsilon <= 1.0:
            raise UserError(f"retrieval epsilon must lie in [0, 1], got {self.epsilon}")
        if self.pool_factor < 1.0:
            raise UserError(f"retrieval pool_factor must be >= 1, got {self.pool_factor}")
        if not 0.0 < self.alpha <= 1.0:
            raise UserError(f"alpha must lie in (0, 1], got {self.alpha}")

    def grown(self, pool_factor: float) -> float:
        """The pool factor after one round without a newly feasible task (x pool_growth, capped)."""
        return min(pool_factor * self.pool_growth, self.pool_factor_cap)
