"""The verifier: sandboxed, cheat-resistant evaluation of Triton candidates.

Public API (imported lazily; ``import evokernel.verify`` does not import torch):
``VerifySettings``, ``Verdict``, ``STATUSES``, ``evaluate``, ``Verifier``, ``fit_problem``, ``FitResult``,
``check_candidate`` (the static gate), ``RULES``, ``PoolError``, and the executors (``make_executor``,
``Executor``, ``LocalExecutor``, ``RayExecutor``, ``EXECUTORS``: where candidates run, one worker per device).
"""

from __future__ import annotations

from evokernel._lazy import lazy_getattr

_EXPORTS: dict[str, str] = {
    "VerifySettings": "evokernel.verify.settings",
    "tolerance_for": "evokernel.verify.settings",
    "Verdict": "evokernel.verify.verdict",
    "STATUSES": "evokernel.verify.verdict",
    "evaluate": "evokernel.verify.verifier",
    "Verifier": "evokernel.verify.verifier",
    "fit_problem": "evokernel.verify.sizing",
    "FitResult": "evokernel.verify.sizing",
    "check_candidate": "evokernel.verify.static_gate",
    "GateResult": "evokernel.verify.static_gate",
    "PoolError": "evokernel.verify.sandbox.pool",
    "RULES": "evokernel.verify.rules",
    "Rule": "evokernel.verify.rules",
    "make_executor": "evokernel.verify.executors",
    "Executor": "evokernel.verify.executors",
    "EXECUTORS": "evokernel.verify.executors",
    "BackendInfo": "evokernel.verify.executors",
    "LocalExecutor": "evokernel.verify.executors.local",
    "RayExecutor": "evokernel.verify.executors.ray_executor",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)


def __dir__() -> list[str]:
    return sorted(__all__)
