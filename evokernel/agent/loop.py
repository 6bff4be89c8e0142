"""The drafting/refining loop with value-driven memory (DESIGN section 1).

Tasks advance in lockstep rounds: one attempt per unfinished task per round. Within a round every
task's retrieval happens first (against the memory as it stood at the end of the previous round),
then proposals and verifications run concurrently, then the memory updates are applied in task
order inside one transaction, so a seeded run is reproducible and a killed run resumes at a round
boundary. A single task (``synthesize``) is a suite of one.

Everything a resumed run needs lives in the memory: each attempt's item carries its record in
``meta["record"]``, seeds derive from (run seed, task id, attempt), and the retrieval pool factor is
replayed from the history.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from evokernel.agent.lessons import feedback_for, lesson_for
from evokernel.agent.records import AttemptRecord, TaskResult, TaskSpec
from evokernel.agent.rewards import choose_start_point, draft_reward, refine_reward
from evokernel.agent.settings import AgentSettings
from evokernel.agent.types import Proposal, ProposalRequest, Proposer
from evokernel.memory import Item, Memory, NewItem, Retrieved

__all__ = ["AgentLoop", "TaskState", "derive_seed", "unrewarded_reason"]

log = logging.getLogger(__name__)

# A run stops (memory intact, resumable) after this many provider failures in a row: an unreachable
# server or exhausted retries would otherwise burn every remaining attempt of every task.
MAX_PROVIDER_FAILURES = 8


def derive_seed(base: int, task_id: str, attempt: int) -> int:
    """A 31-bit seed that depends only on the run seed, the task and the attempt number."""
    digest = hashlib.blake2b(f"{base}:{task_id}:{attempt}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little") & 0x7FFFFFFF


def unrewarded_reason(proposal: Proposal) -> str | None:
    """Why an attempt earns no reward, or None when it does (DESIGN's rewards apply).

    The rewards judge the retrieved context and the start point by the kernel written with them. An
    attempt without code for a reason outside that context (the provider failed, or the proposer gave
    up on the task) says nothing about them, so it updates no Q value and no reward statistic.
    """
    if proposal.code is not None:
        return None
    if proposal.meta.get("provider_failed"):
        return f"no Q update: the provider failed ({proposal.error or 'no reply'})"
    if proposal.final:
        return f"no Q update: the proposer gave up on the task ({proposal.error or 'no reason given'})"
    return None


@dataclass
class TaskState:
    """A task's progress within one run."""

    spec: TaskSpec
    attempts: list[AttemptRecord] = field(default_factory=list)
    feedback: str | None = None
    best: Item | None = None
    first_feasible_attempt: int | None = None
    first_latency_ms: float | None = None
    stop_reason: str | None = None

    @property
    def done(self) -> bool:
        return self.stop_reason is not None

    @property
    def best_ms(self) -> float | None:
        return self.best.latency_ms if self.best is not None else None

    def checkpoint(self) -> TaskState:
        """A copy to go back to when a round's memory updates are rolled back."""
        return dataclasses.replace(self, attempts=list(self.attempts))

    def restore(self, checkpoint: TaskState) -> None:
        """Go back to a checkpoint (the memory rolled back the attempts made since)."""
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(checkpoint, f.name))

    def result(self) -> TaskResult:
        """The task's outcome so far."""
        best = self.best
        return TaskResult(
            task_id=self.spec.id,
            task_name=self.spec.name,
            solved=best is not None,
            stop_reason=self.stop_reason or "unfinished",
            best_code=best.code if best else None,
            best_item_id=best.id if best else None,
            best_latency_ms=best.latency_ms if best else None,
            best_verdict=best.outcome if best else None,
            first_feasible_attempt=self.first_feasible_attempt,
            first_latency_ms=self.first_latency_ms,
            attempts=list(self.attempts),
        )


@dataclass
class _Prepared:
    state: TaskState
    request: ProposalRequest
    start_point: Item | None


def _faster(a: Item | None, b: Item) -> bool:
    """Whether b should replace a as the best kernel (lower latency; the first correct one without timings)."""
    if a is None:
        return True
    if b.latency_ms is None:
        return False
    return a.latency_ms is None or b.latency_ms < a.latency_ms


