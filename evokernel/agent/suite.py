"""Agent runs over a suite (`evokernel bench --model/--agent`): lockstep rounds, one shared memory, resumable.

The memory is the source of truth: every round's updates are one transaction, and every attempt's
item carries its record. ``RUN_DIR/results.jsonl`` is a view of it: after a kill, ``resume`` rebuilds
the task states from the memory, rewrites the file from them, and continues at the first round the
memory does not hold. With the same seed and the same replies (scripted, or from the reply cache)
the resumed run ends with the same memory as an uninterrupted one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from evokernel._interrupts import run_interruptibly
from evokernel.agent.agent import Agent, stop_reason_of
from evokernel.agent.loop import TaskState
from evokernel.agent.records import AttemptRecord, TaskSpec
from evokernel.errors import UserError
from kernelbench.records import (
    RESULTS_FILE,
    RunWriter,
    check_new_run_dir,
    json_safe,
    make_header,
    read_run,
    result_record,
)

__all__ = ["run_agent_suite", "resume_settings", "run_input_key", "attempt_line", "round_line"]

AttemptHook = Callable[[TaskState, AttemptRecord], None]


def attempt_line(record: AttemptRecord) -> dict[str, Any]:
    """The results.jsonl form of an attempt (the full verdict stays in the memory item)."""
    data = record.to_dict()
    verdict = data.pop("verdict", None)
    if verdict and verdict.get("worker"):
        data["worker"] = verdict["worker"]  # where the candidate ran
    data["problem_id"] = data.pop("task_id")
    return {"type": "attempt", **data}


def round_line(states: Sequence[TaskState], round_index: int, pool_factor: float) -> dict[str, Any]:
    """The results.jsonl record of a finished round: how many tasks are solved so far."""
    solved = sum(1 for s in states if s.best is not None and _solved_by(s, round_index))
    return {
        "type": "round",
        "round": round_index,
        "solved": solved,
        "total": len(states),
        "correct_share": solved / len(states) if states else 0.0,
        "attempts": sum(1 for s in states for a in s.attempts if a.round == round_index),
        "pool_factor": pool_factor,
    }


def _solved_by(state: TaskState, round_index: int) -> bool:
    if state.first_feasible_attempt is None:
        return True  # best came from an earlier run
    return state.attempts[state.first_feasible_attempt].round <= round_index


def _result_line(problem: Any, state: TaskState) -> dict[str, Any]:
    result = state.result()
    verdict = result.best_verdict
    if verdict is None and state.attempts:
        last = state.attempts[-1]
        verdict = last.verdict if last.verdict is not None else None
    status = "correct" if result.solved else (state.attempts[-1].status if state.attempts else "missing")
    return result_record(
        problem,
        verdict,
        status=status,
        message=state.attempts[-1].lesson if state.attempts and not result.solved else "",
        attempts=len(result.attempts),
        first_feasible_attempt=result.first_feasible_attempt,
        first_latency_ms=result.first_latency_ms,
        best_latency_ms=result.best_latency_ms,
        within_task_speedup=result.within_task_speedup,
        stop_reason=result.stop_reason,
        best_item_id=result.best_item_id,
    )


def run_input_key(memory: Any, run_id: str) -> str | None:
    """The input secret an agent run used, from the memory's runs table (None when it used none)."""
    for run in memory.runs():
        if run.get("id") == run_id:
            config = run.get("config") or {}
            return ((config.get("settings") or {}).get("verify") or {}).get("input_key")
    raise UserError(f"the memory holds no run {run_id}; resume with the memory the run was started with")


def resume_settings(run_dir: Path) -> dict[str, Any]:
    """The header of an agent run to resume (UserError when the folder holds no agent run)."""
    run = read_run(run_dir)
    if run.header.get("mode") != "agent" or "run_id" not in run.header:
        raise UserError(f"{run_dir}: not an agent run (its header has no run_id); only agent runs can be resumed")
    return run.header


def _resume_hint(run_dir: Path) -> str:
    return f"`evokernel bench --resume {run_dir}` continues this run"


