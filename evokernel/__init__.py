"""EvoKernel: a self-evolving agent that writes verified, fast Triton kernels.

Public names are imported lazily so that `import evokernel` stays cheap (no torch, triton or
litellm at import time).
"""

from __future__ import annotations

from evokernel._lazy import lazy_getattr

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "UserError": "evokernel.errors",
    "ProblemError": "evokernel.programs",
    "Agent": "evokernel.agent.agent",
    "synthesize": "evokernel.agent.agent",
    "AgentSettings": "evokernel.agent.settings",
    "load_settings": "evokernel.agent.settings",
    "TaskResult": "evokernel.agent.records",
    "AttemptRecord": "evokernel.agent.records",
    "TaskSpec": "evokernel.agent.records",
    "Proposer": "evokernel.agent.types",
    "ProposalRequest": "evokernel.agent.types",
    "Proposal": "evokernel.agent.types",
    "LLMSettings": "evokernel.agent.llm",
    "Memory": "evokernel.memory",
    "NewItem": "evokernel.memory",
    "Item": "evokernel.memory",
    "Retrieved": "evokernel.memory",
    "RetrievalSettings": "evokernel.memory",
    "Verifier": "evokernel.verify",
    "VerifySettings": "evokernel.verify",
    "Verdict": "evokernel.verify",
    "evaluate": "evokernel.verify",
    "ExperienceIndex": "evokernel._core",
    "load_suite": "kernelbench.loader",
    "Problem": "kernelbench.problem",
}

__all__ = ["__version__", *_EXPORTS]


__getattr__ = lazy_getattr(__name__, _EXPORTS)


def __dir__() -> list[str]:
    return sorted(__all__)