class AgentLoop:
    """Runs attempts for a set of tasks against one memory, proposer and verifier.

    Not thread-safe: one loop runs on one event loop; the memory is only touched from it.
    """

    def __init__(
        self,
        settings: AgentSettings,
        memory: Memory,
        proposer: Proposer,
        verifier: Any,
        *,
        backend: str,
        can_time: bool,
        run_id: str,
        on_attempt: Callable[[TaskState, AttemptRecord], None] | None = None,
        resume_hint: str | None = None,
    ) -> None:
        self.settings = settings
        self.resume_hint = resume_hint  # how to continue this run, said when the provider stops it
        self.memory = memory
        self.proposer = proposer
        self.verifier = verifier
        self.backend = backend
        self.can_time = can_time
        self.run_id = run_id
        self.on_attempt = on_attempt
        self.pool_factor = settings.retrieval.pool_factor
        self._verify_slots: asyncio.Semaphore | None = None
        self._provider_failures = 0  # in a row, across tasks

    # -- task state --------------------------------------------------------------------------

    def start_points(self, state: TaskState) -> list[Item]:
        """P(x): feasible kernels of this very program on this backend, from any run."""
        return [
            item
            for item in self.memory.start_points(state.spec.id, self.backend)
            if item.meta.get("task_hash") == state.spec.hash
        ]

    def stage(self, state: TaskState) -> str:
        """Refining once a feasible kernel exists and the backend can time kernels; drafting before."""
        if self.can_time and self.start_points(state):
            return "refine"
        return "draft"

    def new_state(self, spec: TaskSpec) -> TaskState:
        """A fresh task state; on GPU/NPU the best known kernel from earlier runs is the starting best."""
        state = TaskState(spec)
        if self.can_time:
            for item in self.start_points(state):
                if _faster(state.best, item):
                    state.best = item
        return state

    def restore_state(self, spec: TaskSpec) -> TaskState:
        """Rebuild a task's state in this run from the attempts the memory holds (resume)."""
        state = self.new_state(spec)
        mine = [
            item
            for item in self.memory.items(task_id=spec.id, kind="experience")
            if item.run_id == self.run_id and item.meta.get("task_hash") == spec.hash and "record" in item.meta
        ]
        mine.sort(key=lambda item: item.meta["record"]["attempt"])
        for item in mine:
            record = AttemptRecord.from_dict(item.meta["record"])
            record.item_id = item.id
            record.verdict = item.outcome or None
            self._account(state, record, item)
        return state

    def _account(self, state: TaskState, record: AttemptRecord, item: Item | None) -> None:
        state.attempts.append(record)
        state.feedback = feedback_for(
            record.verdict if record.status != "no_kernel" else None, proposal_error=record.proposal_error
        )
        if record.feasible and item is not None:
            if state.first_feasible_attempt is None:
                state.first_feasible_attempt = record.attempt
                state.first_latency_ms = record.latency_ms
            if _faster(state.best, item):
                state.best = item
        self._update_stop(state)

    def _update_stop(self, state: TaskState) -> None:
        last = state.attempts[-1] if state.attempts else None
        if last is not None and last.gave_up:
            state.stop_reason = f"the proposer cannot write a kernel for this task: {last.proposal_error}"
        elif state.best is not None and not self.can_time:
            state.stop_reason = "correct; refining needs a GPU or NPU to measure speed (CPU checks correctness only)"
        elif len(state.attempts) >= self.settings.budget:
            state.stop_reason = "budget spent" if state.best is None else "budget spent (refined)"

    # -- one attempt in three steps ------------------------------------------------------------

    def prepare(self, state: TaskState, round_index: int) -> _Prepared:
        """Retrieve the context of the next attempt (memory reads only)."""
        rs = self.settings.retrieval
        attempt = len(state.attempts)
        seed = derive_seed(self.settings.seed, state.spec.id, attempt)
        stage = self.stage(state)
        use_memory = rs.mode != "none"
        knowledge: list[Retrieved] = []
        context: list[Retrieved] = []
        children: list[Item] = []
        start_point: Item | None = None
        if use_memory and rs.n_knowledge > 0:
            knowledge = self.memory.retrieve_knowledge(state.spec.source, self.backend, rs.n_knowledge)
        if stage == "draft":
            if use_memory:
                context = self.memory.retrieve(
                    state.spec.source, "draft", self.backend, rs, seed=seed, pool_factor=self.pool_factor
                )
        else:
            rng = random.Random(seed)
            start_point = choose_start_point(self.start_points(state), rs.mode, self.settings.refine_epsilon, rng)
            if use_memory:
                children = self.memory.children(start_point.id)
                context = self.memory.retrieve(
                    state.spec.source,
                    "refine",
                    self.backend,
                    rs,
                    seed=seed,
                    exclude=[start_point.id, *(c.id for c in children)],
                    pool_factor=self.pool_factor,
                )
        request = ProposalRequest(
            task_id=state.spec.id,
            task_name=state.spec.name,
            task_source=state.spec.source,
            backend=self.backend,
            stage=stage,
            attempt=attempt,
            seed=seed,
            context=context,
            knowledge=knowledge,
            start_point=start_point,
            children=children,
            feedback=state.feedback,
            profile=(start_point.outcome.get("profile") if start_point is not None else None),
        )
        return _Prepared(state, request, start_point)

    async def execute(self, prepared: _Prepared) -> tuple[Proposal, dict[str, Any] | None, float]:
        """Ask the proposer, verify its code; returns the proposal, the verdict (None: no code) and wall time."""
        started = time.perf_counter()
        proposal = await self._propose(prepared.request)
        verdict = None
        if proposal.code is not None:
            if self._verify_slots is None:
                self._verify_slots = asyncio.Semaphore(self.settings.workers)
            async with self._verify_slots:
                result = await asyncio.to_thread(
                    self.verifier.evaluate, prepared.state.spec, proposal.code, self.settings.verify
                )
            verdict = result.to_dict()
        return proposal, verdict, time.perf_counter() - started

    async def _propose(self, request: ProposalRequest) -> Proposal:
        from evokernel.errors import UserError

        try:
            return await self.proposer.propose(request)
        except UserError:
            raise  # a stop the user must act on (no key, unknown model)
        except Exception as exc:  # a proposer bug must not end the run; the attempt records it
            log.exception("proposer %s failed on %s", getattr(self.proposer, "name", "?"), request.task_id)
            return Proposal(code=None, error=f"proposer failed: {type(exc).__name__}: {exc}")

    def commit(
        self, prepared: _Prepared, proposal: Proposal, verdict: dict[str, Any] | None, wall_s: float, round_index: int
    ) -> AttemptRecord:
        """Rewards, Q updates and the memory write of one attempt (call inside the round's transaction)."""
        state, request, start_point = prepared.state, prepared.request, prepared.start_point
        stage = request.stage
        feasible = bool(verdict and verdict.get("feasible"))
        latency = verdict.get("latency_ms") if verdict else None
        use_memory = self.settings.retrieval.mode != "none"
        best_before = state.best_ms
        q_skipped = unrewarded_reason(proposal)
        q_changes: dict[int, tuple[float, float]] = {}
        raw: float | None
        reward: float | None
        if q_skipped is not None:
            raw = reward = None  # the context was never tried: no reward, no Q update, no reward statistics
        elif stage == "draft":
            raw = draft_reward(feasible)
            reward = raw
        else:
            raw = refine_reward(feasible, latency, best_before)
            reward = self.memory.normalize_reward("refine", raw) if use_memory else raw
        if q_skipped is None and use_memory:
            updated = [r.item.id for r in request.context if r.item.kind == "experience"]
            if start_point is not None:
                updated.append(start_point.id)
            if updated:
                q_changes = self.memory.record_rewards(updated, stage, reward, self.settings.alpha)
        record = AttemptRecord(
            task_id=state.spec.id,
            attempt=request.attempt,
            round=round_index,
            stage=stage,
            seed=request.seed,
            start_point_id=start_point.id if start_point else None,
            context_ids=[r.item.id for r in request.context],
            knowledge_ids=[r.item.id for r in request.knowledge],
            status=verdict["status"] if verdict else "no_kernel",
            feasible=feasible,
            latency_ms=latency,
            reward_raw=raw,
            reward=reward,
            q_changes={str(k): [b, a] for k, (b, a) in q_changes.items()},
            q_skipped=q_skipped,
            lesson=lesson_for(verdict, stage=stage, proposal_error=proposal.error, best_ms=best_before),
            proposal_error=proposal.error,
            gave_up=proposal.final and proposal.code is None,
            prompt_chars=proposal.prompt_chars,
            reply_chars=proposal.reply_chars,
            tokens_in=proposal.tokens_in,
            tokens_out=proposal.tokens_out,
            cost_usd=proposal.cost_usd,
            cached=proposal.cached,
            wall_s=round(wall_s, 4),
        )
        meta = {
            **proposal.meta,
            "task_hash": state.spec.hash,
            "attempt": request.attempt,
            "round": round_index,
            "seed": request.seed,
            "record": record.to_dict(),
        }
        item_id = self.memory.add(
            [
                NewItem(
                    kind="experience",
                    task_id=state.spec.id,
                    task_name=state.spec.name,
                    backend=self.backend,
                    stage=stage,
                    code=proposal.code or "",
                    lesson=record.lesson,
                    outcome=verdict or {"status": "no_kernel", "message": proposal.error or ""},
                    reward=raw,
                    parent_id=start_point.id if start_point else None,
                    run_id=self.run_id,
                    feasible=feasible,
                    latency_ms=latency,
                    meta=meta,
                    task_source=state.spec.source,
                )
            ]
        )[0]
        record.item_id = item_id
        record.verdict = verdict
        self._provider_failures = self._provider_failures + 1 if proposal.meta.get("provider_failed") else 0
        self._account(state, record, self.memory.get(item_id) if feasible else None)
        if self.on_attempt is not None:
            self.on_attempt(state, record)
        return record

    # -- rounds --------------------------------------------------------------------------------

    async def run_round(self, states: Sequence[TaskState], round_index: int) -> list[AttemptRecord]:
        """One attempt for every unfinished task; memory updates applied in task order, atomically.

        When the updates fail (or are interrupted) the task states go back to where they were, so
        they always agree with the memory."""
        active = [s for s in states if not s.done]
        if not active:
            return []
        solved_before = {s.spec.id for s in active if s.first_feasible_attempt is not None}
        prepared = [self.prepare(s, round_index) for s in active]
        outcomes = await asyncio.gather(*(self.execute(p) for p in prepared))
        checkpoints, failures = [s.checkpoint() for s in active], self._provider_failures
        try:
            with self.memory.transaction():
                records = [
                    self.commit(p, proposal, verdict, wall, round_index)
                    for p, (proposal, verdict, wall) in zip(prepared, outcomes)
                ]
        except BaseException:  # the memory holds none of this round: neither do the task states
            for state, checkpoint in zip(active, checkpoints):
                state.restore(checkpoint)
            self._provider_failures = failures
            raise
        newly = {s.spec.id for s in active if s.first_feasible_attempt is not None} - solved_before
        self.grow_pool(bool(newly))
        if self._provider_failures >= MAX_PROVIDER_FAILURES:
            from evokernel.errors import UserError

            hint = f"; {self.resume_hint}" if self.resume_hint else ""
            raise UserError(
                f"the model provider failed {self._provider_failures} times in a row (last: "
                f"{records[-1].proposal_error}); check the server, --api-base and your quota. Every attempt so far "
                f"is in the memory{hint}"
            )
        return records

    def grow_pool(self, progressed: bool) -> None:
        """lambda grows x pool_growth after a round in which no new task became feasible (capped)."""
        rs = self.settings.retrieval
        if not progressed:
            self.pool_factor = min(self.pool_factor * rs.pool_growth, rs.pool_factor_cap)

    def replay_pool(self, states: Sequence[TaskState]) -> list[float]:
        """Recompute the pool factor from restored histories; returns its value after each finished round."""
        rounds = max((r.round for s in states for r in s.attempts), default=-1) + 1
        first_rounds = {
            s.attempts[s.first_feasible_attempt].round for s in states if s.first_feasible_attempt is not None
        }
        self.pool_factor = self.settings.retrieval.pool_factor
        history = []
        for r in range(rounds):
            self.grow_pool(r in first_rounds)
            history.append(self.pool_factor)
        return history
