"""Backends: selection, timing statistics, device timing loop (with a fake device), fault recognition."""

from __future__ import annotations

import pytest
import torch

from evokernel.backends import get_backend
from evokernel.backends.base import summarize
from evokernel.backends.cpu import CpuBackend
from evokernel.backends.cuda import CudaBackend
from evokernel.backends.npu import NpuBackend
from evokernel.errors import UserError

HAS_CUDA = torch.cuda.is_available()


def test_cpu_backend() -> None:
    b = get_backend("cpu")
    assert isinstance(b, CpuBackend) and b.interpreter and not b.times_kernels
    assert b.worker_env()["TRITON_INTERPRET"] == "1"
    assert b.worker_env()["CUDA_VISIBLE_DEVICES"] == ""  # the zygote never touches a GPU
    with pytest.raises(NotImplementedError):
        b.time_runs(lambda x: x, [[1]], 1, 0)


@pytest.mark.skipif(HAS_CUDA, reason="this machine has a GPU")
def test_auto_picks_cpu_without_devices_and_missing_devices_are_user_errors() -> None:
    assert get_backend("auto").name == "cpu"
    for name in ("cuda", "rocm", "npu"):
        with pytest.raises(UserError, match=f"backend {name}"):
            get_backend(name)
    with pytest.raises(UserError, match="unknown backend"):
        get_backend("tpu")


def test_summarize_quantiles() -> None:
    stats = summarize([5.0, 1.0, 2.0, 3.0, 4.0])
    assert (stats.median_ms, stats.min_ms, stats.runs) == (3.0, 1.0, 5)
    assert stats.p20_ms == pytest.approx(1.8) and stats.p80_ms == pytest.approx(4.2)
    with pytest.raises(ValueError):
        summarize([])


class FakeEvent:
    """Device event whose elapsed time is driven by the fake device's clock."""

    def __init__(self, device: FakeDevice, enable_timing: bool = False) -> None:
        self.device = device
        self.t = None

    def record(self, stream=None) -> None:
        self.t = self.device.clock

    def synchronize(self) -> None:
        self.device.log.append("event_sync")

    def elapsed_time(self, other: FakeEvent) -> float:
        return other.t - self.t


class FakeDevice:
    """Stands in for torch.cuda / torch.npu: a clock advanced by the timed function."""

    def __init__(self) -> None:
        self.clock = 0.0
        self.log: list[str] = []

    def Event(self, enable_timing: bool = False) -> FakeEvent:  # noqa: N802 - torch's name
        return FakeEvent(self, enable_timing)

    def synchronize(self) -> None:
        self.log.append("sync")


@pytest.mark.parametrize("make", [lambda dev: CudaBackend("cuda", module=dev), lambda dev: NpuBackend(module=dev)])
def test_device_timing_loop_with_a_fake_device(make, monkeypatch) -> None:
    dev = FakeDevice()
    backend = make(dev)
    monkeypatch.setattr(backend, "flush_bytes", 1024)
    monkeypatch.setattr(backend, "device", lambda: "cpu")  # the L2-flush buffer lives on the host here
    seen = []

    def fn(inputs):
        seen.append(inputs[0])
        dev.clock += float(inputs[0])  # "runs" for as long as its input says
        dev.log.append("run")

    stats = backend.time_runs(fn, [[1.0], [2.0], [3.0]], runs=6, warmup=2)
    assert stats.runs == 6 and stats.median_ms == pytest.approx(2.0)
    assert seen[:2] == [1.0, 2.0] and seen[2:] == [1.0, 2.0, 3.0, 1.0, 2.0, 3.0]  # inputs rotate
    # every timed run: device-wide sync before start, run, device-wide sync before the stop event
    assert dev.log == ["run", "run", "sync"] + ["sync", "run", "sync", "event_sync"] * 6


def test_device_fault_recognition() -> None:
    cuda = CudaBackend("cuda", module=FakeDevice())
    fault = cuda.classify_error(RuntimeError("CUDA error: an illegal memory access was encountered"))
    assert fault is not None and (fault.status, fault.signal) == ("crashed", "cuda_illegal_address")
    oom = cuda.classify_error(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert oom is not None and oom.status == "memory_exceeded"
    assert cuda.classify_error(ValueError("bad shape")) is None
    npu = NpuBackend(module=FakeDevice())
    fault = npu.classify_error(RuntimeError("EZ9999: Inner Error! AICore exception"))
    assert fault is not None and fault.status == "crashed"
    assert CpuBackend().classify_error(MemoryError()).status == "memory_exceeded"


def test_rocm_and_cuda_names() -> None:
    assert CudaBackend("rocm", module=FakeDevice()).name == "rocm"
    with pytest.raises(ValueError):
        CudaBackend("metal")


@pytest.mark.gpu
def test_real_cuda_timing() -> None:
    backend = get_backend("cuda")
    x = torch.randn(1 << 20, device=backend.device())
    stats = backend.time_runs(lambda inputs: inputs[0] * 2, [[x]], runs=20, warmup=3)
    assert stats.runs == 20 and stats.median_ms > 0


@pytest.mark.gpu
def test_real_cuda_profile_names_the_kernels() -> None:
    backend = get_backend("cuda")
    x = torch.randn(1 << 20, device=backend.device())
    rows = backend.profile_kernels(lambda inputs: (inputs[0] * 2).sum(), [x], runs=3)
    assert rows and all(r["device_us"] > 0 for r in rows)
    assert sum(r["calls"] for r in rows) >= 2  # the multiply and the reduction, per call


def test_backends_without_a_profiler_give_none() -> None:
    assert get_backend("cpu").profile_kernels(lambda inputs: inputs[0] * 2, [torch.ones(3)]) is None