def _rewrite(run_dir: Path, header: dict[str, Any], states: Sequence[TaskState], pools: Sequence[float]) -> None:
    """Rewrite results.jsonl from the restored states (atomically: temp file, then rename)."""
    path = run_dir / RESULTS_FILE
    tmp = path.with_suffix(".jsonl.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(json.dumps(json_safe(header)) + "\n")
        for r, pool_factor in enumerate(pools):
            for s in states:
                for a in s.attempts:
                    if a.round == r:
                        fh.write(json.dumps(json_safe(attempt_line(a))) + "\n")
            fh.write(json.dumps(json_safe(round_line(states, r, pool_factor))) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


async def _run(
    agent: Agent,
    problems: Sequence[Any],
    run_dir: Path,
    *,
    suite: str,
    device: str,
    resume: bool,
    on_attempt: AttemptHook | None,
    close_on_interrupt: bool = False,
) -> list[dict[str, Any]]:
    specs = [TaskSpec.from_problem(p) for p in problems]
    ids = [s.id for s in specs]
    if len(set(ids)) != len(ids):
        raise UserError("the suite holds two problems with the same id; problem ids must be unique")
    if resume:
        header = resume_settings(run_dir)
        if header.get("task_ids") != ids:
            raise UserError(
                f"{run_dir}: the run was started on a different problem set; pass the same --suite, --level and --filter"
            )
        run_id = str(header["run_id"])
        agent.settings.verify.input_key = run_input_key(agent.memory, run_id)  # the same inputs as before the kill
        loop = agent.loop(run_id, on_attempt, resume_hint=_resume_hint(run_dir))
        states = [loop.restore_state(s) for s in specs]
        pools = loop.replay_pool(states)
        start = len(pools)
        _rewrite(run_dir, header, states, pools)
        writer = RunWriter(run_dir, resume=True)
    else:
        check_new_run_dir(run_dir)  # a refused --out records no run in the memory
        run_id = agent.memory.begin_run(agent.run_config(secret=True, suite=suite, tasks=len(specs)))
        try:
            header = make_header(
                "agent",
                settings=agent.run_config(),
                suite=suite,
                device=device,
                backend=agent.backend,
                problems=problems,
                extra={"run_id": run_id, "task_ids": ids, "memory": str(agent.memory.path),
                       "rounds": agent.settings.budget},
            )
            writer = RunWriter(run_dir, header)
            loop = agent.loop(run_id, on_attempt, resume_hint=_resume_hint(run_dir))
            states = [loop.new_state(s) for s in specs]
        except BaseException as exc:  # the run never started: end it, so the memory holds no unfinished row
            agent.end_run(run_id, {"solved": 0, "tasks": len(specs), "run_dir": str(run_dir)},
                          stopped=stop_reason_of(exc))
            raise
        start = 0
    with writer:
        for r in range(start, agent.settings.budget):
            records = await agent.run_round(loop, states, r, close_on_interrupt=close_on_interrupt)
            if not records:
                break
            writer.write_all(attempt_line(a) for a in records)
            writer.write(round_line(states, r, loop.pool_factor))
        results = [_result_line(p, s) for p, s in zip(problems, states)]
        writer.write_all(results)
    solved = sum(1 for s in states if s.best is not None)
    agent.end_run(run_id, {"solved": solved, "tasks": len(states), "run_dir": str(run_dir)})
    return results


def run_agent_suite(
    agent: Agent,
    problems: Sequence[Any],
    run_dir: str | Path,
    *,
    suite: str = "builtin",
    device: str = "",
    resume: bool = False,
    on_attempt: AttemptHook | None = None,
    close_on_interrupt: bool = False,
) -> list[dict[str, Any]]:
    """Run the agent over problems in lockstep rounds (budget = rounds); returns the result records.

    ``close_on_interrupt``: on Ctrl-C or cancellation, close the agent's verifier at once (killing the
    candidates still running) instead of waiting for them; for callers that own the agent.
    """
    return run_interruptibly(
        agent._with_proposer_closed(
            _run(agent, problems, Path(run_dir), suite=suite, device=device, resume=resume, on_attempt=on_attempt,
                 close_on_interrupt=close_on_interrupt)
        )
    )
