"""The drafting/refining loop with a scripted proposer and a stub verifier that reports latencies.

On the CPU speed cannot be measured, so refining is exercised here with simulated latencies: these
are unit tests of the reward and value-update code, never reported numbers.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from evokernel.agent.knowledge import ensure_knowledge
from evokernel.agent.loop import AgentLoop
from evokernel.agent.prompts import build_messages
from evokernel.agent.records import TaskSpec
from evokernel.agent.settings import AgentSettings
from evokernel.agent.types import Proposal, ProposalRequest
from evokernel.memory import Memory

PROGRAM = """import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return torch.{op}(x)


n = 1024


def get_inputs():
    return [torch.randn(n)]


def get_init_inputs():
    return []
"""


def spec(op: str) -> TaskSpec:
    return TaskSpec(id=f"level1/{op}", name=op, source=PROGRAM.format(op=op))


@dataclass
class FakeVerdict:
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.data)


class StubVerifier:
    """Verdicts keyed by the first line of the candidate ("# correct 2.0", "# compile_error", ...)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def evaluate(self, problem: Any, code: str, settings: Any) -> FakeVerdict:
        self.calls.append(code)
        words = code.splitlines()[0].lstrip("# ").split()
        status = words[0]
        latency = float(words[1]) if len(words) > 1 else None
        return FakeVerdict(
            {"status": status, "feasible": status == "correct", "message": f"{status} message",
             "latency_ms": latency, "kernels_launched": ["k"] if status == "correct" else [],
             "profile": f"device time per forward: {latency} ms" if latency else None}
        )


@dataclass
class ScriptedProposer:
    """Replies from a per-task script; records every request."""

    scripts: dict[str, list[str | None]]
    name: str = "scripted"
    requests: list[ProposalRequest] = field(default_factory=list)

    async def propose(self, request: ProposalRequest) -> Proposal:
        self.requests.append(request)
        script = self.scripts[request.task_id]
        code = script[request.attempt] if request.attempt < len(script) else "# incorrect"
        if code is None:
            return Proposal(code=None, error="the reply has no code block", prompt_chars=10, reply_chars=5)
        return Proposal(code=code + f"\n# attempt {request.attempt}", prompt_chars=100, reply_chars=len(code),
                        tokens_in=7, tokens_out=3, meta={"by": "script"})


def make_loop(memory: Memory, proposer: Any, *, budget: int, can_time: bool, mode: str = "value",
              backend: str = "cuda", run_id: str = "run-1") -> AgentLoop:
    settings = AgentSettings(budget=budget)
    settings.retrieval.mode = mode
    settings.retrieval.epsilon = 0.0
    settings.refine_epsilon = 0.0
    return AgentLoop(settings, memory, proposer, StubVerifier(), backend=backend, can_time=can_time, run_id=run_id)


def run_all(loop: AgentLoop, specs: list[TaskSpec]) -> list[Any]:
    states = [loop.new_state(s) for s in specs]

    async def go() -> None:
        for r in range(loop.settings.budget):
            if not await loop.run_round(states, r):
                break

    asyncio.run(go())
    return states


@pytest.fixture
def memory(tmp_path: Path) -> Memory:
    mem = Memory.open(tmp_path / "memory.sqlite")
    ensure_knowledge(mem)
    yield mem
    mem.close()


def _expected_draft_context(q: dict[int, float], n: int = 4, floor: float = -0.8) -> list[int]:
    """Retrieval among items of one task (equal similarity): best Q first, ties by id; low Q dropped while > n."""
    pool = sorted(q, key=lambda i: (-q[i], i))[:12]
    for i in sorted((i for i in pool if q[i] < floor), key=lambda i: (q[i], i)):
        if len(pool) <= n:
            break
        pool.remove(i)
    return pool[:n]


