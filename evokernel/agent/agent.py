"""The public agent: one memory, one proposer and one verifier, for a single problem or a whole suite."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evokernel._interrupts import run_interruptibly
from evokernel.agent.knowledge import ensure_knowledge
from evokernel.agent.loop import AgentLoop, TaskState
from evokernel.agent.records import AttemptRecord, TaskResult, TaskSpec
from evokernel.agent.settings import AgentSettings, settings_with
from evokernel.agent.types import Proposer
from evokernel.errors import UserError
from evokernel.memory import Memory
from evokernel.verify import VerifySettings

__all__ = ["Agent", "synthesize", "make_proposer", "as_task", "check_reference", "stop_reason_of", "REDACTED"]

REDACTED = "<kept in the memory's runs table>"

log = logging.getLogger(__name__)

AttemptHook = Callable[[TaskState, AttemptRecord], None]


def make_proposer(settings: AgentSettings) -> Proposer:
    """The LLM proposer when a model is set, else the embedded offline proposer."""
    if settings.llm.model:
        from evokernel.agent.llm_proposer import LLMProposer

        proposer = LLMProposer(settings.llm, max_code_chars=settings.max_code_chars)
        proposer.validate()
        return proposer
    from evokernel.agent.offline import OfflineProposer

    # the offline proposer keeps unsupported operators in torch only where the verifier allows it
    return OfflineProposer(policy=settings.verify.policy)


def as_task(problem: Any) -> TaskSpec:
    """A TaskSpec from a path, a TaskSpec, or a problem record with id, name and source."""
    if isinstance(problem, TaskSpec):
        return problem
    if isinstance(problem, (str, Path)):
        return TaskSpec.from_path(problem)
    return TaskSpec.from_problem(problem)


class Agent:
    """Synthesizes kernels with value-driven memory; the same settings drive `synthesize` and suite runs.

    The agent opens what it is not given: the memory at its default path (shared by every run), the
    proposer from the settings, and an executor (``settings.executor``: warm verifier pools on this
    machine, or actors on a Ray cluster) with ``settings.workers`` workers. Close it (or use it as a
    context manager) to release them.

    After each ``synthesize``, ``last_run_id`` names its run in the memory and ``last_result`` holds
    its result; both are set while the run goes on (``last_result`` after every round), so a caller
    that catches a stop or an interrupt still has the best kernel found so far.
    """

    last_run_id: str | None = None
    last_result: TaskResult | None = None

    def __init__(
        self,
        settings: AgentSettings | None = None,
        *,
        memory: Memory | str | Path | None = None,
        proposer: Proposer | None = None,
        verifier: Any = None,
    ) -> None:
        self.settings = settings or AgentSettings()
        self.settings.validate()
        if self.settings.verify.secret_inputs and self.settings.verify.input_key is None:
            # one secret per agent: the run's inputs are unpredictable to candidates, yet the same on resume,
            # and the same in every run that shares a reply cache (a replay sees the recorded feedback)
            self.settings.verify.input_key = _reply_cache_key(self.settings) or secrets.token_hex(16)
        self._owned: list[Any] = []
        self._checked: set[str] = set()  # hashes of programs whose reference ran
        if isinstance(memory, Memory):
            self.memory = memory
        else:
            self.memory = Memory.open(memory)
            self._owned.append(self.memory)
        ensure_knowledge(self.memory)
        self.proposer = proposer if proposer is not None else make_proposer(self.settings)
        if verifier is None:
            from evokernel.verify.executors import make_executor

            try:
                verifier = make_executor(self.settings.executor, self.settings.verify,
                                         workers=self.settings.workers, address=self.settings.ray_address)
            except BaseException:
                self.close()
                raise
            self._owned.append(verifier)
        self.verifier = verifier
        self.backend, self.can_time, self.device = _resolve_backend(self.settings.verify.backend, verifier)

    def __enter__(self) -> Agent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the verifier pool and the memory this agent opened."""
        while self._owned:
            self._owned.pop().close()

    def check_reference(self, problem: Any) -> None:
        """Check once per program that its reference runs (see ``check_reference``); ProblemError when not."""
        spec = as_task(problem)
        if spec.hash not in self._checked:
            check_reference(spec, self.settings.verify, self.backend)
            self._checked.add(spec.hash)

    def loop(self, run_id: str, on_attempt: AttemptHook | None = None, *, resume_hint: str | None = None) -> AgentLoop:
        """A loop over this agent's memory, proposer and verifier for one run (``resume_hint``: how to
        continue it, told to the user when the provider stops the run)."""
        return AgentLoop(
            self.settings,
            self.memory,
            self.proposer,
            self.verifier,
            backend=self.backend,
            can_time=self.can_time,
            run_id=run_id,
            on_attempt=on_attempt,
            resume_hint=resume_hint,
        )

    def run_config(self, *, secret: bool = False, **extra: Any) -> dict[str, Any]:
        """A run's configuration: the memory's runs table keeps the input secret (``secret=True``),
        run records written beside outputs do not."""
        settings = self.settings.to_dict()
        if not secret and settings["verify"].get("input_key"):
            settings["verify"]["input_key"] = REDACTED
        return {
            "settings": settings,
            "proposer": getattr(self.proposer, "name", type(self.proposer).__name__),
            "backend": self.backend,
            **extra,
        }

    async def run_round(self, loop: AgentLoop, states: list[TaskState], round_index: int, *,
                        close_on_interrupt: bool = False) -> list[AttemptRecord]:
        """One lockstep round of ``loop``; with ``close_on_interrupt``, Ctrl-C or cancellation closes the
        verifier first: verifications run in threads that asyncio cannot cancel, and closing kills them."""
        try:
            return await loop.run_round(states, round_index)
        except (asyncio.CancelledError, KeyboardInterrupt):
            if close_on_interrupt:
                self.verifier.close()
            raise

    async def asynthesize(self, problem: Any, *, on_attempt: AttemptHook | None = None,
                          close_on_interrupt: bool = False) -> TaskResult:
        """Draft, then refine, one problem within the budget; returns its best kernel and history.

        A run that stops early (a ``UserError`` such as a rejected key or a provider that keeps
        failing, ``KeyboardInterrupt``, or cancellation) re-raises, after ending the run in the memory
        with a summary that says why; ``last_result`` then holds the task's result up to the stop (its
        best kernel included, ``stop_reason`` "stopped: ..."). ``close_on_interrupt``: see run_round
        (for an agent that owns its verifier and is about to end).
        """
        spec = as_task(problem)
        self.last_result = None
        self.check_reference(spec)  # before the run or any attempt is recorded
        run_id = self.memory.begin_run(self.run_config(secret=True, task=spec.id))
        self.last_run_id = run_id
        loop = self.loop(run_id, on_attempt)
        state = loop.new_state(spec)
        self.last_result = state.result()
        round_index = 0
        try:
            while not state.done:
                await self.run_round(loop, [state], round_index, close_on_interrupt=close_on_interrupt)
                round_index += 1
                self.last_result = state.result()
        except BaseException as exc:
            state.stop_reason = f"stopped: {stop_reason_of(exc)}"
            self.last_result = state.result()
            self.end_run(run_id, self._summary(self.last_result), stopped=stop_reason_of(exc))
            raise
        self.end_run(run_id, self._summary(self.last_result))
        return self.last_result

    @staticmethod
    def _summary(result: TaskResult) -> dict[str, Any]:
        return {"solved": result.solved, "attempts": len(result.attempts)}

    def end_run(self, run_id: str, summary: dict[str, Any], *, stopped: str | None = None) -> None:
        """End a run in the memory with ``summary``; a run that ``stopped`` early is marked interrupted with
        that reason, and a failure to record its end is logged, never raised over the stop itself."""
        if stopped is not None:
            summary = {**summary, "interrupted": True, "reason": stopped}
        try:
            self.memory.end_run(run_id, summary)
        except Exception as exc:  # never hide why the run stopped behind a failure to record it
            if stopped is None:
                raise
            log.warning("could not record the end of run %s in %s: %s", run_id, self.memory.path, exc)

    def synthesize(self, problem: Any, *, on_attempt: AttemptHook | None = None,
                   close_on_interrupt: bool = False) -> TaskResult:
        """Blocking form of asynthesize."""
        return run_interruptibly(self._with_proposer_closed(
            self.asynthesize(problem, on_attempt=on_attempt, close_on_interrupt=close_on_interrupt)))

    async def _with_proposer_closed(self, coro: Any) -> Any:
        try:
            return await coro
        finally:
            aclose = getattr(self.proposer, "aclose", None)
            if aclose is not None:
                await aclose()


