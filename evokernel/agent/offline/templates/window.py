"""Window family: max/avg pooling over the trailing ``nd`` dims (1d/2d/3d), any leading dims.

A program computes ``BLOCK`` consecutive output elements; the window (a compile-time size) is
unrolled with ``tl.static_range``, padding handled by masks (max: -inf, avg: excluded or counted
per ``count_include_pad``). The input is read through its strides. Any elementwise epilogue is
applied before the store.
"""

from __future__ import annotations

from evokernel.agent.offline.ir import Load, WindowKernel, operands
from evokernel.agent.offline.templates.common import (
    Emitter,
    Operands,
    ctype,
    decompose,
    indent,
    jit_kernel,
    stride_args,
    stride_params,
    tl_type,
    torch_dtype,
)

__all__ = ["render"]


def render(name: str, k: WindowKernel, out_dtypes: list[str], config: dict) -> tuple[str, str, list[str]]:
    """Kernel source, launcher source and call arguments for one pooling instance."""
    loads, scalars = operands(k)
    ops = Operands(loads, scalars)
    nd = k.nd
    kname, lname = f"_evk_k_{name}", f"_evk_launch_{name}"
    block = int(config.get("BLOCK", 256))
    # output coordinates: leading dims flattened to one ("lead"), then the nd window dims
    body = [
        "pid = tl.program_id(0).to(tl.int64)",
        "idx = pid * BLOCK + tl.arange(0, BLOCK)",
        "mask = idx < NOUT",
        *decompose("idx", ["NLEAD"] + [f"O{d}" for d in range(nd)], ["lead"] + [f"o{d}" for d in range(nd)]),
        *decompose("lead", [f"L{j}" for j in range(NLEAD_MAX)], [f"l{j}" for j in range(NLEAD_MAX)]),
        "xbase = " + " + ".join(f"l{j} * xl{j}" for j in range(NLEAD_MAX)),
    ]
    if k.op == "max":
        body.append('acc = tl.full([BLOCK], float("-inf"), tl.float32)')
    else:
        body.append("acc = tl.zeros([BLOCK], tl.float32)")
        body.append("cnt = tl.zeros([BLOCK], tl.float32)")
    loops: list[str] = []
    depth = 0
    for d in range(nd):
        loops.append("    " * depth + f"for w{d} in tl.static_range({k.kernel[d]}):")
        depth += 1
        loops.append("    " * depth + f"i{d} = o{d} * {k.stride[d]} - {k.padding[d]} + w{d} * {k.dilation[d]}")
    pad = "    " * depth
    valid = " & ".join(f"(i{d} >= 0) & (i{d} < I{d})" for d in range(nd))
    off = " + ".join(f"i{d} * xs{d}" for d in range(nd))
    loops.append(pad + f"ok = mask & {valid}")
    other = 'float("-inf")' if k.op == "max" else "0.0"
    loops.append(pad + f"v = tl.load(x_ptr + xbase + {off}, mask=ok, other={other}).to(tl.float32)")
    if k.op == "max":
        loops.append(pad + "acc = tl.maximum(acc, v)")
    else:
        loops.append(pad + "acc = acc + v")
    body += loops
    if k.op == "avg":
        if k.divisor:
            body.append(f"acc = acc / {float(k.divisor)}")
        else:
            cnt = []
            for d in range(nd):
                body.append(f"st{d}_ = o{d} * {k.stride[d]} - {k.padding[d]}")
                body.append(f"en{d}_ = tl.minimum(st{d}_ + {k.kernel[d]}, I{d} + {k.padding[d]})")
                if k.count_include_pad:
                    cnt.append(f"(en{d}_ - st{d}_)")
                else:
                    cnt.append(f"(tl.minimum(en{d}_, I{d}) - tl.maximum(st{d}_, 0))")
            body.append(f"acc = acc / ({' * '.join(cnt)}).to(tl.float32)")

    def coord(d: int) -> str:
        raise AssertionError("coordinates in a pooling epilogue")

    def load(ld: Load) -> str:
        j = ops.index(ld)
        return em._emit(
            f"tl.load(p{j} + " + " + ".join(f"oc{d} * st{j}_{d}" for d in range(RANK_OUT)) + ", mask=mask, other=0)"
        )

    # epilogue loads are indexed in the output space (rank = leading rank + nd)
    RANK_OUT = NLEAD_MAX + nd
    em = Emitter(load, stat=lambda i: ("acc", "fp32"), scalar=ops.scalar, prefix="e")
    stores = []
    for o, (out, dt) in enumerate(zip(k.outputs, out_dtypes)):
        code, _, _ = em.value(out)
        stores.append(f"tl.store(out{o} + idx, ({code}).to({tl_type(ctype(dt, compute=False))}), mask=mask)")
    if loads:
        body += [f"oc{j} = l{j}" for j in range(NLEAD_MAX)] + [f"oc{NLEAD_MAX + d} = o{d}" for d in range(nd)]
    body += em.lines + stores
    nouts = len(k.outputs)
    params = (
        ["x_ptr"]
        + [f"p{j}" for j in range(len(loads))]
        + [f"out{o}" for o in range(nouts)]
        + [ops.scalar(s) for s in scalars]
        + ["NOUT", "NLEAD"]
        + [f"L{j}" for j in range(NLEAD_MAX)]
        + [f"xl{j}" for j in range(NLEAD_MAX)]
        + [f"O{d}" for d in range(nd)]
        + [f"I{d}" for d in range(nd)]
        + [f"xs{d}" for d in range(nd)]
        + stride_params(ops, RANK_OUT)
        + ["BLOCK: tl.constexpr"]
    )
    kernel = jit_kernel(kname, params, body)
    lines = [
        f"lead = tuple(X.shape[:-{nd}])",
        f"if len(lead) > {NLEAD_MAX}:",
        f"    lead = (_evk_numel(lead[:len(lead) - {NLEAD_MAX - 1}]),) + lead[len(lead) - {NLEAD_MAX - 1}:]",
        f"lead = _evk_pad(lead, {NLEAD_MAX})",
        "xst = list(X.stride())",
        f"xl = _evk_pad_strides(X, {nd}, {NLEAD_MAX})",
        f"ins = list(X.shape[-{nd}:])",
        f"outs_sp = [_evk_pool_out(ins[d], ks, s, p, dl, {k.ceil_mode}) for d, (ks, s, p, dl) in enumerate(zip({k.kernel!r}, {k.stride!r}, {k.padding!r}, {k.dilation!r}))]",
        f"out_shape = tuple(X.shape[:-{nd}]) + tuple(outs_sp)",
    ]
    for o, dt in enumerate(out_dtypes):
        lines.append(f"out{o} = torch.empty(out_shape, dtype={torch_dtype(dt)}, device=X.device)")
    outs = ", ".join(f"out{o}" for o in range(nouts)) + ("," if nouts == 1 else "")
    lines += ["n = _evk_numel(out_shape)", "if n == 0:", f"    return {outs}"]
    lines.append("full = tuple(lead) + tuple(outs_sp)")
    st_lines, st_args = stride_args(ops, RANK_OUT, "full")
    # epilogue operands broadcast against the real output shape, then padded into `full`
    st_lines = [ln.replace(", full)", ", out_shape)") for ln in st_lines]
    lines += st_lines
    for j in range(len(loads)):
        lines.append(f"st{j} = [0] * ({RANK_OUT} - len(st{j})) + list(st{j})")
    args = (
        ["X"]
        + [ops.tensor(ld) for ld in loads]
        + [f"out{o}" for o in range(nouts)]
        + [ops.scalar(s) for s in scalars]
        + ["n", "_evk_numel(lead)", "*lead", "*xl", "*outs_sp", "*ins", f"*xst[-{nd}:]"]
        + st_args
        + [f"BLOCK={block}", f"num_warps={int(config.get('num_warps', 4))}"]
    )
    lines.append(f"grid = (triton.cdiv(n, {block}),)")
    lines.append(f"{kname}[grid]({', '.join(args)})")
    lines.append(f"return {outs}")
    lparams = ["X", *ops.launcher_params()]
    if not ops.vars:
        lparams.remove("dev")
    launcher = "\n".join([f"def {lname}({', '.join(lparams)}):", *indent(lines)]) + "\n"
    call = [k.x_var] + [a for a in ops.call_args() if a != "_evk_device"]
    return kernel, launcher, call


NLEAD_MAX = 2  # leading dims (e.g. N, C) kept separate; more are merged (contiguous) into the first