def test_draft_then_refine_rewards_and_q_values(memory: Memory) -> None:
    script = [None, "# compile_error", "# incorrect", "# correct 2.0", "# correct 1.0", "# runtime_error"]
    proposer = ScriptedProposer({"level1/relu": script})
    loop = make_loop(memory, proposer, budget=6, can_time=True)
    (state,) = run_all(loop, [spec("relu")])

    stages = [a.stage for a in state.attempts]
    assert stages == ["draft"] * 4 + ["refine"] * 2  # the stage switches at the first feasible kernel
    assert [a.status for a in state.attempts] == ["no_kernel", "compile_error", "incorrect", "correct", "correct",
                                                  "runtime_error"]
    raw = [a.reward_raw for a in state.attempts]
    assert raw[:4] == [-1.0, -1.0, -1.0, 1.0]
    assert raw[4] == pytest.approx(math.tanh(math.log(2.0 / 1.0)))  # 2x faster than the best so far
    assert raw[5] == -1.0
    # fewer refine rewards than the warm-up: normalization returns them unchanged
    assert [a.reward for a in state.attempts] == pytest.approx(raw)
    assert memory.reward_stats("refine")[0] == 2

    # replay the Q updates with an independent model of the retrieval
    ids = [a.item_id for a in state.attempts]
    q_draft: dict[int, float] = {}
    for a in state.attempts[:4]:
        expected_ctx = _expected_draft_context(q_draft)
        assert a.context_ids == expected_ctx
        for i in expected_ctx:
            q_draft[i] += 0.2 * (a.reward - q_draft[i])
        q_draft[a.item_id] = 0.0
    for i, q in q_draft.items():
        assert memory.get(i).q_draft == pytest.approx(q)
    # refining: the start point is the first correct kernel; it and the context get Q_refine updates
    start = ids[3]
    assert state.attempts[4].start_point_id == start and state.attempts[5].start_point_id == start
    # refining requests carry the start point's profile, and the prompt shows it
    refine_requests = [r for r in proposer.requests if r.stage == "refine"]
    assert [r.profile for r in refine_requests] == ["device time per forward: 2.0 ms"] * 2
    assert all(r.profile is None for r in proposer.requests if r.stage == "draft")
    user = build_messages(refine_requests[0])[-1]["content"]
    assert "## Profile of the kernel to improve\ndevice time per forward: 2.0 ms" in user
    q_start = 0.2 * raw[4]
    q_start += 0.2 * (raw[5] - q_start)
    assert memory.get(start).q_refine == pytest.approx(q_start)
    assert memory.get(start).visits_refine == 2
    assert str(start) in state.attempts[4].q_changes
    # memory contents: every attempt stored, refinements are children of their start point
    items = {i.id: i for i in memory.items(task_id="level1/relu")}
    assert sorted(items) == sorted(ids)
    assert items[ids[0]].code == "" and "no code block" in items[ids[0]].lesson
    assert [c.id for c in memory.children(start)] == ids[4:]
    assert items[ids[4]].feasible and items[ids[4]].latency_ms == 1.0
    assert {p.id for p in loop.start_points(state)} == {ids[3], ids[4]}
    # the best kernel is the faster refinement; within-task speedup 2x
    result = state.result()
    assert result.best_item_id == ids[4] and result.within_task_speedup == pytest.approx(2.0)
    assert result.first_feasible_attempt == 3 and result.stop_reason.startswith("budget spent")


def test_prompts_get_feedback_and_retrieved_items(memory: Memory) -> None:
    proposer = ScriptedProposer({"level1/relu": ["# compile_error", "# correct"]})
    loop = make_loop(memory, proposer, budget=3, can_time=False, backend="cpu")
    (state,) = run_all(loop, [spec("relu")])
    first, second = proposer.requests
    assert first.feedback is None and first.context == []
    assert "compile_error message" in second.feedback
    assert [r.item.id for r in second.context] == [state.attempts[0].item_id]
    assert second.knowledge and all(r.item.kind == "knowledge" for r in second.knowledge)
    # on the CPU the task ends at its first correct kernel: no timing, no refining
    assert len(state.attempts) == 2 and "refining needs a GPU" in state.stop_reason


def test_second_task_retrieves_first_tasks_experiences(memory: Memory) -> None:
    proposer = ScriptedProposer({"level1/relu": ["# incorrect", "# correct"], "level1/sigmoid": ["# correct"]})
    loop = make_loop(memory, proposer, budget=2, can_time=False, backend="cpu")
    run_all(loop, [spec("relu")])
    run_all(loop, [spec("sigmoid")])
    request = proposer.requests[-1]
    assert request.task_id == "level1/sigmoid"
    assert {r.item.task_id for r in request.context} == {"level1/relu"}


def test_retrieval_none_uses_no_memory(memory: Memory) -> None:
    proposer = ScriptedProposer({"level1/relu": ["# incorrect", "# correct"], "level1/sigmoid": ["# incorrect", "# correct"]})
    run_all(make_loop(memory, proposer, budget=2, can_time=False, backend="cpu"), [spec("relu")])
    loop = make_loop(memory, proposer, budget=2, can_time=False, backend="cpu", mode="none", run_id="run-2")
    (state,) = run_all(loop, [spec("sigmoid")])
    for request in proposer.requests[2:]:
        assert request.context == [] and request.knowledge == []
    assert all(a.q_changes == {} for a in state.attempts)
    first, second = memory.items(task_id="level1/relu")
    # only the relu run's own update: its second attempt used the first as context
    assert (first.visits_draft, second.visits_draft) == (1, 0)


def test_pool_factor_grows_after_rounds_without_progress(memory: Memory) -> None:
    proposer = ScriptedProposer({"level1/relu": ["# incorrect", "# incorrect", "# correct"]})
    loop = make_loop(memory, proposer, budget=3, can_time=False, backend="cpu")
    run_all(loop, [spec("relu")])
    assert loop.pool_factor == pytest.approx(3.0 * 1.5 * 1.5)  # two rounds without a newly feasible task


@dataclass
class GivesUpProposer:
    """Cannot write code for one task, ever (like the offline proposer on unsupported operators)."""

    name: str = "gives-up"
    requests: list[ProposalRequest] = field(default_factory=list)

    async def propose(self, request: ProposalRequest) -> Proposal:
        self.requests.append(request)
        if request.task_id == "level1/relu":
            return Proposal(code=None, error="no template for aten.relu", final=True)
        return Proposal(code="# correct")


