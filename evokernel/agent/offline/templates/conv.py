"""Conv family: N-d convolution and transposed convolution as an implicit GEMM, epilogue fused.

Per group, the output is a GEMM: rows are output positions (batch x spatial), columns the
group's output channels, and the reduction runs over (input channel, kernel offset). A program
computes a ``BLOCK_M x BLOCK_N`` tile, gathering the input patch for each ``BLOCK_K`` chunk with
masks for padding (transposed convolutions keep only the taps where ``o + p - k*d`` is a multiple
of the stride). Stride, padding, dilation and groups are compile-time constants of the program;
batch, channels, spatial sizes and kernel sizes are read at run time. Bias and any elementwise
epilogue are applied to the fp32 accumulator before the store. Risky knobs as for matmul:
``k_loop="even"`` (whole ``BLOCK_K`` chunks only) and ``acc="input"`` (fp16 accumulation).
"""

from __future__ import annotations

from evokernel.agent.offline.ir import ConvKernel, Load, operands
from evokernel.agent.offline.templates.common import (
    Emitter,
    Operands,
    ctype,
    decompose,
    indent,
    jit_kernel,
    size_guard,
    tl_type,
    torch_dtype,
)

__all__ = ["render"]


def render(name: str, k: ConvKernel, out_dtypes: list[str], config: dict) -> tuple[str, str, list[str]]:
    """Kernel source, launcher source and call arguments for one convolution instance."""
    loads, scalars = operands(k)
    ops = Operands(loads, scalars)
    nd = k.nd
    R = nd + 2
    kname, lname = f"_evk_k_{name}", f"_evk_launch_{name}"
    even = config.get("k_loop", "masked") == "even"
    in_ct = ctype(k.x_dtype, compute=False)
    acc16 = in_ct in ("fp16", "bf16") and config.get("acc", "fp32") == "input"
    acc_ct = in_ct if acc16 else "fp32"
    o = [f"o{d}" for d in range(nd)]
    kd = [f"q{d}" for d in range(nd)]

    coords = {0: "nb[:, None]", 1: "co[None, :]", **{2 + d: f"{o[d]}[:, None]" for d in range(nd)}}

    def coord(d: int) -> str:
        return coords[d if d >= 0 else R + d]

    def load(ld: Load) -> str:
        j = ops.index(ld)
        off = " + ".join(f"{coords[d]} * st{j}_{d}" for d in range(R))
        return em._emit(f"tl.load(p{j} + {off}, mask=omask, other=0)")

    em = Emitter(load, coord=coord, stat=lambda i: ("acc", acc_ct), scalar=ops.scalar, prefix="e")
    stores = []
    out_off = "nb[:, None] * son + co[None, :] * soc + " + " + ".join(f"{o[d]}[:, None] * so{d}" for d in range(nd))
    for i, (out, dt) in enumerate(zip(k.outputs, out_dtypes)):
        code, ct, lit = em.value(out)
        target = ctype(dt, compute=False)
        if lit:
            code = f"tl.full([BLOCK_M, BLOCK_N], {code}, {tl_type(target)})"
        stores.append(f"tl.store(out{i} + {out_off}, ({code}).to({tl_type(target)}), mask=omask)")

    if acc16:
        dot = f"acc = tl.dot(a, b, acc, out_dtype={tl_type(acc_ct)})"
    elif in_ct == "fp32":
        dot = 'acc = tl.dot(a, b, acc, input_precision="ieee")'
    else:
        dot = "acc = tl.dot(a, b, acc)"
    taps = []
    valid = []
    for d in range(nd):
        s, p, dl = k.stride[d], k.padding[d], k.dilation[d]
        if k.transposed:
            taps.append(f"t{d} = {o[d]}[:, None] + {p} - {kd[d]}[None, :] * {dl}")
            taps.append(f"i{d} = tl.where(t{d} >= 0, t{d}, 0) // {s}")
            valid.append(f"(t{d} >= 0) & (t{d} % {s} == 0) & (i{d} < I{d})")
        else:
            taps.append(f"i{d} = {o[d]}[:, None] * {s} - {p} + {kd[d]}[None, :] * {dl}")
            valid.append(f"(i{d} >= 0) & (i{d} < I{d})")
    x_off = "nb[:, None] * sxn + cin[None, :] * sxc + " + " + ".join(f"i{d} * sx{d}" for d in range(nd))
    if k.transposed:  # weight [C_in, C_out / groups, *k]
        w_off = "cin[:, None] * sw0 + rn[None, :] * sw1 + " + " + ".join(
            f"{kd[d]}[:, None] * sw{2 + d}" for d in range(nd)
        )
    else:  # weight [C_out, C_in / groups, *k]
        w_off = "co[None, :] * sw0 + ci[:, None] * sw1 + " + " + ".join(
            f"{kd[d]}[:, None] * sw{2 + d}" for d in range(nd)
        )
    kend = "(KRED // BLOCK_K) * BLOCK_K" if even else "KRED"
    body = [
        "pid = tl.program_id(0)",
        "g = tl.program_id(1).to(tl.int64)",
        "num_pid_n = tl.cdiv(COUT_G, BLOCK_N)",
        "pid_m = pid // num_pid_n",
        "pid_n = pid % num_pid_n",
        "rm = pid_m.to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)",
        "rn = pid_n.to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)",
        "mmask = rm < M",
        *decompose("rm", ["NB"] + [f"O{d}" for d in range(nd)], ["nb"] + o),
        "co = g * COUT_G + rn",
        f"acc = tl.zeros((BLOCK_M, BLOCK_N), dtype={tl_type(acc_ct)})",
        f"for k0 in range(0, {kend}, BLOCK_K):",
        *indent(
            [
                "kk = k0 + tl.arange(0, BLOCK_K)",
                "kmask = kk < KRED",
                *decompose("kk", ["CIN_G"] + [f"KS{d}" for d in range(nd)], ["ci"] + kd),
                "cin = g * CIN_G + ci",
                *taps,
                f"amask = mmask[:, None] & kmask[None, :] & {' & '.join(valid)}",
                f"a = tl.load(x_ptr + {x_off}, mask=amask, other=0.0)",
                f"b = tl.load(w_ptr + {w_off}, mask=kmask[:, None] & (rn[None, :] < COUT_G), other=0.0)",
                dot,
            ]
        ),
        "omask = mmask[:, None] & (rn[None, :] < COUT_G)",
        *em.lines,
        *stores,
    ]
    nouts = len(k.outputs)
    dw_kernel, dw_params = _depthwise(kname + "_dw", k, ops, out_dtypes, loads, scalars)
    dims = (
        ["M", "KRED", "NB", "CIN_G", "COUT_G"]
        + [f"I{d}" for d in range(nd)]
        + [f"O{d}" for d in range(nd)]
        + [f"KS{d}" for d in range(nd)]
        + ["sxn", "sxc"]
        + [f"sx{d}" for d in range(nd)]
        + [f"sw{d}" for d in range(R)]
        + ["son", "soc"]
        + [f"so{d}" for d in range(nd)]
    )
    params = (
        ["x_ptr", "w_ptr"]
        + [f"p{j}" for j in range(len(loads))]
        + [f"out{i}" for i in range(nouts)]
        + [ops.scalar(s) for s in scalars]
        + dims
        + [f"st{j}_{d}" for j in range(len(loads)) for d in range(R)]
        + ["BLOCK_M: tl.constexpr", "BLOCK_N: tl.constexpr", "BLOCK_K: tl.constexpr"]
    )
    kernel = jit_kernel(kname, params, body)
    if dw_kernel:
        kernel += "\n\n" + dw_kernel

    g = "G" if isinstance(k.groups, str) else str(int(k.groups))
    lines = [
        "NB, CIN = X.shape[0], X.shape[1]",
        "ins = list(X.shape[2:])",
        "ks = list(W.shape[2:])",
        f"CIN_G = CIN // {g}",
        f"COUT_G = W.shape[1] if {k.transposed} else W.shape[0] // {g}",
        f"outs_sp = [_evk_conv_out(ins[d], ks[d], s, p, dl, {k.transposed}, op) for d, (s, p, dl, op) in "
        f"enumerate(zip({k.stride!r}, {k.padding!r}, {k.dilation!r}, {k.output_padding!r}))]",
        f"out_shape = (NB, COUT_G * {g}, *outs_sp)",
    ]
    for i, dt in enumerate(out_dtypes):
        lines.append(f"out{i} = torch.empty(out_shape, dtype={torch_dtype(dt)}, device=X.device)")
    outs = ", ".join(f"out{i}" for i in range(nouts)) + ("," if nouts == 1 else "")
    lines += [
        "M = NB * _evk_numel(outs_sp)",
        "KRED = CIN_G * _evk_numel(ks)",
        "if M * COUT_G == 0:",
        f"    return {outs}",
    ]
    st_args = []
    for j, ld in enumerate(loads):
        lines.append(f"st{j} = _evk_bstrides({ops.tensor(ld)}, out_shape)")
        st_args.append(f"*st{j}")
    bm, bn, bk = int(config["BLOCK_M"]), int(config["BLOCK_N"]), int(config["BLOCK_K"])
    args = (
        ["X", "W"]
        + [ops.tensor(ld) for ld in loads]
        + [f"out{i}" for i in range(nouts)]
        + [ops.scalar(s) for s in scalars]
        + [
            "M",
            "KRED",
            "NB",
            "CIN_G",
            "COUT_G",
            "*ins",
            "*outs_sp",
            "*ks",
            "*X.stride()",
            "*W.stride()",
            "*out0.stride()",
        ]
        + st_args
        + [f"BLOCK_M={bm}", f"BLOCK_N={bn}", f"BLOCK_K={bk}"]
        + [f"num_warps={int(config.get('num_warps', 4))}", f"num_stages={int(config.get('num_stages', 2))}"]
    )
    if dw_kernel:
        dw_args = (
            ["X", "W"]
            + [ops.tensor(ld) for ld in loads]
            + [f"out{i}" for i in range(nouts)]
            + [ops.scalar(s) for s in scalars]
            + ["n", "NB", "COUT_G * " + g, "*ins", "*outs_sp", "*ks", "_evk_numel(ks)", "*X.stride()", "*W.stride()"]
            + st_args
            + ["BLOCK=1024", f"num_warps={int(config.get('num_warps', 4))}"]
        )
        lines.append("n = _evk_numel(out_shape)")
        lines.append("if CIN_G == 1 and COUT_G == 1:  # depthwise: a direct loop over the taps")
        lines.append(f"    {kname}_dw[(triton.cdiv(n, 1024),)]({', '.join(dw_args)})")
        lines.append(f"    return {outs}")
    if even:  # (the depthwise path above has no K loop)
        lines += size_guard(f"KRED % {bk}", "this kernel visits whole chunks of {} along the reduction (an even "
                            "k_loop configuration); {} = input channels x taps is not a multiple", f"{bk}, KRED")
    lines.append(f"grid = (triton.cdiv(M, {bm}) * triton.cdiv(COUT_G, {bn}), {g})")
    lines.append(f"{kname}[grid]({', '.join(args)})")
    lines.append(f"return {outs}")
    lparams = ["X", "W", *ops.launcher_params()]
    if not ops.vars:
        lparams.remove("dev")
    call = [k.x_var, k.w_var] + [a for a in ops.call_args() if a != "_evk_device"]
    if isinstance(k.groups, str):
        lparams.append("G")
        call.append(k.groups)
    launcher = "\n".join([f"def {lname}({', '.join(lparams)}):", *indent(lines)]) + "\n"
    return kernel, launcher, call


