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

    async def propose(self, request: ProposalRequest) -> Proposal:
        """One candidate for the request (never raises for unsupported programs)."""
        return await asyncio.to_thread(self.propose_sync, request)

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
        from evokernel.agent.offline.space import is_risky

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