def check_reference(task: TaskSpec, settings: VerifySettings, backend: str) -> None:
    """Run the task's reference once before the first attempt; a broken one raises ProblemError naming the file.

    Where the verifier fits sizes to the interpreter (the CPU backend), the check runs the fitted program
    here (``fit_problem`` shrinks and runs it; a program already small enough is run as it is). On a
    GPU/NPU the reference may need the device, so the verifier's own reference run reports it instead
    (a UserError on the first candidate, before anything of the attempt is stored)."""
    if settings.resolved_fit(backend) != "cpu":
        return
    from evokernel.programs import run_reference
    from evokernel.verify.sizing import fit_problem

    filename = str(task.path) if task.path is not None else task.id
    fit = fit_problem(task.source, max_elements=settings.max_elements, filename=filename, verify=True,
                      seed=settings.seed)
    if not fit.changed:  # fit_problem runs the program for real only when it changed the sizes
        run_reference(fit.source, filename, seed=settings.seed)


def stop_reason_of(exc: BaseException) -> str:
    """Why a run stopped early, in a few words: the user error's message, "interrupted", or the error."""
    if isinstance(exc, (KeyboardInterrupt, asyncio.CancelledError)):
        return "interrupted"
    if isinstance(exc, UserError):
        return str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {exc}"