def _depthwise(
    kname: str, k: ConvKernel, ops: Operands, out_dtypes: list[str], loads: list, scalars: list
) -> tuple[str, list[str]]:
    """A direct kernel for depthwise convolutions (one input and one output channel per group)."""
    if k.transposed:
        return "", []
    nd = k.nd
    R = nd + 2
    o = [f"o{d}" for d in range(nd)]
    coords = {0: "nb", 1: "c", **{2 + d: o[d] for d in range(nd)}}

    def coord(d: int) -> str:
        return coords[d if d >= 0 else R + d]

    def load(ld: Load) -> str:
        j = ops.index(ld)
        off = " + ".join(f"{coords[d]} * st{j}_{d}" for d in range(R))
        return em._emit(f"tl.load(p{j} + {off}, mask=mask, other=0)")

    em = Emitter(load, coord=coord, stat=lambda i: ("acc", "fp32"), scalar=ops.scalar, prefix="e")
    stores = []
    for i, (out, dt) in enumerate(zip(k.outputs, out_dtypes)):
        code, ct, lit = em.value(out)
        target = ctype(dt, compute=False)
        if lit:
            code = f"tl.full([BLOCK], {code}, {tl_type(target)})"
        stores.append(f"tl.store(out{i} + idx, ({code}).to({tl_type(target)}), mask=mask)")
    taps = []
    for d in range(nd):
        taps.append(f"i{d} = {o[d]} * {k.stride[d]} - {k.padding[d]} + q{d} * {k.dilation[d]}")
    valid = " & ".join(f"(i{d} >= 0) & (i{d} < I{d})" for d in range(nd))
    body = [
        "pid = tl.program_id(0).to(tl.int64)",
        "idx = pid * BLOCK + tl.arange(0, BLOCK)",
        "mask = idx < NOUT",
        *decompose("idx", ["NB", "C"] + [f"O{d}" for d in range(nd)], ["nb", "c"] + o),
        "acc = tl.zeros([BLOCK], tl.float32)",
        "for t in range(0, KT):",
        *indent(
            [
                *decompose("t", [f"KS{d}" for d in range(nd)], [f"q{d}" for d in range(nd)]),
                *taps,
                f"xv = tl.load(x_ptr + nb * sxn + c * sxc + {' + '.join(f'i{d} * sx{d}' for d in range(nd))}, "
                f"mask=mask & {valid}, other=0.0).to(tl.float32)",
                f"wv = tl.load(w_ptr + c * sw0 + {' + '.join(f'q{d} * sw{2 + d}' for d in range(nd))}, mask=mask, other=0.0)",
                "acc += xv * wv.to(tl.float32)",
            ]
        ),
        *em.lines,
        *stores,
    ]
    params = (
        ["x_ptr", "w_ptr"]
        + [f"p{j}" for j in range(len(loads))]
        + [f"out{i}" for i in range(len(k.outputs))]
        + [ops.scalar(sc) for sc in scalars]
        + ["NOUT", "NB", "C"]
        + [f"I{d}" for d in range(nd)]
        + [f"O{d}" for d in range(nd)]
        + [f"KS{d}" for d in range(nd)]
        + ["KT", "sxn", "sxc"]
        + [f"sx{d}" for d in range(nd)]
        + [f"sw{d}" for d in range(R)]
        + [f"st{j}_{d}" for j in range(len(loads)) for d in range(R)]
        + ["BLOCK: tl.constexpr"]
    )
    return jit_kernel(kname, params, body), params
