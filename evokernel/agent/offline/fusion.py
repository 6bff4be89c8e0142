"""Configuration-dependent fusion of a lowered plan.

Lowering already inlines single-use pointwise chains into their consumer (prologues). Two more
fusions merge whole launches, each switched by the ``fuse`` knob of the producing family:

* epilogue fusion: an elementwise launch that is the only reader of a matmul / reduction / row /
  scan / window output of the same shape is folded into that launch (e.g. bias + GELU after a
  matmul, ``+ eps`` and ``sqrt`` after a mean) -- one store instead of a store and a reload;
* row fusion (family ``norm``): a keepdim reduction whose only reader is an elementwise launch
  over the reduced input's shape (``x / rms(x) * w``, ``x / ||x||``) becomes one row kernel that
  computes the statistic and the normalized output in the same program.

Both are always correct; whether they pay off depends on the shapes, which is why they are knobs.
"""

from __future__ import annotations

import copy
import re
from typing import Any, Callable

from evokernel.agent.offline.ir import (
    ConvKernel,
    Coord,
    ElementwiseKernel,
    Expr,
    KernelStep,
    Load,
    MatmulKernel,
    Op,
    Plan,
    RowKernel,
    ScanKernel,
    ShapeStep,
    TorchStep,
    ViewStep,
    WindowKernel,
    operands,
    walk,
)

__all__ = ["fuse", "substitute", "candidate_families"]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def substitute(expr: Expr, fn: Callable[[Expr], Expr | None]) -> Expr:
    """Rebuild an expression DAG, replacing every node for which ``fn`` returns a new node."""
    memo: dict[int, Expr] = {}

    def go(e: Any) -> Any:
        if not isinstance(e, Expr):
            return e
        if id(e) in memo:
            return memo[id(e)]
        rep = fn(e)
        if rep is None:
            if isinstance(e, Op):
                args = tuple(go(a) for a in e.args)
                rep = e if all(a is b for a, b in zip(args, e.args)) else Op(e.op, args, e.dtype, dict(e.params))
            elif isinstance(e, Load) and e.gather is not None:
                idx = tuple((d, go(x)) for d, x in e.gather)
                same = all(a[1] is b[1] for a, b in zip(idx, e.gather))
                rep = e if same else Load(e.var, e.dtype, e.space, e.flip, idx)
            else:
                rep = e
        memo[id(e)] = rep
        return rep

    return go(expr)


def _refs(step: Any) -> set[str]:
    """Forward variables a step reads."""
    out: set[str] = set()
    if isinstance(step, KernelStep):
        loads, scalars = operands(step.kernel)
        out |= {ld.var for ld in loads}
        for s in scalars:
            out |= set(_IDENT.findall(s.expr))
        k = step.kernel
        if isinstance(k, MatmulKernel):
            out |= {k.a_var, k.b_var}
        if isinstance(k, WindowKernel):
            out.add(k.x_var)
        if isinstance(k, ConvKernel):
            out |= {k.x_var, k.w_var}
        if getattr(k, "shape", None):
            for s in k.shape:
                out |= set(_IDENT.findall(s))
    elif isinstance(step, (ShapeStep, ViewStep, TorchStep)):
        out |= set(_IDENT.findall(step.expr))
    return out


def _output_vars(out: Any) -> set[str]:
    if isinstance(out, str):
        return {out}
    if isinstance(out, (list, tuple)):
        return set().union(*(_output_vars(o) for o in out)) if out else set()
    return set()


def _sole_reader(steps: list[Any], i: int, var: str, plan_outputs: set[str]) -> int | None:
    if var in plan_outputs:
        return None
    readers = [j for j, s in enumerate(steps) if j != i and var in _refs(s)]
    return readers[0] if len(readers) == 1 else None


def _plain_loads_only(kernel: ElementwiseKernel, var: str) -> bool:
    for root in kernel.outputs:
        for n in walk(root):
            if isinstance(n, Load) and n.var == var and (n.flip or n.gather is not None or n.space != "full"):
                return False
    return True


def _elementwise_consumer(steps: list[Any], i: int, outs: set[str], shape: Any) -> int | None:
    """Index of the single later elementwise step that is the only reader of step i's output, over the
    same shape and reading it plainly (no flip, gather or other space); None when there is none."""
    v = steps[i].outputs[0]
    j = _sole_reader(steps, i, v, outs)
    if j is None or j < i:
        return None
    c = steps[j]
    if not (isinstance(c, KernelStep) and isinstance(c.kernel, ElementwiseKernel) and len(c.outputs) == 1):
        return None
    ck = c.kernel
    if ck.shape is not None or tuple(c.out_shapes[0]) != tuple(shape) or not _plain_loads_only(ck, v):
        return None
    return j


