"""Scan family: inclusive cumulative sum/product along one dim, chunked with a carried prefix.

A program owns ``BLOCK_K`` rows and walks the scanned dim in ``BLOCK_R`` chunks: each chunk is
scanned with ``tl.cumsum``/``tl.associative_scan`` and offset by the running total of the chunks
before it. Reversed scans come from reversed loads (``flip`` folded into the addressing).
Risky knob: ``mode="one_pass"`` scans each chunk independently (no carry): right only when the
scanned dim fits in one ``BLOCK_R`` chunk.
"""

from __future__ import annotations

from evokernel.agent.offline.ir import Load, ScanKernel, operands
from evokernel.agent.offline.templates.common import (
    Emitter,
    Operands,
    ctype,
    decompose,
    indent,
    jit_kernel,
    literal,
    load_offset,
    size_guard,
    stride_args,
    stride_params,
    tl_type,
    torch_dtype,
)

__all__ = ["render"]


def render(name: str, k: ScanKernel, out_dtypes: list[str], config: dict) -> tuple[str, str, list[str]]:
    """Kernel source, launcher source and call arguments for one scan instance."""
    loads, scalars = operands(k)
    ops = Operands(loads, scalars)
    R, D = k.rank, k.dim
    K = [d for d in range(R) if d != D]
    kname, lname = f"_evk_k_{name}", f"_evk_launch_{name}"
    sizes = [f"S{d}" for d in range(R)]
    carry = config.get("mode", "loop") != "one_pass"
    act = ctype(k.acc_dtype)

    def coord(d: int) -> str:
        d = d if d >= 0 else R + d
        return "ridx[None, :]" if d == D else f"kc{d}[:, None]"

    body = [
        "pid = tl.program_id(0).to(tl.int64)",
        "kidx = pid * BLOCK_K + tl.arange(0, BLOCK_K)",
        "kmask = kidx < NK",
        *decompose("kidx", [sizes[d] for d in K], [f"kc{d}" for d in K]),
        "kout = " + (" + ".join(f"kc{d} * cs{d}" for d in K) or "tl.zeros([BLOCK_K], tl.int64)"),
        f"carry = tl.full([BLOCK_K], {literal(0 if k.op == 'sum' else 1, act)}, {tl_type(act)})",
        "for r0 in range(0, NR, BLOCK_R):",
    ]

    def load(ld: Load) -> str:
        j = ops.index(ld)
        off = load_offset(ops, ld, R, coord, lambda d: sizes[d], em)
        return em._emit(f"tl.load(p{j} + {off}, mask=mask, other=0)")

    em = Emitter(load, coord=coord, scalar=ops.scalar, stat=lambda i: ("y", act), prefix="v")
    code, ct, lit = em.value(k.expr)
    x = em.cast((code, ct, lit), act)
    pre = list(em.lines)
    em.lines = []
    stores = []
    for o, (out, dt) in enumerate(zip(k.outputs, out_dtypes)):
        c, _, _ = em.value(out)
        target = ctype(dt, compute=False)
        stores.append(
            f"tl.store(out{o} + kout[:, None] + ridx[None, :] * cs{D}, ({c}).to({tl_type(target)}), mask=mask)"
        )
    neutral = literal(0 if k.op == "sum" else 1, act)
    if k.op == "sum":
        scan = ["cs = tl.cumsum(x, 1)", "y = cs + carry[:, None]"]
        upd = "carry = carry + tl.sum(x, 1)"
    else:
        scan = ["cs = tl.cumprod(x, 1)", "y = cs * carry[:, None]"]
        upd = "carry = carry * tl.reduce(x, 1, _evk_mul)"
    inner = [
        "ridx = r0 + tl.arange(0, BLOCK_R)",
        "mask = kmask[:, None] & (ridx[None, :] < NR)",
        *pre,
        f"x = tl.where(mask, {x}, {neutral})",
        *scan,
        *em.lines,
        *stores,
    ]
    if carry:
        inner.append(upd)
    body += indent(inner)
    nouts = len(k.outputs)
    params = (
        [f"p{j}" for j in range(len(loads))]
        + [f"out{o}" for o in range(nouts)]
        + [ops.scalar(s) for s in scalars]
        + ["NK", "NR"]
        + sizes
        + stride_params(ops, R)
        + [f"cs{d}" for d in range(R)]
        + ["BLOCK_K: tl.constexpr", "BLOCK_R: tl.constexpr"]
    )
    kernel = jit_kernel(kname, params, body)
    full_vars = ops.broadcast_tensors(loads)
    lines = [
        f"shape = _evk_bshape({', '.join(t + '.shape' for t in full_vars)})",
        f"sizes = _evk_pad(shape, {R})",
        f"NK = _evk_numel([sizes[d] for d in {K!r}])",
        f"NR = sizes[{D}]",
    ]
    for o, dt in enumerate(out_dtypes):
        lines.append(f"out{o} = torch.empty(sizes, dtype={torch_dtype(dt)}, device={ops.device()})")
    outs = ", ".join(f"out{o}" for o in range(nouts)) + ("," if nouts == 1 else "")
    lines += ["if NK * NR == 0:", f"    return {outs}"]
    st_lines, st_args = stride_args(ops, R, "sizes")
    lines += st_lines
    bk, br = int(config["BLOCK_K"]), int(config["BLOCK_R"])
    args = (
        [ops.tensor(ld) for ld in loads]
        + [f"out{o}" for o in range(nouts)]
        + [ops.scalar(s) for s in scalars]
        + ["NK", "NR", "*sizes"]
        + st_args
        + ["*_evk_cstrides(sizes)", f"BLOCK_K={bk}", f"BLOCK_R={br}", f"num_warps={int(config.get('num_warps', 4))}"]
    )
    if config.get("mode", "loop") == "one_pass":
        lines += size_guard(f"NR > {br}", "this kernel scans each row in one chunk of {} elements (a one_pass "
                            "configuration); rows of {} elements need the carried loop", f"{br}, NR")
    lines.append(f"grid = (triton.cdiv(NK, {bk}),)")
    lines.append(f"{kname}[grid]({', '.join(args)})")
    lines.append(f"return {outs}")
    launcher = "\n".join([f"def {lname}({', '.join(ops.launcher_params())}):", *indent(lines)]) + "\n"
    return kernel, launcher, ops.call_args()