def test_a_final_no_code_answer_ends_the_task_at_once(memory: Memory) -> None:
    proposer = GivesUpProposer()
    loop = make_loop(memory, proposer, budget=5, can_time=False, backend="cpu")
    relu, sigmoid = run_all(loop, [spec("relu"), spec("sigmoid")])
    assert len(relu.attempts) == 1 and relu.attempts[0].gave_up  # one item in the memory, not a budget's worth
    assert relu.stop_reason == "the proposer cannot write a kernel for this task: no template for aten.relu"
    assert len(memory.items(task_id="level1/relu")) == 1
    assert sigmoid.best is not None  # the other task goes on normally
    # a resumed run ends the task the same way
    restored = loop.restore_state(spec("relu"))
    assert restored.done and restored.stop_reason == relu.stop_reason


@dataclass
class OutageProposer:
    """Scripted replies where None is a provider failure (no reply at all), like LLMProposer on a 500."""

    scripts: dict[str, list[str | None]]
    name: str = "outage"
    requests: list[ProposalRequest] = field(default_factory=list)

    async def propose(self, request: ProposalRequest) -> Proposal:
        self.requests.append(request)
        code = self.scripts[request.task_id][request.attempt]
        if code is None:
            return Proposal(code=None, error="provider failed: server error 500", meta={"provider_failed": True})
        return Proposal(code=code)


def _q_values(memory: Memory) -> dict[int, tuple[float, float, int, int]]:
    return {i.id: (i.q_draft, i.q_refine, i.visits_draft, i.visits_refine) for i in memory.items(kind="experience")}


def test_a_provider_failure_updates_no_q_values(memory: Memory) -> None:
    # a first task leaves experiences to retrieve; then the provider fails while drafting and refining the second
    run_all(make_loop(memory, ScriptedProposer({"level1/relu": ["# incorrect", "# correct 2.0"]}), budget=2,
                      can_time=True), [spec("relu")])
    before, stats_before = _q_values(memory), memory.reward_stats("refine")
    proposer = OutageProposer({"level1/sigmoid": [None, "# correct 3.0", None, None]})
    loop = make_loop(memory, proposer, budget=4, can_time=True, run_id="run-2")
    (state,) = run_all(loop, [spec("sigmoid")])
    failed = [a for a in state.attempts if a.status == "no_kernel"]
    assert [a.stage for a in failed] == ["draft", "refine", "refine"]
    assert all(a.context_ids or a.start_point_id for a in failed)  # the context was there to be blamed
    for a in failed:
        assert a.q_changes == {} and a.reward is None and a.reward_raw is None
        assert a.q_skipped and "provider failed" in a.q_skipped
        assert memory.get(a.item_id).reward is None  # the item says no reward was given
    # only the successful draft moved Q values (its own context), and the refine statistics are untouched
    correct = state.attempts[1]
    moved = {int(k) for k in correct.q_changes}
    after = _q_values(memory)
    assert moved & set(before) and {i for i in before if before[i] != after[i]} == moved & set(before)
    assert memory.reward_stats("refine") == stats_before
    # the attempts still count against the budget and survive a resume
    restored = loop.restore_state(spec("sigmoid"))
    assert [a.q_skipped for a in restored.attempts] == [a.q_skipped for a in state.attempts]


def test_a_give_up_updates_no_q_values(memory: Memory) -> None:
    run_all(make_loop(memory, ScriptedProposer({"level1/sigmoid": ["# incorrect", "# correct"]}), budget=2,
                      can_time=False, backend="cpu"), [spec("sigmoid")])
    before = _q_values(memory)
    proposer = GivesUpProposer()
    (relu,) = run_all(make_loop(memory, proposer, budget=5, can_time=False, backend="cpu", run_id="run-2"),
                      [spec("relu")])
    (attempt,) = relu.attempts
    assert attempt.gave_up and attempt.context_ids  # context was retrieved, but the proposer never used it
    assert attempt.q_changes == {} and "gave up" in attempt.q_skipped
    assert {i: v for i, v in _q_values(memory).items() if i in before} == before


def test_the_provider_stop_hint_fits_the_run(memory: Memory) -> None:
    from evokernel.agent.loop import MAX_PROVIDER_FAILURES
    from evokernel.errors import UserError

    outage = {"level1/relu": [None] * MAX_PROVIDER_FAILURES}
    loop = make_loop(memory, OutageProposer(outage), budget=30, can_time=False, backend="cpu")
    with pytest.raises(UserError, match="failed 8 times in a row") as stop:
        run_all(loop, [spec("relu")])
    assert "--resume" not in str(stop.value)  # a synthesize run has nothing to resume
    loop = make_loop(memory, OutageProposer(outage), budget=30, can_time=False, backend="cpu", run_id="run-2")
    loop.resume_hint = "`evokernel bench --resume runs/x` continues this run"
    with pytest.raises(UserError, match=r"bench --resume runs/x` continues this run"):
        run_all(loop, [spec("relu")])
