"""Matmul family: (batched) ``A @ B`` with the bias and any elementwise epilogue fused in.

Classic tiled kernel: a program computes a ``BLOCK_M x BLOCK_N`` tile of one batch entry,
walking K in ``BLOCK_K`` steps with ``tl.dot`` (fp32 inputs use ``input_precision="ieee"``, so
no TF32 rounding); programs are grouped ``GROUP_M`` rows at a time for L2 reuse. A and B are
read through their strides (transposed views need no copy). The epilogue (bias, activation,
scaling, masks such as ``triu``) is applied to the fp32 accumulator before the single store.
Risky knobs: ``k_loop="even"`` visits whole ``BLOCK_K`` chunks only (wrong unless K is a
multiple of ``BLOCK_K``); ``acc="input"`` accumulates fp16 inputs in fp16.
"""

from __future__ import annotations

from evokernel.agent.offline.ir import Load, MatmulKernel, operands
from evokernel.agent.offline.templates.common import (
    Emitter,
    Operands,
    ctype,
    indent,
    jit_kernel,
    size_guard,
    tl_type,
    torch_dtype,
)

__all__ = ["render"]


def render(name: str, k: MatmulKernel, out_dtypes: list[str], config: dict) -> tuple[str, str, list[str]]:
    """Kernel source, launcher source and call arguments for one matmul instance."""
    loads, scalars = operands(k)
    ops = Operands(loads, scalars)
    kname, lname = f"_evk_k_{name}", f"_evk_launch_{name}"
    even = config.get("k_loop", "masked") == "even"
    half = ctype(k.a_dtype, compute=False) in ("fp16", "bf16")
    acc16 = half and config.get("acc", "fp32") == "input"
    in_ct = ctype(k.a_dtype, compute=False)
    acc_ct = in_ct if acc16 else ("fp64" if in_ct == "fp64" else "fp32")

    def coord(d: int) -> str:
        d = d if d < 0 else d - 3
        return {-1: "rn[None, :]", -2: "rm[:, None]", -3: "bid"}[d]

    def load(ld: Load) -> str:
        j = ops.index(ld)
        off = f"bid * st{j}_0 + rm[:, None] * st{j}_1 + rn[None, :] * st{j}_2"
        return em._emit(f"tl.load(p{j} + {off}, mask=omask, other=0)")

    em = Emitter(load, coord=coord, stat=lambda i: ("acc", acc_ct), scalar=ops.scalar, prefix="e")
    stores = []
    for o, (out, dt) in enumerate(zip(k.outputs, out_dtypes)):
        code, ct, lit = em.value(out)
        target = ctype(dt, compute=False)
        if lit:
            code = f"tl.full([BLOCK_M, BLOCK_N], {code}, {tl_type(target)})"
        stores.append(
            f"tl.store(out{o} + bid * sob + rm[:, None] * som + rn[None, :] * son, ({code}).to({tl_type(target)}), mask=omask)"
        )

    if acc16:
        dot = f"acc = tl.dot(a, b, acc, out_dtype={tl_type(acc_ct)})"
    elif in_ct == "fp32":
        dot = 'acc = tl.dot(a, b, acc, input_precision="ieee")'
    elif in_ct in ("fp16", "bf16"):
        dot = "acc = tl.dot(a, b, acc)"
    else:
        dot = f"acc += tl.sum(a.to({tl_type(acc_ct)})[:, :, None] * b.to({tl_type(acc_ct)})[None, :, :], 1)"
    kmask_a = "" if even else " & (kk[None, :] < K)"
    kmask_b = "" if even else "(kk[:, None] < K) & "
    kend = "(K // BLOCK_K) * BLOCK_K" if even else "K"
    body = [
        "pid = tl.program_id(0)",
        "bid = tl.program_id(1).to(tl.int64)",
        "num_pid_m = tl.cdiv(M, BLOCK_M)",
        "num_pid_n = tl.cdiv(N, BLOCK_N)",
        "num_pid_in_group = GROUP_M * num_pid_n",
        "group_id = pid // num_pid_in_group",
        "first_pid_m = group_id * GROUP_M",
        "group_size_m = tl.minimum(num_pid_m - first_pid_m, GROUP_M)",
        "pid_m = first_pid_m + ((pid % num_pid_in_group) % group_size_m)",
        "pid_n = (pid % num_pid_in_group) // group_size_m",
        "rm = pid_m.to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)",
        "rn = pid_n.to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)",
        "rk = tl.arange(0, BLOCK_K)",
        "a_base = a_ptr + bid * sab + rm[:, None] * sam",
        "b_base = b_ptr + bid * sbb + rn[None, :] * sbn",
        f"acc = tl.zeros((BLOCK_M, BLOCK_N), dtype={tl_type(acc_ct)})",
        f"for k0 in range(0, {kend}, BLOCK_K):",
        "    kk = k0 + rk",
        f"    a = tl.load(a_base + kk[None, :] * sak, mask=(rm[:, None] < M){kmask_a}, other=0.0)",
        f"    b = tl.load(b_base + kk[:, None] * sbk, mask={kmask_b}(rn[None, :] < N), other=0.0)",
        f"    {dot}",
        "omask = (rm[:, None] < M) & (rn[None, :] < N)",
        *em.lines,
        *stores,
    ]
    nouts = len(k.outputs)
    params = (
        ["a_ptr", "b_ptr"]
        + [f"p{j}" for j in range(len(loads))]
        + [f"out{o}" for o in range(nouts)]
        + [ops.scalar(s) for s in scalars]
        + ["M", "N", "K", "sab", "sam", "sak", "sbb", "sbk", "sbn", "sob", "som", "son"]
        + [f"st{j}_{d}" for j in range(len(loads)) for d in range(3)]
        + ["BLOCK_M: tl.constexpr", "BLOCK_N: tl.constexpr", "BLOCK_K: tl.constexpr", "GROUP_M: tl.constexpr"]
    )
    kernel = jit_kernel(kname, params, body)

    lines = [
        "if A.dim() == 2:",
        "    Bt, (M, K), sab, (sam, sak) = 1, A.shape, 0, A.stride()",
        "else:",
        "    (Bt, M, K), (sab, sam, sak) = A.shape, A.stride()",
        "if B.dim() == 2:",
        "    (_, N), sbb, (sbk, sbn) = B.shape, 0, B.stride()",
        "else:",
        "    (Bb, _, N), (sbb, sbk, sbn) = B.shape, B.stride()",
        "    if Bb != Bt and Bt == 1:",
        "        Bt, sab = Bb, 0",
        "    elif Bb == 1:",
        "        sbb = 0",
        f"out_shape = (M, N) if {k.out_rank} == 2 else (Bt, M, N)",
    ]
    for o, dt in enumerate(out_dtypes):
        lines.append(f"out{o} = torch.empty(out_shape, dtype={torch_dtype(dt)}, device=A.device)")
    outs = ", ".join(f"out{o}" for o in range(nouts)) + ("," if nouts == 1 else "")
    lines += ["if M * N * Bt == 0:", f"    return {outs}", "sob, som, son = M * N, N, 1", "full = (Bt, M, N)"]
    st_args = []
    for j, ld in enumerate(loads):
        lines.append(f"st{j} = _evk_bstrides({ops.tensor(ld)}, full)")
        st_args.append(f"*st{j}")
    bm, bn, bk = int(config["BLOCK_M"]), int(config["BLOCK_N"]), int(config["BLOCK_K"])
    args = (
        ["A", "B"]
        + [ops.tensor(ld) for ld in loads]
        + [f"out{o}" for o in range(nouts)]
        + [ops.scalar(s) for s in scalars]
        + ["M", "N", "K", "sab", "sam", "sak", "sbb", "sbk", "sbn", "sob", "som", "son"]
        + st_args
        + [f"BLOCK_M={bm}", f"BLOCK_N={bn}", f"BLOCK_K={bk}", f"GROUP_M={int(config.get('GROUP_M', 8))}"]
        + [f"num_warps={int(config.get('num_warps', 4))}", f"num_stages={int(config.get('num_stages', 3))}"]
    )
    if even:
        lines += size_guard(f"K % {bk}", "this kernel visits whole chunks of {} along K (an even k_loop "
                            "configuration); K = {} is not a multiple", f"{bk}, K")
    lines.append(f"grid = (triton.cdiv(M, {bm}) * triton.cdiv(N, {bn}), Bt)")
    lines.append(f"{kname}[grid]({', '.join(args)})")
    lines.append(f"return {outs}")
    lparams = ["A", "B", *ops.launcher_params()]
    if not ops.vars:
        lparams.remove("dev")
    launcher = "\n".join([f"def {lname}({', '.join(lparams)}):", *indent(lines)]) + "\n"
    call = [k.a_var, k.b_var] + [a for a in ops.call_args() if a != "_evk_device"]
    return kernel, launcher, call
