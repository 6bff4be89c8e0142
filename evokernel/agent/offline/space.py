"""Configuration search spaces of the template families, with safe defaults, sampling and mutation.

Every family lists its knobs and their allowed values. Some values are *risky*: they make a
kernel faster where the problem allows it and wrong where it does not, so that which
configuration to use is something experience can teach:

* elementwise ``indexing="flat"`` addresses operands as ``index % numel`` -- wrong for
  non-contiguous operands and for broadcasting that is not along leading dims;
* reduction/softmax/norm/scan ``mode="one_pass"`` takes row statistics (or the scan) from one
  fixed ``BLOCK_R`` chunk -- wrong for rows longer than ``BLOCK_R``;
* ``acc="input"`` accumulates fp16 inputs in fp16 -- wrong (beyond tolerance) on long rows/long K;
* matmul/conv ``k_loop="even"`` iterates over whole ``BLOCK_K`` chunks only -- wrong unless the
  reduction length (K, or in_channels x kernel volume) is a multiple of ``BLOCK_K``.

On the CPU (the Triton interpreter runs every program instance in Python) small tiles are a risk
of their own: a 16x16x16 matmul or conv tile can take minutes and hit the verifier's timeout.
The defaults are safe; on the CPU they use larger tiles (``CPU_DEFAULTS``). Sampling (drafting
without memory) draws each knob uniformly, so a draft is risky with a probability that depends on
the family; mutation (refining) changes one knob to a neighbouring value and stays in the space.
"""

from __future__ import annotations

import copy
import random
from typing import Any

__all__ = [
    "SPACES",
    "DEFAULTS",
    "RISKY",
    "SIZE_BOUND",
    "CPU_DEFAULTS",
    "FAMILIES",
    "default_config",
    "config_for",
    "complete",
    "sample",
    "mutate",
    "neighbors",
    "validate",
    "is_risky",
    "size_bound",
]

_WARPS = [2, 4, 8]
_ROW = {
    "BLOCK_K": [1, 2, 4, 8, 16],
    "BLOCK_R": [64, 128, 256, 512, 1024, 2048],
    "num_warps": _WARPS,
    "mode": ["loop", "fit", "one_pass"],
    "acc": ["fp32", "input"],
    "fuse": [True, False],
}

SPACES: dict[str, dict[str, list[Any]]] = {
    "elementwise": {"BLOCK": [256, 512, 1024, 2048, 4096], "num_warps": _WARPS, "indexing": ["strided", "flat"]},
    "reduction": dict(_ROW),
    "softmax": {**_ROW, "mode": ["online", "loop", "fit", "one_pass"]},
    "norm": dict(_ROW),
    "scan": {"BLOCK_K": [1, 2, 4, 8, 16], "BLOCK_R": [64, 128, 256, 512, 1024], "num_warps": _WARPS,
             "mode": ["loop", "one_pass"], "fuse": [True, False]},
    "matmul": {
        "BLOCK_M": [16, 32, 64, 128],
        "BLOCK_N": [16, 32, 64, 128],
        "BLOCK_K": [16, 32, 64],
        "GROUP_M": [1, 4, 8],
        "num_warps": _WARPS,
        "num_stages": [1, 2, 3, 4],
        "k_loop": ["masked", "even"],
        "acc": ["fp32", "input"],
        "fuse": [True, False],
    },
    "window": {"BLOCK": [128, 256, 512, 1024], "num_warps": _WARPS, "fuse": [True, False]},
    "conv": {
        "BLOCK_M": [16, 32, 64, 128],
        "BLOCK_N": [16, 32, 64],
        "BLOCK_K": [16, 32, 64],
        "num_warps": _WARPS,
        "num_stages": [1, 2, 3],
        "k_loop": ["masked", "even"],
        "acc": ["fp32", "input"],
        "fuse": [True, False],
    },
}  # fmt: skip

DEFAULTS: dict[str, dict[str, Any]] = {
    "elementwise": {"BLOCK": 1024, "num_warps": 4, "indexing": "strided"},
    "reduction": {"BLOCK_K": 4, "BLOCK_R": 256, "num_warps": 4, "mode": "fit", "acc": "fp32", "fuse": True},
    "softmax": {"BLOCK_K": 4, "BLOCK_R": 512, "num_warps": 4, "mode": "online", "acc": "fp32", "fuse": True},
    "norm": {"BLOCK_K": 4, "BLOCK_R": 512, "num_warps": 4, "mode": "fit", "acc": "fp32", "fuse": True},
    "scan": {"BLOCK_K": 4, "BLOCK_R": 256, "num_warps": 4, "mode": "loop", "fuse": True},
    "matmul": {"BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_K": 32, "GROUP_M": 8, "num_warps": 4, "num_stages": 3,
               "k_loop": "masked", "acc": "fp32", "fuse": True},
    "window": {"BLOCK": 256, "num_warps": 4, "fuse": True},
    "conv": {"BLOCK_M": 64, "BLOCK_N": 32, "BLOCK_K": 32, "num_warps": 4, "num_stages": 2, "k_loop": "masked",
             "acc": "fp32", "fuse": True},
}  # fmt: skip

