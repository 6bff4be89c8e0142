"""The knowledge pack shipped with the package."""

from __future__ import annotations

from evokernel.agent.knowledge import load_notes

BACKENDS = {"any", "cpu", "cuda", "rocm", "npu"}


def test_pack_covers_every_backend_and_the_refinement_practices() -> None:
    notes = load_notes()
    assert {n.backend for n in notes} == BACKENDS
    names = {n.name for n in notes}
    for topic in ("matmul_tiling", "reductions", "softmax", "norms", "elementwise_fusion", "memory_access",
                  "autotuning", "ascend_npu", "cpu_interpreter", "cuda_gpu", "rocm_gpu"):
        assert topic in names
    for n in notes:
        assert n.title and n.keywords and len(n.text) > 200
