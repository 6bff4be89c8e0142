"""Input cases (trials, adversarial probes, ghost replay) and the packing of outputs for transfer.

Both the reference worker and the candidate's worker use this module; neither sees the other's
outputs. A case is a name, a kind and the inputs of one forward call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Case", "trial_inputs", "probe_inputs", "ghost_inputs", "pack_outputs", "pack_plain_outputs",
           "structure_of", "case_seed", "PROBES"]

# name -> what it does to every floating-point input tensor
PROBES = {
    "signed": "inputs multiplied by random signs",
    "scaled": "inputs multiplied by 4",
    "shifted": "inputs centred on zero and shifted by a quarter standard deviation",
}


@dataclass
class Case:
    """One forward call: inputs as produced by get_inputs (possibly transformed)."""

    name: str
    kind: str  # "trial" | "probe" | "ghost"
    seed: int
    inputs: list[Any]

    def describe(self) -> str:
        """e.g. "trial 2", "probe signed (inputs multiplied by random signs)"."""
        if self.kind == "probe":
            return f"probe {self.name.removeprefix('probe_')} ({PROBES.get(self.name.removeprefix('probe_'), '')})"
        if self.kind == "ghost":
            return "ghost replay"
        return self.name.replace("_", " ")


def case_seed(base: int, index: int, key: str = "") -> int:
    """Deterministic, well-separated seed for case ``index`` of a run seeded with ``base``.

    With a ``key`` (the verifier's secret, never given to a candidate) the seed is a keyed hash: a
    candidate that knows the scheme and ``base`` cannot draw the inputs ahead of time and precompute
    the answers, and the seed of one case says nothing about another's."""
    if key:
        import hashlib

        digest = hashlib.blake2b(f"{base}:{index}".encode(), key=key.encode()[:64], digest_size=8).digest()
        return int.from_bytes(digest, "little") % (2**31 - 1)
    return (int(base) * 1_000_003 + 7919 * (index + 1)) % (2**31 - 1)


def _seeded_inputs(module: Any, seed: int) -> list[Any]:
    import torch

    torch.manual_seed(seed)
    inputs = module.get_inputs()
    return list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]


def trial_inputs(module: Any, seed: int, trials: int, key: str = "") -> list[Case]:
    """``trials`` fresh input sets from the problem's get_inputs, each under its own seed."""
    out = []
    for i in range(trials):
        s = case_seed(seed, i, key)
        out.append(Case(f"trial_{i}", "trial", s, _seeded_inputs(module, s)))
    return out


def _transform(inputs: list[Any], name: str, seed: int) -> list[Any]:
    import torch

    gen = torch.Generator().manual_seed(seed)
    out = []
    for x in inputs:
        if not (isinstance(x, torch.Tensor) and x.is_floating_point() and x.numel() > 0):
            out.append(x)
            continue
        if name == "signed":
            signs = torch.randint(0, 2, x.shape, generator=gen).to(x.dtype) * 2 - 1
            out.append(x * signs.to(x.device))
        elif name == "scaled":
            out.append(x * 4)
        elif name == "shifted":
            xf = x.float()
            std = float(xf.std()) if x.numel() > 1 else 1.0
            out.append((xf - xf.mean() + 0.25 * (std or 1.0)).to(x.dtype))
        else:  # pragma: no cover - names come from PROBES
            raise ValueError(name)
    return out


def probe_inputs(base: Case, seed: int, key: str = "") -> list[Case]:
    """Signed, scaled and shifted variants of one trial's float inputs."""
    cases = []
    for j, name in enumerate(PROBES):
        s = case_seed(seed, 100 + j, key)
        cases.append(Case(f"probe_{name}", "probe", s, _transform(base.inputs, name, s)))
    return cases


def ghost_inputs(module: Any, seed: int, key: str = "") -> Case:
    """Fresh inputs with random signs: an output that merely copies an input cannot pass."""
    s = case_seed(seed, 500, key)
    return Case("ghost", "ghost", s, _transform(_seeded_inputs(module, s), "signed", s))


def structure_of(obj: Any) -> str:
    """A short type signature of an output: "tensor", "tuple(tensor, int)", ..."""
    import torch

    if isinstance(obj, torch.Tensor):
        return "tensor"
    if isinstance(obj, (list, tuple)):
        return f"{type(obj).__name__}({', '.join(structure_of(o) for o in obj)})"
    if obj is None:
        return "None"
    return type(obj).__name__


def _leaves(obj: Any) -> list[Any]:
    import torch

    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [leaf for o in obj for leaf in _leaves(o)]
    if isinstance(obj, (bool, int, float)) or obj is None:
        return [obj]
    return [repr(obj)[:200]]


def pack_outputs(obj: Any) -> dict[str, Any]:
    """{"structure", "leaves"} with every tensor detached, contiguous and on the CPU."""
    leaves = []
    for leaf in _leaves(obj):
        if hasattr(leaf, "detach"):
            leaf = leaf.detach().to("cpu").contiguous().clone()
        leaves.append(leaf)
    return {"structure": structure_of(obj), "leaves": leaves}


_PLAIN_SCALARS = (bool, int, float, str, type(None))


def pack_plain_outputs(obj: Any, tensor_ops: dict[str, Any] | None = None,
                       originals: list[Any] | None = None) -> dict[str, Any]:
    """``pack_outputs`` for a candidate's output, which must be made of exactly ``tuple``/``list``,
    ``torch.Tensor`` and ``bool``/``int``/``float``/``str``/``None`` (no subclasses: a subclass runs the
    candidate's code, e.g. ``__iter__`` or ``__torch_function__``, inside the harness after forward).

    Tensors are copied through the class's own methods (``tensor_ops``: detach, to, contiguous, clone,
    pre-bound before the candidate was imported), never through attributes a candidate could have set
    on the instance; ``originals`` (when given) receives the output tensors themselves. Raises TypeError
    naming the first part of another type.
    """
    import torch

    ops = tensor_ops or {name: getattr(torch.Tensor, name) for name in ("detach", "to", "contiguous", "clone")}
    leaves: list[Any] = []

    def walk(o: Any, where: str) -> str:
        t = type(o)
        if t is torch.Tensor:
            if originals is not None:
                originals.append(o)
            leaves.append(ops["clone"](ops["contiguous"](ops["to"](ops["detach"](o), "cpu"))))
            return "tensor"
        if t is tuple or t is list:
            parts = [walk(item, f"{where}[{i}]") for i, item in enumerate(o)]
            return f"{t.__name__}({', '.join(parts)})"
        if t in _PLAIN_SCALARS:
            leaves.append(repr(o)[:200] if t is str else o)  # as pack_outputs packs it
            return "None" if o is None else t.__name__
        base = next((b.__name__ for b in (torch.Tensor, tuple, list) if isinstance(o, b)), None)
        kind = f"a {base} subclass ({t.__name__})" if base else f"a {t.__name__}"
        raise TypeError(f"{where} is {kind}; return plain torch.Tensor objects "
                        "(in a plain tuple or list where the reference returns several)")

    structure = walk(obj, "output")
    return {"structure": structure, "leaves": leaves}