# overrides of DEFAULTS on the CPU interpreter, where fewer, larger programs run much faster
CPU_DEFAULTS: dict[str, dict[str, Any]] = {
    "elementwise": {"BLOCK": 4096},
    "reduction": {"BLOCK_K": 16},
    "softmax": {"BLOCK_K": 16, "BLOCK_R": 1024},
    "norm": {"BLOCK_K": 16, "BLOCK_R": 1024},
    "scan": {"BLOCK_K": 16, "BLOCK_R": 1024},
    "matmul": {"BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_K": 64},
    "window": {"BLOCK": 1024},
    "conv": {"BLOCK_M": 128, "BLOCK_N": 32, "BLOCK_K": 64},
}

# (family, knob) -> values that are right only for some shapes/dtypes
RISKY: dict[tuple[str, str], tuple[Any, ...]] = {
    ("elementwise", "indexing"): ("flat",),
    ("reduction", "mode"): ("one_pass",),
    ("reduction", "acc"): ("input",),
    ("softmax", "mode"): ("one_pass",),
    ("softmax", "acc"): ("input",),
    ("norm", "mode"): ("one_pass",),
    ("norm", "acc"): ("input",),
    ("scan", "mode"): ("one_pass",),
    ("matmul", "k_loop"): ("even",),
    ("matmul", "acc"): ("input",),
    ("conv", "k_loop"): ("even",),
    ("conv", "acc"): ("input",),
}

# transposed convolutions share the conv template but not its experience: a tile that is fast for a
# convolution can be slow for a transposed one (most of its taps are masked), so they are their own family
SPACES["conv_transpose"] = dict(SPACES["conv"])
DEFAULTS["conv_transpose"] = dict(DEFAULTS["conv"])
CPU_DEFAULTS["conv_transpose"] = dict(CPU_DEFAULTS["conv"])
RISKY[("conv_transpose", "k_loop")] = RISKY[("conv", "k_loop")]
RISKY[("conv_transpose", "acc")] = RISKY[("conv", "acc")]

# risky values whose correctness depends on the sizes (a row that fits one chunk, a reduction length
# that is a multiple of BLOCK_K): where the verifier checks shrunk sizes only (the CPU interpreter),
# a kernel using one could pass there and be wrong at the problem's own sizes, so drafts there avoid them
SIZE_BOUND = frozenset(
    {("reduction", "mode"), ("softmax", "mode"), ("norm", "mode"), ("scan", "mode"), ("matmul", "k_loop"),
     ("conv", "k_loop"), ("conv_transpose", "k_loop")}
)

FAMILIES = tuple(SPACES)


def default_config(family: str, backend: str | None = None) -> dict[str, Any]:
    """The safe default configuration of a family (larger tiles on the "cpu" backend)."""
    cfg = dict(DEFAULTS[family])
    if backend == "cpu":
        cfg.update(CPU_DEFAULTS.get(family, {}))
    return cfg


def config_for(family: str, config: dict[str, dict[str, Any]], backend: str | None = None) -> dict[str, Any]:
    """The configuration of one family from a multi-family config (defaults for missing knobs)."""
    return {**default_config(family, backend), **(config.get(family) or {})}


def complete(
    config: dict[str, dict[str, Any]], families: list[str], backend: str | None = None
) -> dict[str, dict[str, Any]]:
    """A copy of ``config`` with every listed family present and every knob set."""
    out = copy.deepcopy(config)
    for f in families:
        out[f] = config_for(f, out, backend)
    return out


def validate(family: str, cfg: dict[str, Any]) -> None:
    """Raise ValueError when a knob or value is not in the family's space."""
    space = SPACES[family]
    for k, v in cfg.items():
        if k not in space:
            raise ValueError(f"{family}: unknown knob {k!r}")
        if v not in space[k]:
            raise ValueError(f"{family}: {k}={v!r} is not in {space[k]}")


def is_risky(family: str, cfg: dict[str, Any]) -> list[str]:
    """Names of the knobs of ``cfg`` set to risky values."""
    return [k for k, v in cfg.items() if v in RISKY.get((family, k), ())]


def size_bound(family: str, cfg: dict[str, Any]) -> list[str]:
    """Names of the knobs of ``cfg`` set to risky values that are right only for some sizes."""
    return [k for k in is_risky(family, cfg) if (family, k) in SIZE_BOUND]


def sample(family: str, rng: random.Random, avoid: dict[str, set[Any]] | None = None) -> dict[str, Any]:
    """A configuration drawn knob by knob, uniformly (values in ``avoid[knob]`` excluded if possible)."""
    cfg = {}
    for knob, values in SPACES[family].items():
        allowed = [v for v in values if v not in (avoid or {}).get(knob, set())] or list(values)
        cfg[knob] = rng.choice(allowed)
    return cfg


def mutate(family: str, cfg: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """``cfg`` with one knob moved to a neighbouring value (numeric) or another value (categorical)."""
    options = neighbors(family, cfg)
    return rng.choice(options) if options else dict(cfg)


def neighbors(family: str, cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """Every configuration one knob step away from ``cfg`` (inside the space)."""
    space = SPACES[family]
    full = {**DEFAULTS[family], **cfg}
    out = []
    for knob, values in space.items():
        cur = full[knob]
        idx = values.index(cur) if cur in values else 0
        numeric = all(isinstance(v, int) and not isinstance(v, bool) for v in values)
        cands = (
            [values[i] for i in (idx - 1, idx + 1) if 0 <= i < len(values)]
            if numeric
            else [v for v in values if v != cur]
        )
        for v in cands:
            new = dict(full)
            new[knob] = v
            out.append(new)
    return out