def _has_coord(kernel: ElementwiseKernel) -> bool:
    return any(isinstance(n, Coord) for root in kernel.outputs for n in walk(root))


def _epilogue(steps: list[Any], plan: Plan, config: dict[str, dict[str, Any]]) -> bool:
    outs = _output_vars(plan.output)
    for i, p in enumerate(steps):
        if not isinstance(p, KernelStep) or len(p.outputs) != 1:
            continue
        k = p.kernel
        if not isinstance(k, (RowKernel, MatmulKernel, ScanKernel, WindowKernel, ConvKernel)):
            continue
        if not config.get(k.family, {}).get("fuse", True):
            continue
        j = _elementwise_consumer(steps, i, outs, p.out_shapes[0])
        if j is None:
            continue
        v, c = p.outputs[0], steps[j]
        ck = c.kernel
        if _has_coord(ck) and not (
            isinstance(k, (MatmulKernel, ConvKernel)) or (isinstance(k, RowKernel) and k.kind == "row")
        ):
            continue
        produced = k.outputs[0]
        space = "out" if isinstance(k, RowKernel) and k.kind == "reduce" else "full"

        def swap(e: Expr, v: str = v, produced: Expr = produced, space: str = space) -> Expr | None:
            if isinstance(e, Load) and e.var == v:
                return produced
            if isinstance(e, Load) and space == "out" and e.space != "out" and e.gather is None and not e.flip:
                return Load(e.var, e.dtype, "out")
            return None

        merged = substitute(ck.outputs[0], swap)
        nk = copy.copy(k)
        nk.outputs = [merged]
        new = KernelStep(nk, list(c.outputs), list(c.out_dtypes), list(c.out_shapes), ops=p.ops + c.ops)
        steps[j] = new
        del steps[i]
        return True
    return False


def _rows(steps: list[Any], plan: Plan, config: dict[str, dict[str, Any]]) -> bool:
    if not config.get("norm", {}).get("fuse", True):
        return False
    outs = _output_vars(plan.output)
    for i, p in enumerate(steps):
        if not isinstance(p, KernelStep) or len(p.outputs) != 1:
            continue
        k = p.kernel
        if not (isinstance(k, RowKernel) and k.kind == "reduce" and k.keepdim and k.shape is None):
            continue
        space_shape = k.space_shape
        if space_shape is None:
            continue
        j = _elementwise_consumer(steps, i, outs, space_shape)
        if j is None:
            continue
        v, c = p.outputs[0], steps[j]
        ck = c.kernel
        if any(s.op in ("argmax", "argmin") for s in k.stats):
            continue

        def to_full(e: Expr) -> Expr | None:
            if isinstance(e, Load) and e.space == "out":
                return Load(e.var, e.dtype, "full", e.flip, e.gather)
            return None

        stat_value = substitute(k.outputs[0], to_full)

        def swap(e: Expr, v: str = v, stat_value: Expr = stat_value) -> Expr | None:
            return stat_value if isinstance(e, Load) and e.var == v else None

        merged = substitute(ck.outputs[0], swap)
        nk = RowKernel(
            kind="row", rank=k.rank, red_dims=k.red_dims, keepdim=True, stats=k.stats, outputs=[merged],
            online=k.online, shape=None, family="norm", space_shape=space_shape,
        )  # fmt: skip
        steps[j] = KernelStep(nk, list(c.outputs), list(c.out_dtypes), list(c.out_shapes), ops=p.ops + c.ops)
        del steps[i]
        return True
    return False


def candidate_families(plan: Plan) -> list[str]:
    """Families a plan may use once fused: its own, plus "norm" when a row fusion is possible."""
    fams = list(plan.families)
    if "norm" not in fams and any(
        isinstance(s.kernel, RowKernel) and s.kernel.kind == "reduce" and s.kernel.keepdim for s in plan.kernels
    ):
        fams.append("norm")
    return fams


def fuse(plan: Plan, config: dict[str, dict[str, Any]]) -> Plan:
    """Return a copy of the plan with epilogue and row fusions applied where the configuration allows."""
    steps = list(plan.steps)
    changed = True
    while changed:
        changed = _epilogue(steps, plan, config) or _rows(steps, plan, config)
    new = copy.copy(plan)
    new.steps = steps
    return new
