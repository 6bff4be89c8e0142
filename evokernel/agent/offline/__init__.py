"""The offline proposer: synthesizes Triton kernels from templates, without any model.

Pipeline: :mod:`.trace` (program -> aten graph with symbolic sizes) -> :mod:`.lowering`,
:mod:`.lower_ops`, :mod:`.lower_index` (graph -> plan of template instances, views, size
arithmetic and, under policy ``mixed``, aten calls for what no template covers) ->
:mod:`.fusion` (configuration-dependent epilogue/row fusion) -> :mod:`.codegen` (plan +
configuration -> candidate source defining ``ModelNew``), with one module per template family
in :mod:`.templates`. :mod:`.space` holds the configuration search spaces (safe and risky
choices), :mod:`.drafting` picks configurations from memory or by sampling, and
:mod:`.proposer` implements the agent's ``Proposer`` protocol on top of it all.
"""

from __future__ import annotations

from evokernel._lazy import lazy_getattr

_EXPORTS: dict[str, str] = {
    "OfflineProposer": "evokernel.agent.offline.proposer",
    "generate": "evokernel.agent.offline.codegen",
    "Generated": "evokernel.agent.offline.codegen",
    "lower_program": "evokernel.agent.offline.lowering",
    "Unsupported": "evokernel.agent.offline.lowering",
}

__all__ = list(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)
