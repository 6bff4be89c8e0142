"""Q values, visit counts and running reward statistics against closed forms and numpy."""

from __future__ import annotations

import numpy as np
import pytest

from evokernel import _core


def test_constants():
    assert (_core.DRAFT, _core.REFINE) == (0, 1)


def test_update_q_closed_form_with_repeated_ids(make_index, rng):
    index, ids, *_ = make_index(50, 8)
    alpha = 0.2
    targets = ids[:10]
    q0 = rng.uniform(-1, 1, 10)
    index.set_q(targets, _core.REFINE, q0, np.arange(10, dtype=np.int64))
    # ids[0] three times, ids[1] twice, the rest once; one reward for all.
    listed = np.concatenate([targets, targets[:2], targets[:1]])
    out = index.update_q(listed, _core.REFINE, 1.0, alpha=alpha)
    times = np.array([3, 2] + [1] * 8)
    expected = 1.0 + (1 - alpha) ** times * (q0 - 1.0)
    np.testing.assert_allclose(index.get_q(targets, _core.REFINE), expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(index.get_visits(targets, _core.REFINE), np.arange(10) + times)
    # The returned value of each entry is the Q right after that entry's update.
    np.testing.assert_allclose(out[10], 1.0 + (1 - alpha) ** 2 * (q0[0] - 1.0), rtol=1e-12)
    np.testing.assert_allclose(out[12], expected[0], rtol=1e-12)
    # The other stage is untouched.
    np.testing.assert_array_equal(index.get_q(targets, _core.DRAFT), np.zeros(10))
    np.testing.assert_array_equal(index.get_visits(targets, _core.DRAFT), np.zeros(10))


def test_update_q_per_id_rewards_sequential(make_index, rng):
    index, ids, *_ = make_index(20, 4)
    listed = rng.choice(ids[:5], 30)
    rewards = rng.uniform(-1, 1, 30)
    alpha = 0.35
    model = {int(i): 0.0 for i in ids}
    expect_out = []
    for i, r in zip(listed.tolist(), rewards.tolist()):
        model[i] = model[i] + alpha * (r - model[i])
        expect_out.append(model[i])
    out = index.update_q(listed, _core.DRAFT, rewards, alpha=alpha)
    np.testing.assert_array_equal(out, expect_out)  # same float64 operations, same order
    np.testing.assert_array_equal(index.get_q(ids, _core.DRAFT), [model[int(i)] for i in ids])


def test_update_q_accepts_lists_and_float32_rewards(make_index):
    index, ids, *_ = make_index(5, 4)
    out = index.update_q(ids[:2].tolist(), _core.DRAFT, np.array([1, -1], np.float32))
    np.testing.assert_allclose(out, [0.2, -0.2])
    out = index.update_q(ids[:1], _core.DRAFT, np.float32(1.0))
    np.testing.assert_allclose(out, [0.36])
    assert index.update_q([], _core.DRAFT, 1.0).shape == (0,)


def test_update_q_missing_id_changes_nothing(make_index):
    index, ids, *_ = make_index(5, 4)
    with pytest.raises(KeyError, match="12345"):
        index.update_q(np.array([ids[0], 12345]), _core.DRAFT, 1.0)
    assert index.get_q(ids[:1], _core.DRAFT)[0] == 0.0
    assert index.get_visits(ids[:1], _core.DRAFT)[0] == 0
    with pytest.raises(KeyError):
        index.get_q([12345], _core.DRAFT)
    with pytest.raises(KeyError):
        index.set_q([ids[0], 12345], _core.DRAFT, [0.5, 0.5], [1, 1])
    assert index.get_q(ids[:1], _core.DRAFT)[0] == 0.0


def test_q_values_follow_rows_through_removal(make_index, rng):
    index, ids, *_ = make_index(30, 4)
    q = rng.uniform(-1, 1, 30)
    visits = rng.integers(0, 100, 30)
    index.set_q(ids, _core.DRAFT, q, visits)
    index.remove(ids[:10:2])
    keep = np.ones(30, bool)
    keep[:10:2] = False
    np.testing.assert_array_equal(index.get_q(ids[keep], _core.DRAFT), q[keep])
    np.testing.assert_array_equal(index.get_visits(ids[keep], _core.DRAFT), visits[keep])
    index.add(ids[:1], rng.standard_normal((1, 4)).astype(np.float32))
    assert index.get_q(ids[:1], _core.DRAFT)[0] == 0.0  # a re-added id starts fresh


def numpy_reward_ema(rewards, beta, floor, warmup):
    """Reference of normalize_reward: (outputs, final count, mean, var)."""
    mean = sq = 0.0
    outs = []
    for count, r in enumerate(rewards, start=1):
        b = max(beta, 1.0 / count)
        mean = (1 - b) * mean + b * r
        sq = (1 - b) * sq + b * r * r
        var = max(sq - mean * mean, 0.0)
        outs.append(r if count < warmup else (r - mean) / max(np.sqrt(var), floor))
    return np.array(outs), len(rewards), mean, max(sq - mean * mean, 0.0)


@pytest.mark.parametrize("beta,floor,warmup", [(0.05, 0.1, 8), (0.3, 0.5, 0), (1.0, 0.1, 3)])
def test_normalize_reward_matches_numpy_ema(rng, beta, floor, warmup):
    index = _core.ExperienceIndex(4, reward_beta=beta, reward_std_floor=floor, reward_warmup=warmup)
    rewards = np.concatenate([rng.uniform(-1, 1, 40), np.full(10, 0.25)])  # constant tail: floor
    got = np.array([index.normalize_reward(_core.REFINE, float(r)) for r in rewards])
    want, count, mean, var = numpy_reward_ema(rewards.tolist(), beta, floor, warmup)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    c, m, v = index.reward_stats(_core.REFINE)
    assert c == count
    np.testing.assert_allclose([m, v], [mean, var], rtol=1e-12, atol=1e-15)
    assert index.reward_stats(_core.DRAFT) == (0, 0.0, 0.0)
    if warmup > 1:  # raw reward until enough samples
        np.testing.assert_array_equal(got[: warmup - 1], rewards[: warmup - 1])


def test_set_reward_stats_continues_the_ema():
    a = _core.ExperienceIndex(4)
    rewards = [0.5, -1.0, 0.25, 1.0, -0.5, 0.0, 0.75, -0.25, 0.1, 0.9]
    for r in rewards[:6]:
        a.normalize_reward(_core.DRAFT, r)
    b = _core.ExperienceIndex(4)
    b.set_reward_stats(_core.DRAFT, *a.reward_stats(_core.DRAFT))
    for r in rewards[6:]:
        np.testing.assert_allclose(b.normalize_reward(_core.DRAFT, r),
                                   a.normalize_reward(_core.DRAFT, r), rtol=1e-9)


@pytest.mark.parametrize("bad", [
    dict(stage=2), dict(stage=-1), dict(alpha=1.5), dict(alpha=float("nan")),
    dict(rewards=float("inf")),
])
def test_update_q_rejects_bad_arguments(make_index, bad):
    index, ids, *_ = make_index(3, 4)
    kw = dict(stage=_core.DRAFT, rewards=1.0, alpha=0.2) | bad
    with pytest.raises(ValueError):
        index.update_q(ids, kw["stage"], kw["rewards"], alpha=kw["alpha"])


def test_reward_arguments_are_checked():
    with pytest.raises(ValueError, match="reward_beta"):
        _core.ExperienceIndex(4, reward_beta=0.0)
    with pytest.raises(ValueError, match="reward_std_floor"):
        _core.ExperienceIndex(4, reward_std_floor=0.0)
    with pytest.raises(ValueError, match="reward_warmup"):
        _core.ExperienceIndex(4, reward_warmup=-1)
    index = _core.ExperienceIndex(4)
    with pytest.raises(ValueError, match="finite"):
        index.normalize_reward(_core.DRAFT, float("nan"))
    with pytest.raises(ValueError, match="stage"):
        index.normalize_reward(3, 1.0)
    with pytest.raises(ValueError, match="var"):
        index.set_reward_stats(_core.DRAFT, 3, 0.0, -1.0)
    with pytest.raises(ValueError, match="count"):
        index.set_reward_stats(_core.DRAFT, -3, 0.0, 1.0)
    assert index.reward_stats(_core.DRAFT) == (0, 0.0, 0.0)
