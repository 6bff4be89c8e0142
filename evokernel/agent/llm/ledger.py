"""Token and cost accounting per model, exact under concurrency, serializable into the run record.

Costs are kept per request and summed with `math.fsum`, so totals do not depend on the order in
which concurrent requests finish. All methods take a lock: one ledger may be shared by clients on
several threads or event loops.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ModelUsage", "UsageLedger"]


@dataclass
class ModelUsage:
    """Totals for one model string."""

    requests: int = 0  # completions returned (cached, failed and successful)
    provider_calls: int = 0  # HTTP attempts, retries included
    cached: int = 0
    failed: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    unpriced: int = 0  # successful provider replies litellm could not price
    costs: list[float] = field(default_factory=list, repr=False)

    @property
    def cost_usd(self) -> float:
        """Total cost (exact sum of the per-request costs)."""
        return math.fsum(self.costs)

    @property
    def price(self) -> str:
        """"known", "unknown" (no reply could be priced), "partly unknown", or "not billed" (no provider
        reply carried usage: a replay from the cache, or only failures)."""
        if not self.costs:
            return "not billed"
        if not self.unpriced:
            return "known"
        return "unknown" if self.unpriced == len(self.costs) else "partly unknown"

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "provider_calls": self.provider_calls,
            "cached": self.cached,
            "failed": self.failed,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "cost_usd": self.cost_usd,
            "price": self.price,
        }


class UsageLedger:
    """Accumulates tokens and cost of every completion, per model."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: dict[str, ModelUsage] = {}

    def record(
        self,
        model: str,
        *,
        tokens_in: int = 0,
        tokens_out: int = 0,
        cost_usd: float = 0.0,
        price_known: bool = True,
        cached: bool = False,
        failed: bool = False,
        provider_calls: int = 0,
        billed: bool = False,
    ) -> None:
        """Add one completion; `billed` marks a provider reply that carried usage (priced or not)."""
        with self._lock:
            usage = self._models.setdefault(model, ModelUsage())
            usage.requests += 1
            usage.provider_calls += provider_calls
            usage.cached += int(cached)
            usage.failed += int(failed)
            usage.tokens_in += tokens_in
            usage.tokens_out += tokens_out
            if billed:
                usage.costs.append(float(cost_usd))
                usage.unpriced += int(not price_known)

    def usage(self, model: str) -> ModelUsage:
        """A copy of one model's totals (zeros if never used)."""
        with self._lock:
            current = self._models.get(model, ModelUsage())
            return ModelUsage(**{**current.__dict__, "costs": list(current.costs)})

    @property
    def models(self) -> list[str]:
        with self._lock:
            return sorted(self._models)

    def totals(self) -> dict[str, Any]:
        """Sums over all models (same keys as a model's entry)."""
        with self._lock:
            all_usage = list(self._models.values())
        total = ModelUsage()
        for usage in all_usage:
            total.requests += usage.requests
            total.provider_calls += usage.provider_calls
            total.cached += usage.cached
            total.failed += usage.failed
            total.tokens_in += usage.tokens_in
            total.tokens_out += usage.tokens_out
            total.unpriced += usage.unpriced
            total.costs.extend(usage.costs)
        return total.to_dict()

    def to_dict(self) -> dict[str, Any]:
        """`{"models": {model: totals}, "total": totals}` for the run record (JSON-ready)."""
        with self._lock:
            models = {name: self._models[name].to_dict() for name in sorted(self._models)}
        return {"models": models, "total": self.totals()}

    def summary(self) -> str:
        """One line for logs and the CLI, e.g. `12 requests, 3.1k tokens in, 900 out, $0.0123`."""
        total = self.totals()
        cost = "unknown price" if total["price"] == "unknown" else f"${total['cost_usd']:.4f}"
        if total["price"] == "partly unknown":
            cost += " (some replies unpriced)"
        elif total["price"] == "not billed":
            cost += " (no provider replies billed)"
        return (
            f"{total['requests']} requests ({total['cached']} cached, {total['failed']} failed), "
            f"{total['tokens_in']} tokens in, {total['tokens_out']} out, {cost}"
        )
