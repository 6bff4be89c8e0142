"""What the verifier needs from a target: device, worker environment, synchronisation, timing.

A backend object is cheap to create and imports torch only inside its methods. The same class
runs in the parent (to pick and describe the device) and in workers (to prepare the device, time
runs and recognise device faults).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Backend", "DeviceBackend", "TimingStats", "summarize", "DeviceFault"]


@dataclass
class TimingStats:
    """Milliseconds over timed runs."""

    median_ms: float
    p20_ms: float
    p80_ms: float
    mean_ms: float
    min_ms: float
    runs: int

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile of sorted values (numpy's default method)."""
    if len(sorted_values) == 1:
        return float(sorted_values[0])
    pos = q * (len(sorted_values) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo))


def summarize(samples_ms: Sequence[float]) -> TimingStats:
    """Median, p20, p80, mean and min of per-run times."""
    if not samples_ms:
        raise ValueError("no timing samples")
    s = sorted(float(x) for x in samples_ms)
    return TimingStats(
        median_ms=_quantile(s, 0.5),
        p20_ms=_quantile(s, 0.2),
        p80_ms=_quantile(s, 0.8),
        mean_ms=statistics.fmean(s),
        min_ms=s[0],
        runs=len(s),
    )


@dataclass
class DeviceFault:
    """A device error that ends the worker: status ("crashed" or "memory_exceeded") and a signal-like name."""

    status: str
    signal: str | None


class Backend:
    """Base class; subclasses set the class attributes and override what differs."""

    name: str = "base"
    spec: str = ""  # how workers re-create this backend: its name, or "package.module:Class"
    device_type: str = "cpu"  # torch device type
    interpreter: bool = False  # kernels run through the Triton interpreter
    times_kernels: bool = False  # timings mean something (never on the interpreter)
    start_method: str = "spawn"  # "fork" from a zygote, or "spawn" a fresh interpreter per worker

    def is_available(self) -> bool:
        """True when this machine has the device."""
        raise NotImplementedError

    @property
    def worker_spec(self) -> str:
        """What a worker passes to get_backend to re-create this backend."""
        return self.spec or self.name

    def device(self) -> str:
        """torch device string for tensors, e.g. "cpu", "cuda:0", "npu:0"."""
        return self.device_type

    def describe(self) -> str:
        """Human-readable device name."""
        return self.device()

    def worker_env(self) -> dict[str, str]:
        """Variables set in every worker of this backend (on top of the scrubbed environment)."""
        return {}

    def prepare_worker(self) -> None:
        """Called once in a worker before any job: import device modules, create the context."""

    def synchronize(self) -> None:
        """Wait for all device work (every stream)."""

    def set_device_memory_limit(self, gb: float) -> None:
        """Cap device memory for this process where the backend supports it."""

    def time_runs(
        self, fn: Callable[[Any], Any], input_sets: Sequence[Any], runs: int, warmup: int
    ) -> TimingStats:
        """Time ``fn(inputs)`` over fresh input sets; device backends only."""
        raise NotImplementedError(f"backend {self.name} does not time kernels")

    def profile_kernels(self, fn: Callable[[Any], Any], inputs: Any, runs: int = 3) -> list[dict[str, Any]] | None:
        """Device time per kernel over ``runs`` calls of ``fn(inputs)``: rows {"name", "calls",
        "device_us"} per call, or None where the backend has no profiler."""
        return None

    def classify_error(self, exc: BaseException) -> DeviceFault | None:
        """A device fault (illegal address, device OOM) hidden in an exception, or None."""
        text = f"{type(exc).__name__}: {exc}".lower()
        if isinstance(exc, MemoryError) or "out of memory" in text or "can't allocate memory" in text:
            return DeviceFault("memory_exceeded", None)
        return None


class DeviceBackend(Backend):
    """Shared implementation for backends with a torch device module (torch.cuda, torch.npu).

    ``module`` may be injected (tests use a fake with Event/synchronize); by default it is looked up
    on torch by ``device_type``.
    """

    interpreter = False
    times_kernels = True
    start_method = "spawn"
    flush_bytes = 256 * 1024 * 1024  # larger than any current L2 / L2-like cache

    _FAULTS: tuple[tuple[str, str], ...] = ()
    profiler_activity: str | None = None  # torch.profiler.ProfilerActivity member, where torch profiles the device

    def __init__(self, module: Any | None = None) -> None:
        self._module = module

    def module(self) -> Any:
        """torch.cuda / torch.npu (or the injected fake)."""
        if self._module is None:
            import torch

            self._module = getattr(torch, self.device_type)
        return self._module

    def device(self) -> str:
        return f"{self.device_type}:0"

    def describe(self) -> str:
        try:
            return str(self.module().get_device_name(0))
        except Exception:
            return self.device()

    def worker_env(self) -> dict[str, str]:
        return {"TRITON_INTERPRET": "0"}

    def synchronize(self) -> None:
        self.module().synchronize()

    def set_device_memory_limit(self, gb: float) -> None:
        mod = self.module()
        try:
            total = mod.get_device_properties(0).total_memory
            mod.set_per_process_memory_fraction(min(1.0, gb * 2**30 / total), 0)
        except Exception:  # not every backend offers it; the device OOM is still caught
            pass

    def time_runs(
        self, fn: Callable[[Any], Any], input_sets: Sequence[Any], runs: int, warmup: int
    ) -> TimingStats:
        """Device events around each run; L2 flushed and every stream synchronised before the stop event.

        Input sets rotate so that consecutive runs see different data. The device-wide synchronise
        before the stop event is part of every measurement (candidate and baselines alike), so work
        hidden on a side stream is counted.
        """
        import torch

        mod = self.module()
        sync, event = mod.synchronize, mod.Event
        if not input_sets:
            raise ValueError("time_runs needs at least one input set")
        flush = torch.empty(self.flush_bytes // 4, dtype=torch.int32, device=self.device())
        for i in range(warmup):
            fn(input_sets[i % len(input_sets)])
        sync()
        samples = []
        for i in range(runs):
            inputs = input_sets[i % len(input_sets)]
            flush.zero_()
            start, stop = event(enable_timing=True), event(enable_timing=True)
            sync()
            start.record()
            fn(inputs)
            sync()
            stop.record()
            stop.synchronize()
            samples.append(float(start.elapsed_time(stop)))
        del flush
        return summarize(samples)

    def profile_kernels(self, fn: Callable[[Any], Any], inputs: Any, runs: int = 3) -> list[dict[str, Any]] | None:
        """torch.profiler over ``runs`` warm calls: each kernel's device time and launches per call."""
        if self.profiler_activity is None:
            return None
        from torch.profiler import ProfilerActivity, profile

        fn(inputs)
        self.synchronize()
        with profile(activities=[getattr(ProfilerActivity, self.profiler_activity)]) as prof:
            for _ in range(runs):
                fn(inputs)
            self.synchronize()
        rows = []
        for event in prof.key_averages():
            device_us = float(getattr(event, "self_device_time_total", 0.0) or 0.0)
            if device_us > 0:  # kernels, copies and memsets; host-side runtime calls have no device time
                rows.append({"name": str(event.key), "calls": event.count / runs, "device_us": device_us / runs})
        rows.sort(key=lambda r: -r["device_us"])
        return rows[:64]

    def classify_error(self, exc: BaseException) -> DeviceFault | None:
        text = f"{type(exc).__name__}: {exc}".lower()
        for needle, signal in self._FAULTS:
            if needle in text:
                return DeviceFault("crashed", signal)
        return super().classify_error(exc)
