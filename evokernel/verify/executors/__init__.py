"""Where candidates are verified: ``local`` (warm pools on this machine, one per device) or ``ray`` (actors on a
Ray cluster, one per device). Both are drop-ins for a Verifier: ``evaluate(problem, candidate, settings)``.

Importing this package imports neither torch nor ray; ``make_executor`` imports what the chosen
executor needs.
"""

from __future__ import annotations

from typing import Any

from evokernel.errors import UserError
from evokernel.verify.executors.base import BackendInfo, Executor, ShippedProblem

__all__ = ["EXECUTORS", "Executor", "BackendInfo", "ShippedProblem", "make_executor"]

EXECUTORS = ("local", "ray")


def make_executor(name: str, settings: Any = None, *, workers: int | None = None, address: str | None = None,
                  **kwargs: Any) -> Executor:
    """A started executor by name ("local" or "ray"); ``address`` is the Ray cluster (ray only: "auto", HOST:PORT,
    or None for a local Ray instance). Extra keyword arguments go to the executor's constructor."""
    if name == "local":
        if address is not None:
            raise UserError(f"--ray-address {address}: only the ray executor uses it; add --executor ray")
        from evokernel.verify.executors.local import LocalExecutor

        return LocalExecutor(settings, workers=workers, **kwargs)
    if name == "ray":
        from evokernel.verify.executors.ray_executor import RayExecutor

        return RayExecutor(settings, workers=workers, address=address, **kwargs)
    raise UserError(f"unknown executor {name!r}; choose one of {', '.join(EXECUTORS)}")
