"""Targets the verifier runs candidates on: ``cpu`` (Triton interpreter), ``cuda``, ``rocm``, ``npu``.

``get_backend("auto")`` picks the device that exists (CUDA, then ROCm, then NPU, else the CPU).
``get_backend("package.module:Class")`` loads an out-of-tree Backend subclass (workers import the
same path, so it must be importable from the worker's ``sys.path``).
"""

from __future__ import annotations

from evokernel.backends.base import Backend, DeviceBackend, DeviceFault, TimingStats, summarize
from evokernel.errors import UserError

__all__ = [
    "Backend",
    "DeviceBackend",
    "DeviceFault",
    "TimingStats",
    "summarize",
    "BACKEND_NAMES",
    "get_backend",
    "detect_backend",
]

BACKEND_NAMES = ("cpu", "cuda", "rocm", "npu")

_HINTS = {
    "cuda": "no NVIDIA GPU is visible to torch (torch.cuda.is_available() is False, or this torch is a ROCm build)",
    "rocm": "no AMD GPU is visible to a ROCm build of torch",
    "npu": "torch_npu is not installed or sees no Ascend NPU",
}


def _load_plugin(spec: str) -> Backend:
    """``package.module:Class`` -> an instance of that Backend subclass (out-of-tree targets, test doubles)."""
    import importlib

    module_name, _, class_name = spec.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise UserError(f"backend {spec!r}: cannot import {class_name} from {module_name} ({exc})") from exc
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise UserError(f"backend {spec!r}: {class_name} is not a subclass of evokernel.backends.Backend")
    backend = cls()
    backend.spec = spec
    return backend


def _make(name: str) -> Backend:
    if ":" in name:
        return _load_plugin(name)
    if name == "cpu":
        from evokernel.backends.cpu import CpuBackend

        return CpuBackend()
    if name in ("cuda", "rocm"):
        from evokernel.backends.cuda import CudaBackend

        return CudaBackend(name)
    if name == "npu":
        from evokernel.backends.npu import NpuBackend

        return NpuBackend()
    raise UserError(f"unknown backend {name!r}; choose auto, {', '.join(BACKEND_NAMES)}")


def detect_backend() -> str:
    """The name of the best backend this machine has."""
    for name in ("cuda", "rocm", "npu"):
        try:
            if _make(name).is_available():
                return name
        except Exception:  # a broken driver stack is "not available", not a crash
            continue
    return "cpu"


def get_backend(name: str = "auto") -> Backend:
    """The backend called ``name`` ("auto" detects); UserError when that device is not here."""
    chosen = detect_backend() if name == "auto" else name
    backend = _make(chosen)
    if chosen != "cpu" and not backend.is_available():
        hint = _HINTS.get(chosen, "its device is not available")
        raise UserError(f"backend {chosen}: {hint}; use --backend cpu (interpreter) or auto")
    return backend
