"""The CPU backend: Triton kernels run through the interpreter (TRITON_INTERPRET=1) on CPU tensors.

Correctness only: interpreted kernels are orders of magnitude slower than compiled ones, so CPU
timings are never taken and never reported as speedups.
"""

from __future__ import annotations

import platform

from evokernel.backends.base import Backend

__all__ = ["CpuBackend"]


class CpuBackend(Backend):
    """Triton interpreter on the host; workers fork from a zygote that never touches a GPU."""

    name = "cpu"
    device_type = "cpu"
    interpreter = True
    times_kernels = False
    start_method = "fork"

    def is_available(self) -> bool:
        return True

    def describe(self) -> str:
        return f"cpu ({platform.machine() or 'unknown'}, Triton interpreter)"

    def worker_env(self) -> dict[str, str]:
        # The interpreter must be on before triton is imported; one BLAS/OpenMP thread keeps the
        # zygote fork-safe (workers raise torch's thread count themselves).
        return {
            "TRITON_INTERPRET": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "CUDA_VISIBLE_DEVICES": "",
            "HIP_VISIBLE_DEVICES": "",
            "ASCEND_RT_VISIBLE_DEVICES": "",
        }
