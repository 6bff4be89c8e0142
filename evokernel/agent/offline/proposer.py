"""OfflineProposer: the embedded default proposer -- template kernels, no model, no network.

It implements the agent's ``Proposer`` protocol like the LLM proposer: same loop, same memory
items. Every proposal's ``meta["offline"]`` records the template families, the configuration per
family, the plan signature and the policy, so later drafts can reuse configurations of
high-value experiences (see :mod:`.drafting`). Programs with operators no template covers either
fall back to torch for those operators (policy ``mixed``) or, under ``policy="strict"``, get no
code and an error naming the operators.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from evokernel.agent.types import Proposal, ProposalRequest
from evokernel.errors import UserError
from evokernel.programs import source_hash

__all__ = ["OfflineProposer"]

_TRACE_LOCK = threading.Lock()  # tracing flips torch/fx global settings: one at a time

# A draft that fails the same way under this many configurations, the safe defaults among them, is
# wrong whatever the configuration (the lowering itself): the task ends instead of spending its budget.
SAME_FAILURE_LIMIT = 3


class OfflineProposer:
    """Synthesizes Triton kernels from templates; configurations come from memory or the search space.

    ``policy``: "mixed" lets unsupported operators run in torch beside the Triton kernels;
    "strict" refuses such programs (no code, an error naming the operators).
    ``sample_without_memory``: with no usable experience, sample a configuration (True) or use
    the safe defaults (False). ``refine_on_cpu``: mutate configurations even where no latency is
    measured (off by default: on the CPU only correctness is known, so refining is skipped).
    ``transfer_risky``: reuse risky knobs of other tasks' experiences as they are (default: hedge
    them to safe values; see :mod:`.drafting`).
    """

    name = "offline"

    def __init__(
        self,
        policy: str = "mixed",
        *,
        sample_without_memory: bool = True,
        refine_on_cpu: bool = False,
        transfer_risky: bool = False,
    ) -> None:
        if policy not in ("strict", "mixed"):
            raise ValueError(f"policy must be 'strict' or 'mixed', got {policy!r}")
        self.policy = policy
        self.sample_without_memory = sample_without_memory
        self.refine_on_cpu = refine_on_cpu
        self.transfer_risky = transfer_risky
        self._plans: dict[Any, Any] = {}
        # per task: the drafts proposed in this process, [attempt, config, safe defaults?, failure or None]
        self._drafts: dict[str, list[list[Any]]] = {}
        self._drafts_lock = threading.Lock()

    async def propose(self, request: ProposalRequest) -> Proposal:
        """One candidate for the request (never raises for unsupported programs)."""
        return await asyncio.to_thread(self.propose_sync, request)

    def _note_draft(self, request: ProposalRequest, config: dict[str, Any], defaults: bool) -> None:
        with self._drafts_lock:
            self._drafts.setdefault(request.task_id, []).append([request.attempt, config, defaults, None])

    def _repeated_failure(self, request: ProposalRequest, defaults: dict[str, Any]) -> tuple[str, bool] | None:
        """(the failure, whether the safe defaults failed that way) when this task's drafts with at least two
        different configurations failed alike, SAME_FAILURE_LIMIT - 1 times or more; else None.

        A draft's outcome is the feedback of the next request (its status and message lines)."""
        with self._drafts_lock:
            drafts = self._drafts.get(request.task_id, [])
            if drafts and drafts[-1][0] == request.attempt - 1 and request.feedback:
                head = "; ".join(request.feedback.splitlines()[:2])
                drafts[-1][3] = None if head.startswith("status: correct") else head
            failures = [d for d in drafts if d[3] is not None]
            if not failures or failures[-1][3] is None:
                return None
            last = failures[-1][3]
            alike = [d for d in failures if d[3] == last]
            configs = {repr(d[1]) for d in alike}
            if len(alike) < SAME_FAILURE_LIMIT - 1 or len(configs) < 2:
                return None
            tried_defaults = any(d[2] for d in alike)
            if tried_defaults and len(alike) < SAME_FAILURE_LIMIT:
                return None
            return last, tried_defaults

    def plan(self, source: str, backend: str = "cpu") -> Any:
        """The lowered plan of a program (cached by source and backend); raises lowering.Unsupported."""
        from evokernel.agent.offline.lowering import Unsupported, lower_program

        key = (source_hash(source), backend == "cpu")
        cached = self._plans.get(key)
        if cached is None:
            with _TRACE_LOCK:
                try:
                    cached = lower_program(source, fitted=backend == "cpu")
                except Unsupported as exc:
                    cached = exc
                except UserError:
                    raise  # the problem file itself is broken: the user must fix it
                except Exception as exc:  # a lowering bug: say so instead of failing the run
                    cached = Unsupported(f"lowering failed: {type(exc).__name__}: {str(exc)[:300]}")
            self._plans[key] = cached
        if isinstance(cached, Exception):
            raise cached
        return cached

    def propose_sync(self, request: ProposalRequest) -> Proposal:
        """Synchronous body of :meth:`propose`."""
        from evokernel.agent.offline.codegen import generate, plan_signature
        from evokernel.agent.offline.drafting import draft_config, refine_config
        from evokernel.agent.offline.lowering import Unsupported
        from evokernel.agent.offline.space import default_config, is_risky

        try:
            plan = self.plan(request.task_source, request.backend)
        except Unsupported as exc:
            ops = ", ".join(exc.ops) if exc.ops else "see the message"
            return Proposal(
                code=None,
                error=f"offline proposer cannot lower this program ({ops}): {exc}; give a model (--model) to "
                "have an LLM write it",
                final=True,  # the same program lowers the same way on every attempt
                meta={"offline": {"unsupported": list(exc.ops)}},
            )
        signature = plan_signature(plan)
        if plan.policy == "mixed" and self.policy == "strict":
            return Proposal(
                code=None,
                error=(
                    "offline proposer: these aten ops have no Triton template and policy is strict: "
                    + ", ".join(plan.unsupported)
                    + "; set the policy to mixed (--policy mixed) to keep them in torch beside the kernels, or give "
                    "a model (--model)"
                ),
                final=True,
                meta={"offline": {"unsupported": list(plan.unsupported), "plan_signature": signature}},
            )
        from evokernel.agent.offline.fusion import candidate_families

        families = candidate_families(plan)
        if request.stage == "refine":
            if request.backend == "cpu" and not self.refine_on_cpu:
                return Proposal(
                    code=None,
                    error="offline refining skipped on the cpu backend: only correctness is measured there, "
                    "so there is no latency to improve",
                    meta={"offline": {"skipped": "refine-on-cpu", "plan_signature": signature}},
                )
            chosen = refine_config(families, request)
            if chosen is None:
                return Proposal(
                    code=None,
                    error="offline refining: every one-knob change of this start point was already tried",
                    meta={"offline": {"exhausted": True, "plan_signature": signature}},
                )
            config, how = chosen
            origin: dict[str, str] = {f: how for f in families}
        else:
            config, origin = draft_config(
                families, request, sample_without_memory=self.sample_without_memory, transfer_risky=self.transfer_risky
            )
            defaults = {f: default_config(f, request.backend) for f in families}
            repeated = self._repeated_failure(request, defaults)
            if repeated is not None:
                failure, tried_defaults = repeated
                if tried_defaults:
                    return Proposal(
                        code=None,
                        error=f"offline proposer: {SAME_FAILURE_LIMIT} drafts with different configurations, the safe "
                        f"defaults among them, failed the same way ({failure}): the generated code is wrong for "
                        "this program whatever its configuration; give a model (--model) to have an LLM write it",
                        final=True,
                        meta={"offline": {"repeated_failure": failure, "plan_signature": signature}},
                    )
                config, origin = defaults, {f: "default:after-repeated-failure" for f in families}
            self._note_draft(request, config, config == defaults)
        try:
            gen = generate(request.task_source, config, plan=plan, backend=request.backend)
        except Exception as exc:  # a template bug: report it as a failed proposal, not a crash
            return Proposal(code=None, error=f"offline generation failed: {type(exc).__name__}: {exc}")
        meta = {
            "offline": {
                "families": gen.families,
                "config": gen.config,
                "plan_signature": signature,
                "policy": gen.policy,
                "torch_ops": gen.unsupported,
                "origin": origin,
                "risky": {f: is_risky(f, c) for f, c in gen.config.items() if is_risky(f, c)},
            }
        }
        return Proposal(code=gen.source, meta=meta, reply_chars=len(gen.source))
