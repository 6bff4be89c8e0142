"""Elementwise family: one fused kernel for a DAG of pointwise ops, with broadcasting.

Each program handles ``BLOCK`` consecutive elements of the (contiguous) output. Operands are read
through their broadcast strides, so broadcast and non-contiguous inputs need no copies; an
operand whose strides equal the output's takes the linear index directly (a compile-time flag
computed on the host, hence always correct). Configuration: ``BLOCK``, ``num_warps`` and
``indexing``: "strided" (safe) or "flat", an aggressive fast path that addresses every operand
as ``index % numel(operand)`` -- right for contiguous operands broadcast along leading dims only,
wrong for non-contiguous operands or broadcasting inside (e.g. a per-channel [C, 1, 1] bias).
"""

from __future__ import annotations

from evokernel.agent.offline.ir import ElementwiseKernel, operands
from evokernel.agent.offline.templates.common import (
    Emitter,
    Operands,
    ctype,
    decompose,
    indent,
    jit_kernel,
    load_offset,
    stride_args,
    stride_params,
    tl_type,
    torch_dtype,
)

__all__ = ["render"]


def render(name: str, k: ElementwiseKernel, out_dtypes: list[str], config: dict) -> tuple[str, str, list[str]]:
    """Kernel source, launcher source and the launcher's call arguments for one instance."""
    loads, scalars = operands(k)
    ops = Operands(loads, scalars, k.shape)
    rank = k.rank
    flat = config.get("indexing", "strided") == "flat"
    block = int(config["BLOCK"])
    warps = int(config.get("num_warps", 4))
    kname, lname = f"_evk_k_{name}", f"_evk_launch_{name}"

    coords = [f"c{d}" for d in range(rank)]
    sizes = [f"S{d}" for d in range(rank)]
    need_coords = False

    def coord(d: int) -> str:
        nonlocal need_coords
        need_coords = True
        return coords[d if d >= 0 else rank + d]

    body: list[str] = []
    offsets: dict[int, str] = {}

    def load(ld) -> str:  # noqa: ANN001
        j = ops.index(ld)
        if j not in offsets:
            if ld.gather is not None or ld.flip:
                off = load_offset(ops, ld, rank, coord, lambda d: sizes[d], em)
                em.lines.append(f"off{j} = {off}")
            elif flat:
                em.lines.append(f"off{j} = idx % nel{j}")
            else:
                strided = load_offset(ops, ld, rank, coord, lambda d: sizes[d], None)
                em.lines.append(f"if C{j}:")
                em.lines.append(f"    off{j} = idx")
                em.lines.append("else:")
                em.lines.append(f"    off{j} = {strided}")
            offsets[j] = f"off{j}"
        return em._emit(f"tl.load(p{j} + off{j}, mask=mask, other=0)")

    em = Emitter(load, coord=coord, scalar=ops.scalar)
    stores = []
    for i, (out, dt) in enumerate(zip(k.outputs, out_dtypes)):
        code, ct, lit = em.value(out)
        target = ctype(dt, compute=False)
        if lit:
            code = f"tl.full([BLOCK], {code}, {tl_type(target)})"
        stores.append(f"tl.store(out{i} + idx, ({code}).to({tl_type(target)}), mask=mask)")

    body = [
        "pid = tl.program_id(0).to(tl.int64)",
        "idx = pid * BLOCK + tl.arange(0, BLOCK)",
        "mask = idx < N",
    ]
    if need_coords:
        body += decompose("idx", sizes, coords)
    body += em.lines + stores

    nouts = len(k.outputs)
    params = (
        [f"p{j}" for j in range(len(loads))]
        + [f"out{i}" for i in range(nouts)]
        + [ops.scalar(s) for s in scalars]
        + ["N"]
        + sizes
        + stride_params(ops, rank)
        + [f"nel{j}" for j in range(len(loads))]
        + [f"C{j}: tl.constexpr" for j in range(len(loads))]
        + ["BLOCK: tl.constexpr"]
    )
    kernel = jit_kernel(kname, params, body)

    # ---- launcher -------------------------------------------------------------------------
    lp = ops.launcher_params()
    lines = []
    shape_vars = ops.broadcast_tensors(loads)
    base = f"_evk_bshape({', '.join(t + '.shape' for t in shape_vars)})"
    if k.shape is not None:
        lines.append(f"shape = _evk_expand({base}, [{', '.join(ops.shape_params())}])")
    else:
        lines.append(f"shape = {base}")
    dev = ops.device()
    for i, dt in enumerate(out_dtypes):
        lines.append(f"out{i} = torch.empty(shape, dtype={torch_dtype(dt)}, device={dev})")
    outs = ", ".join(f"out{i}" for i in range(nouts)) + ("," if nouts == 1 else "")
    lines.append("n = _evk_numel(shape)")
    lines.append("if n == 0:")
    lines.append(f"    return {outs}")
    lines.append(f"sizes = _evk_pad(shape, {rank})")
    st_lines, st_args = stride_args(ops, rank, "sizes")
    lines += st_lines
    lines.append("cs = _evk_cstrides(sizes)")
    flags = []
    for j in range(len(loads)):
        lines.append(f"c{j} = all(a == b or s == 1 for a, b, s in zip(st{j}, cs, sizes))")
        flags.append(f"C{j}=c{j}")
    nels = [f"{ops.tensor(ld)}.numel()" for ld in loads]
    args = (
        [ops.tensor(ld) for ld in loads]
        + [f"out{i}" for i in range(nouts)]
        + [ops.scalar(s) for s in scalars]
        + ["n", "*sizes"]
        + st_args
        + nels
        + flags
        + [f"BLOCK={block}", f"num_warps={warps}"]
    )
    lines.append(f"grid = (triton.cdiv(n, {block}),)")
    lines.append(f"{kname}[grid]({', '.join(args)})")
    lines.append(f"return {outs}")
    launcher = "\n".join([f"def {lname}({', '.join(lp)}):", *indent(lines)]) + "\n"
    return kernel, launcher, ops.call_args()
