"""Rewards of both stages and the choice of the refining start point."""

from __future__ import annotations

import math
import random

import pytest

from evokernel.agent.rewards import choose_start_point, draft_reward, refine_reward
from evokernel.memory import Item


def _item(i: int, q: float, latency: float | None) -> Item:
    return Item(
        kind="experience", task_id="t", task_name="t", backend="cuda", stage="draft", code="", lesson="",
        outcome={}, reward=None, parent_id=None, run_id=None, feasible=True, latency_ms=latency, id=i, q_refine=q,
    )


def test_draft_reward_is_plus_minus_one() -> None:
    assert draft_reward(True) == 1.0
    assert draft_reward(False) == -1.0


def test_refine_reward_is_tanh_of_log_speedup_over_best() -> None:
    # 2x faster than the best so far: tanh(log 2)
    assert refine_reward(True, 0.5, 1.0) == pytest.approx(math.tanh(math.log(2.0)))
    # 2x slower: symmetric
    assert refine_reward(True, 2.0, 1.0) == pytest.approx(-math.tanh(math.log(2.0)))
    assert refine_reward(True, 1.0, 1.0) == 0.0
    assert refine_reward(False, 0.1, 1.0) == -1.0


def test_refine_reward_without_timings_is_neutral() -> None:
    assert refine_reward(True, None, 1.0) == 0.0
    assert refine_reward(True, 1.0, None) == 0.0


def test_start_point_value_mode_is_greedy_by_q_then_fastest() -> None:
    points = [_item(1, 0.1, 1.0), _item(2, 0.5, 3.0), _item(3, 0.5, 2.0)]
    chosen = choose_start_point(points, "value", epsilon=0.0, rng=random.Random(0))
    assert chosen.id == 3


def test_start_point_similarity_mode_ignores_q_and_takes_fastest() -> None:
    points = [_item(1, 0.9, 5.0), _item(2, -0.9, 1.0), _item(3, 0.0, None)]
    assert choose_start_point(points, "similarity", epsilon=0.5, rng=random.Random(0)).id == 2
    assert choose_start_point(points, "none", epsilon=0.5, rng=random.Random(0)).id == 2


def test_start_point_epsilon_explores_every_point() -> None:
    points = [_item(i, float(i), 1.0) for i in range(4)]
    rng = random.Random(1)
    seen = {choose_start_point(points, "value", epsilon=1.0, rng=rng).id for _ in range(200)}
    assert seen == {0, 1, 2, 3}


def test_no_start_points_is_an_error() -> None:
    with pytest.raises(ValueError):
        choose_start_point([], "value", 0.1, random.Random(0))
