"""The timing path (GPU/NPU) end to end, on a fake device backend that runs the interpreter.

The worker waits for the parent's verdict before timing; timing happens only for correct candidates;
the result is re-checked after timing; baselines are timed once and cached in the reference cache.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from evokernel.verify import Verifier, VerifySettings

FAKE = "tests.verify.fake_device:TimedInterpreter"
FAST = "tests.verify.fake_device:TooFastInterpreter"


@pytest.fixture(scope="module", autouse=True)
def importable_test_backend():
    """Workers import the fake backend by path: put the repository root on their PYTHONPATH."""
    root = str(Path(__file__).resolve().parents[2])
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([root, old]) if old else root
    yield
    if old is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = old


@pytest.fixture(scope="module")
def timed(tmp_path_factory):
    cache = tmp_path_factory.mktemp("refcache") / "reference_timings.json"
    s = VerifySettings(backend=FAKE, max_elements=4096, timing_runs=5, warmup_runs=1, reference_cache=str(cache),
                       time_compile=False)
    with Verifier(s, workers=1) as v:
        yield v, s, cache


def test_correct_candidate_is_timed_and_compared(timed, data) -> None:
    verifier, settings, cache = timed
    verdict = verifier.evaluate(data.problem("relu"), data.good("relu"))
    assert verdict.status == "correct", verdict.summary()
    assert verdict.latency_ms == pytest.approx(2.0)
    assert verdict.timing["candidate"]["runs"] == 5 and verdict.timing["eager"]["median_ms"] == pytest.approx(1.0)
    assert verdict.speedup_eager == pytest.approx(0.5) and verdict.speedup_compile is None
    assert not verdict.flagged
    assert verdict.checks["recheck"] == "pass"
    # the worker's profile rows, summarized parent-side: 1.6 of the 2 ms on the device
    assert verdict.profile.startswith("device time per forward: 1.6 ms in 3 kernel launches")
    assert "80% of it on the device" in verdict.profile and "fake_kernel" in verdict.profile
    assert verdict.checks["profile"] == "pass"
    stored = json.loads(cache.read_text())
    assert len(stored) == 1 and next(iter(stored.values()))["eager"]["runs"] == 5


def test_incorrect_candidate_is_not_timed(timed, data) -> None:
    verifier, _, _ = timed
    verdict = verifier.evaluate(data.problem("relu"), data.hostile("identity_relu"))
    assert verdict.status == "incorrect" and verdict.timing is None and verdict.latency_ms is None
    assert verdict.profile is None


@pytest.mark.slow
def test_reference_timings_come_from_the_cache_file(data, timed) -> None:
    _, settings, cache = timed
    key, value = next(iter(json.loads(cache.read_text()).items()))
    value["eager"]["median_ms"] = 8.0  # a second verifier must read this instead of timing again
    cache.write_text(json.dumps({key: value}))
    with Verifier(settings, workers=1) as fresh:
        verdict = fresh.evaluate(data.problem("relu"), data.good("relu"))
    assert verdict.speedup_eager == pytest.approx(4.0)


@pytest.mark.slow
def test_speedups_above_ten_are_flagged(data) -> None:
    s = VerifySettings(backend=FAST, max_elements=4096, timing_runs=3, warmup_runs=0, time_compile=False)
    with Verifier(s, workers=1) as v:
        verdict = v.evaluate(data.problem("relu"), data.good("relu"))
    assert verdict.status == "correct" and verdict.flagged and verdict.speedup_eager == pytest.approx(100.0)
    assert "flagged" in verdict.checks["speedup"]
