"""Test doubles: the Triton interpreter posing as a device that times kernels.

Workers import these by path (``tests.verify.fake_device:Class``), so the timing path of the verifier
(handshake, timing in the worker, re-check, baselines, reference cache, speedup flag) runs on a
machine without a GPU. Their numbers are fake and never stand for a real measurement.
"""

from __future__ import annotations

import sys

from evokernel.backends.base import summarize
from evokernel.backends.cpu import CpuBackend


class TimedInterpreter(CpuBackend):
    """Every candidate run "takes" 2 ms, every reference run 1 ms (speedup 0.5)."""

    name = "fake-device"
    times_kernels = True
    candidate_ms = 2.0
    reference_ms = 1.0

    def describe(self) -> str:
        return "fake device (Triton interpreter)"

    def time_runs(self, fn, input_sets, runs, warmup):
        for i in range(warmup + runs):
            fn(input_sets[i % len(input_sets)])
        ms = self.candidate_ms if "candidate" in sys.modules else self.reference_ms
        return summarize([ms] * runs)

    def profile_kernels(self, fn, inputs, runs=3):
        """Fake device times per call: 1.5 ms in one kernel, 0.1 ms in two memsets."""
        fn(inputs)
        return [{"name": "fake_kernel", "calls": 1, "device_us": 1500.0}, {"name": "memset", "calls": 2, "device_us": 100.0}]


class TooFastInterpreter(TimedInterpreter):
    """Candidates "take" 0.01 ms: a 100x speedup, which must be flagged for review."""

    name = "fake-fast-device"
    candidate_ms = 0.01
