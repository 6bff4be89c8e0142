"""Shared fixtures: seeded RNGs, the Triton interpreter on machines without a GPU, device markers."""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

# Must be set before litellm or triton are imported anywhere in the test session.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# Child Pythons the tests start (CLI runs, killed writers, verifier workers) run from the checkout, where
# the source tree would shadow the installed package and its compiled ``_core``: never put the working
# directory or the script's folder on their sys.path (Python >= 3.11).
os.environ["PYTHONSAFEPATH"] = "1"

import numpy as np
import pytest
import torch

HAS_CUDA = torch.cuda.is_available()
HAS_NPU = False
try:  # pragma: no cover - only on Ascend machines
    import torch_npu  # noqa: F401

    HAS_NPU = torch.npu.is_available()  # type: ignore[attr-defined]
except Exception:
    pass

if not HAS_CUDA and not HAS_NPU:
    os.environ.setdefault("TRITON_INTERPRET", "1")


# tests/ is not a package (importlib mode): make the shared fakes importable and register their fixtures.
sys.path.insert(0, str(Path(__file__).parent))
from fakes.openai_server import openai_server  # noqa: E402,F401


@pytest.fixture(autouse=True)
def _seed_everything() -> None:
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_gpu = pytest.mark.skip(reason="needs a CUDA/ROCm GPU; none on this machine")
    skip_npu = pytest.mark.skip(reason="needs an Ascend NPU with torch_npu; none on this machine")
    for item in items:
        if "gpu" in item.keywords and not HAS_CUDA:
            item.add_marker(skip_gpu)
        if "npu" in item.keywords and not HAS_NPU:
            item.add_marker(skip_npu)
