"""Rewards of the two stages and the choice of a refining start point (DESIGN section 1)."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from evokernel.memory import Item

__all__ = ["draft_reward", "refine_reward", "choose_start_point"]


def draft_reward(feasible: bool) -> float:
    """+1 for a feasible draft, -1 otherwise."""
    return 1.0 if feasible else -1.0


def refine_reward(feasible: bool, latency_ms: float | None, best_ms: float | None) -> float:
    """-1 if infeasible, else tanh(log b - log latency) with b the task's best latency before the attempt.

    A feasible kernel whose speed cannot be compared (no latency measured, or no earlier best) earns 0.
    """
    if not feasible:
        return -1.0
    if latency_ms is None or best_ms is None or latency_ms <= 0 or best_ms <= 0:
        return 0.0
    return math.tanh(math.log(best_ms) - math.log(latency_ms))


def _fastest(points: Sequence[Item]) -> Item:
    # unknown latency sorts last; newer items win ties
    return min(points, key=lambda p: (p.latency_ms is None, p.latency_ms or 0.0, -p.id))


def choose_start_point(points: Sequence[Item], mode: str, epsilon: float, rng: random.Random) -> Item:
    """Pick the kernel to refine: epsilon-greedy by Q_refine ("value"), else the fastest one."""
    if not points:
        raise ValueError("no start points to choose from")
    if mode != "value":
        return _fastest(points)
    if rng.random() < epsilon:
        return points[rng.randrange(len(points))]
    best_q = max(p.q_refine for p in points)
    return _fastest([p for p in points if p.q_refine == best_q])
