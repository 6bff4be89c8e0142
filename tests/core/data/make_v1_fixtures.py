"""Writes the format-version-1 fixtures (run once, with a build whose saved format is version 1).

Each fixture is an index file plus a JSON file of what loading it must give. The files are kept
as they are: every later build must load them (tests/core/test_persistence.py).
Usage: python tests/core/data/make_v1_fixtures.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from evokernel import _core

HERE = Path(__file__).parent


def build(name: str, dim: int, fp16: bool) -> None:
    index = _core.ExperienceIndex(dim, fp16=fp16, reward_beta=0.1, reward_std_floor=0.2,
                                  reward_warmup=3)
    ids = np.array([5, 2, 900, 41, 7, 2**40], dtype=np.int64)
    vectors = (np.arange(len(ids) * dim, dtype=np.float32).reshape(len(ids), dim) % 7 - 3.0)
    vectors[:, 0] += 0.5  # no zero rows
    tags = np.array([0, 1, 2, 3, 0xFFFFFFFF, 6], dtype=np.uint32)
    index.add(ids, vectors, tags)
    index.remove([41])  # the last row moves into its place
    kept = index.ids()
    index.set_q(kept, _core.DRAFT, np.linspace(-1, 1, len(kept)), np.arange(len(kept)) + 1)
    index.set_q(kept, _core.REFINE, np.linspace(0.5, -0.25, len(kept)), np.arange(len(kept)) * 3)
    for r in (1.0, -1.0, 0.5, 0.25):
        index.normalize_reward(_core.REFINE, r)
    index.set_reward_stats(_core.DRAFT, 2, -0.5, 0.25)
    index.save(HERE / f"{name}.evkidx")
    expected = {
        "dim": dim, "fp16": fp16, "reward_beta": 0.1, "reward_std_floor": 0.2, "reward_warmup": 3,
        "ids": kept.tolist(),
        "tags": [index.tag(int(i)) for i in kept],
        "vectors": [index.vector(int(i)).tolist() for i in kept],
        "q": [index.get_q(kept, s).tolist() for s in (_core.DRAFT, _core.REFINE)],
        "visits": [index.get_visits(kept, s).tolist() for s in (_core.DRAFT, _core.REFINE)],
        "reward_stats": [list(index.reward_stats(s)) for s in (_core.DRAFT, _core.REFINE)],
    }
    (HERE / f"{name}.json").write_text(json.dumps(expected, indent=1) + "\n")


if __name__ == "__main__":
    build("index_v1_f32", 6, False)
    build("index_v1_f16", 20, True)
