"""Huawei Ascend NPUs: triton-ascend kernels launched on ``torch_npu`` tensors (device ``npu``).

Written against the public torch_npu API (``torch.npu.Event``, ``torch.npu.synchronize``,
``torch.npu.is_available``); triton-ascend keeps Triton's ``kernel[grid](...)`` launch API. Tested
here with a fake device module only: no NPU was available when this was written.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from evokernel.backends.base import DeviceBackend

__all__ = ["NpuBackend"]


class NpuBackend(DeviceBackend):
    """Ascend NPU through torch_npu; workers are spawned fresh."""

    name = "npu"
    device_type = "npu"
    _FAULTS = (
        ("aicore exception", "npu_aicore_exception"),
        ("aiv exception", "npu_aicore_exception"),
        ("memory access violation", "npu_memory_access_violation"),
        ("aclrtsynchronize", "npu_sync_failure"),
        ("ez9999", "npu_kernel_error"),
        ("ee9999", "npu_kernel_error"),
    )

    def __init__(self, module: Any | None = None) -> None:
        super().__init__(module)

    def module(self) -> Any:
        if self._module is None:
            import torch
            import torch_npu  # noqa: F401  (registers torch.npu)

            self._module = torch.npu  # type: ignore[attr-defined]
        return self._module

    def is_available(self) -> bool:
        if self._module is None and importlib.util.find_spec("torch_npu") is None:
            return False
        try:
            return bool(self.module().is_available())
        except Exception:
            return False

    def prepare_worker(self) -> None:
        mod = self.module()
        mod.set_device(0)
