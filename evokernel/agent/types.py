"""Records exchanged between the agent loop and its proposers (LLM or offline)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # memory records, imported for typing only
    from evokernel.memory import Item, Retrieved

__all__ = ["ProposalRequest", "Proposal", "Proposer", "STAGES"]

STAGES = ("draft", "refine")


@dataclass
class ProposalRequest:
    """Everything a proposer may use to write one candidate kernel for one task."""

    task_id: str
    task_name: str
    task_source: str
    backend: str
    stage: str  # "draft" | "refine"
    attempt: int
    seed: int
    context: list[Retrieved] = field(default_factory=list)  # experiences chosen for the prompt
    knowledge: list[Retrieved] = field(default_factory=list)
    start_point: Item | None = None  # refining: the kernel to improve
    children: list[Item] = field(default_factory=list)  # earlier refinements of the start point
    feedback: str | None = None  # the latest verifier feedback for this task
    profile: str | None = None  # profiler summary where the backend gives one


@dataclass
class Proposal:
    """A proposer's answer: candidate source, or the reason there is none, plus accounting."""

    code: str | None
    error: str | None = None
    final: bool = False  # no code, and retrying cannot help (e.g. unsupported operators): the task ends
    meta: dict[str, Any] = field(default_factory=dict)  # stored with the memory item
    prompt_chars: int = 0
    reply_chars: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    cached: bool = False


@runtime_checkable
class Proposer(Protocol):
    """Writes candidate kernels; the agent loop is the same for every proposer."""

    name: str

    async def propose(self, request: ProposalRequest) -> Proposal:
        """Return one candidate for the request (never raises for provider or generation failures)."""
        ...