def _reply_cache_key(settings: AgentSettings) -> str | None:
    """The input secret kept in the configured reply cache, or None when no model or cache is used."""
    llm = settings.llm
    if not (llm.model and llm.cache_path and llm.cache_mode != "off"):
        return None
    from evokernel.agent.llm.cache import ReplyCache

    with ReplyCache(llm.cache_path) as cache:
        return cache.input_key()


def _resolve_backend(name: str, verifier: Any = None) -> tuple[str, bool, str]:
    """(backend name, whether it measures time, device description) of the configured backend.

    An executor knows the backend its workers have (on a Ray cluster, not this machine's); for a bare
    Verifier or a test double, "auto" picks the device this machine has.
    """
    info = getattr(verifier, "backend_info", None)
    if callable(info):
        found = info()
        return found.name, bool(found.times_kernels), found.device
    from evokernel.backends import get_backend

    backend = get_backend(name)
    return backend.name, bool(backend.times_kernels), backend.describe()


def synthesize(
    problem: Any,
    settings: AgentSettings | None = None,
    *,
    memory: Memory | str | Path | None = None,
    proposer: Proposer | None = None,
    verifier: Any = None,
    **overrides: Any,
) -> TaskResult:
    """Synthesize a kernel for one problem (path or record) with a one-off Agent.

    Settings are ``settings`` (default ``AgentSettings()``, never modified) updated by keyword: any
    ``AgentSettings`` field by name (``budget=3``, ``seed=1``, ``workers=4``) and the nested tables as
    dicts or dataclasses (``retrieval={"mode": "none"}``, ``verify={"backend": "cpu"}``,
    ``llm={"model": "openai/gpt-4o"}``). An unknown name is a TypeError listing the accepted forms.
    ``memory``, ``proposer`` and ``verifier`` are passed to ``Agent``."""
    settings = settings_with(settings, overrides, where="synthesize()")
    with Agent(settings, memory=memory, proposer=proposer, verifier=verifier) as agent:
        return agent.synthesize(problem)
