"""NVIDIA (CUDA) and AMD (ROCm/HIP) GPUs: compiled Triton kernels, device-event timing.

Both go through ``torch.cuda`` (a ROCm build of torch exposes HIP devices there). Workers are spawned
fresh (never forked after CUDA is initialised).
"""

from __future__ import annotations

from typing import Any

from evokernel.backends.base import DeviceBackend

__all__ = ["CudaBackend"]


class CudaBackend(DeviceBackend):
    """``name`` is "cuda" or "rocm"; the device type is "cuda" for both."""

    device_type = "cuda"
    profiler_activity = "CUDA"  # ROCm builds of torch report HIP kernels under the same activity
    _FAULTS = (
        ("illegal memory access", "cuda_illegal_address"),
        ("illegal address", "cuda_illegal_address"),
        ("misaligned address", "cuda_misaligned_address"),
        ("unspecified launch failure", "cuda_launch_failure"),
        ("device-side assert", "cuda_device_assert"),
        ("illegal instruction", "cuda_illegal_instruction"),
        ("memory access fault", "hip_memory_access_fault"),
        ("hipErrorIllegalAddress".lower(), "hip_illegal_address"),
    )

    def __init__(self, name: str = "cuda", module: Any | None = None) -> None:
        if name not in ("cuda", "rocm"):
            raise ValueError(f"CudaBackend name must be 'cuda' or 'rocm', not {name!r}")
        super().__init__(module)
        self.name = name

    def is_available(self) -> bool:
        import torch

        if not torch.cuda.is_available():
            return False
        is_hip = getattr(torch.version, "hip", None) is not None
        return is_hip if self.name == "rocm" else not is_hip

    def prepare_worker(self) -> None:
        mod = self.module()
        mod.init()
        mod.set_device(0)
