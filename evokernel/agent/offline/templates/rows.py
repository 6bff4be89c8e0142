"""Row families (reduction, softmax, norm): statistics over some dims, then per-row or per-element outputs.

The iteration space is split into kept dims (one output row each) and reduced dims. A program
owns ``BLOCK_K`` rows and walks the reduced elements in chunks of ``BLOCK_R``:

* mode "loop": one pass over the row per statistic (softmax's max and sum fused into one online
  pass), then a pass writing outputs -- correct for any row length;
* mode "fit": the host picks ``BLOCK_R = next_pow2(row)``, so the row is read once into registers
  (falls back to "loop" above ``FIT_MAX``) -- correct for any row length;
* mode "one_pass": an aggressive variant with a *fixed* ``BLOCK_R`` that takes the statistics from
  the first chunk only: fast when the row fits, wrong when rows are longer than ``BLOCK_R``.

``acc`` "fp32" accumulates in fp32; "input" accumulates in the input's type (fp16 loses digits on
long rows; no effect on fp32 inputs). Expressions that depend only on the statistics (e.g. the
reciprocal standard deviation) are evaluated once per row, not per element.
"""

from __future__ import annotations

from evokernel.agent.offline.ir import Coord, Expr, Load, Op, RowKernel, Stat, operands, walk
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
    stride_params,
    tl_type,
    torch_dtype,
)

__all__ = ["render", "FIT_MAX"]

FIT_MAX = 8192  # largest row kept in registers by mode "fit"
TILE_MAX = 16384  # BLOCK_K * BLOCK_R cap when "fit" widens BLOCK_R


def _init(op: str, ct: str) -> str:
    if op in ("sum",):
        return literal(0, ct)
    if op == "prod":
        return literal(1, ct)
    big = {"i8": 127, "u8": 255, "i16": 32767, "i32": 2**31 - 1, "i64": 2**63 - 1, "i1": 1}
    if op in ("max", "argmax"):
        return 'float("-inf")' if ct.startswith(("fp", "bf")) else str(-big[ct] - 1 if ct != "u8" else 0)
    return 'float("inf")' if ct.startswith(("fp", "bf")) else str(big[ct])


def _row_invariant(roots: list[Expr]) -> list[Expr]:
    """Maximal subexpressions that use statistics but no loads/coordinates (computed once per row)."""
    varying: dict[int, bool] = {}
    uses_stat: dict[int, bool] = {}
    order: list[Expr] = []
    seen: set[int] = set()
    for r in roots:
        for n in walk(r, seen):
            order.append(n)
            kids = [a for a in n.args if isinstance(a, Expr)] if isinstance(n, Op) else []
            if isinstance(n, Load) and n.gather is not None:
                kids = [x for _, x in n.gather]
            varying[id(n)] = isinstance(n, (Load, Coord)) or any(varying[id(c)] for c in kids)
            uses_stat[id(n)] = isinstance(n, Stat) or any(uses_stat[id(c)] for c in kids)
    found = [n for n in order if isinstance(n, Op) and not varying[id(n)] and uses_stat[id(n)]]
    contained: set[int] = set()
    for n in found:
        for c in walk(n):
            if c is not n:
                contained.add(id(c))
    return [n for n in found if id(n) not in contained]


def render(name: str, k: RowKernel, out_dtypes: list[str], config: dict) -> tuple[str, str, list[str]]:
    """Kernel source, launcher source and call arguments for a reduction/softmax/norm instance."""
    loads, scalars = operands(k)
    ops = Operands(loads, scalars, k.shape)
    R = k.rank
    D = list(k.red_dims)
    K = [d for d in range(R) if d not in D]
    mode = config.get("mode", "loop")
    acc_mode = config.get("acc", "fp32")
    kname, lname = f"_evk_k_{name}", f"_evk_launch_{name}"
    sizes = [f"S{d}" for d in range(R)]
    kc = {d: f"kc{d}" for d in K}
    rc = {d: f"rc{d}" for d in D}
    in_dtype = next((ld.dtype for ld in loads if ld.space == "full"), "float32")
    half_acc = acc_mode == "input" and in_dtype in ("float16", "bfloat16")

    def acc_ct(spec_dtype: str, op: str) -> str:
        ct = ctype(spec_dtype)
        if half_acc and ct == "fp32" and op in ("sum", "prod"):
            return ctype(in_dtype, compute=False)
        return ct

    # ---- tile context (full space) ----------------------------------------------------------
    def tile_coord(d: int) -> str:
        d = d if d >= 0 else R + d
        return f"{kc[d]}[:, None]" if d in kc else f"{rc[d]}[None, :]"

    def make_tile_emitter(prefix: str, stat_code: dict[int, tuple[str, str]], preset: dict) -> Emitter:
        em: Emitter

        def load(ld: Load) -> str:
            j = ops.index(ld)
            if ld.flip or ld.gather is not None:
                off = load_offset(ops, ld, R, tile_coord, lambda d: sizes[d], em)
            else:
                off = f"koff{j}[:, None] + roff{j}[None, :]"
            return em._emit(f"tl.load(p{j} + {off}, mask=mask, other=0)")

        em = Emitter(
            load, coord=tile_coord, stat=lambda i: (f"{stat_code[i][0]}[:, None]", stat_code[i][1]),
            scalar=ops.scalar, redcount=lambda: "NR", prefix=prefix, preset=preset,
        )  # fmt: skip
        return em

    plain_full = [j for j, ld in enumerate(loads) if ld.space == "full" and not ld.flip and ld.gather is None]
    out_loads = [j for j, ld in enumerate(loads) if ld.space == "out"]

    def chunk_header(start: str) -> list[str]:
        lines = [f"ridx = {start} + tl.arange(0, BLOCK_R)", "rmask = ridx < NR"]
        lines += decompose("ridx", [sizes[d] for d in D], [rc[d] for d in D])
        lines.append("mask = kmask[:, None] & rmask[None, :]")
        for j in plain_full:
            terms = [f"{rc[d]} * st{j}_{d}" for d in D]
            lines.append(f"roff{j} = {' + '.join(terms) if terms else '0'}")
        return lines

    stat_code: dict[int, tuple[str, str]] = {}
    body: list[str] = [
        "pid = tl.program_id(0).to(tl.int64)",
        "kidx = pid * BLOCK_K + tl.arange(0, BLOCK_K)",
        "kmask = kidx < NK",
    ]
    body += decompose("kidx", [sizes[d] for d in K], [kc[d] for d in K])
    for j in plain_full + out_loads:
        terms = [f"{kc[d]} * st{j}_{d}" for d in K]
        body.append(f"koff{j} = {' + '.join(terms) if terms else tl_zero_k()}")
    if k.kind == "row":
        terms = [f"{kc[d]} * cs{d}" for d in K]
        body.append(f"kout = {' + '.join(terms) if terms else tl_zero_k()}")

    def finalize(i: int, op: str, ct: str, acc: str, idx: str | None = None) -> list[str]:
        out = f"st{i}"
        if op == "sum":
            code = [f"{out} = tl.sum({acc}, 1)"]
        elif op == "prod":
            code = [f"{out} = tl.reduce({acc}, 1, _evk_mul)"]
        elif op in ("max", "min"):
            code = [f"{out} = tl.{op}({acc}, 1)"]
        else:  # argmax / argmin: smallest index among lanes holding the extreme value
            red = "max" if op == "argmax" else "min"
            code = [
                f"_m{i} = tl.{red}({acc}, 1)",
                f"_c{i} = tl.where({acc} == _m{i}[:, None], {idx}, 9223372036854775807)",
                f"{out} = tl.min(_c{i}, 1)",
            ]
            ct = "i64"
        if ct != ctype(k.stats[i].dtype):
            code.append(f"{out} = {out}.to({tl_type(ctype(k.stats[i].dtype))})")
        stat_code[i] = (out, ctype(k.stats[i].dtype))
        return code

    def update(op: str, acc: str, v: str, ct: str, idx: str | None = None) -> list[str]:
        vv = f"tl.where(mask, {v}, {_init(op, ct)})"
        if op == "sum":
            return [f"{acc} = {acc} + {vv}"]
        if op == "prod":
            return [f"{acc} = {acc} * {vv}"]
        if op in ("max", "min"):
            return [f"{acc} = tl.{'maximum' if op == 'max' else 'minimum'}({acc}, {vv})"]
        cmp = ">" if op == "argmax" else "<"
        return [
            f"_v = {vv}",
            f"_take = _v {cmp} {acc}",
            f"{acc} = tl.where(_take, _v, {acc})",
            f"{idx} = tl.where(_take, ridx[None, :] + tl.zeros([BLOCK_K, BLOCK_R], tl.int64), {idx})",
        ]

    # ---- loop path ---------------------------------------------------------------------------
    loop: list[str] = []
    i = 0
    while i < len(k.stats):
        spec = k.stats[i]
        if i in k.online and mode in ("online", "fit"):  # "fit" falls back to this loop for long rows
            ct = ctype(spec.dtype)
            loop += [
                f'm{i} = tl.full([BLOCK_K, BLOCK_R], float("-inf"), {tl_type(ct)})',
                f"s{i} = tl.zeros([BLOCK_K, BLOCK_R], {tl_type(ct)})",
                "for r0 in range(0, NR, BLOCK_R):",
            ]
            em = make_tile_emitter(f"a{i}_", stat_code, {})
            inner = chunk_header("r0")
            code, vct, _ = em.value(spec.expr)
            inner += em.lines
            inner += [
                f'_x = tl.where(mask, {em.cast((code, vct, False), ct)}, float("-inf"))',
                f"_mn = tl.maximum(m{i}, _x)",
                '_ms = tl.where(_mn == float("-inf"), 0.0, _mn)',
                f"s{i} = s{i} * tl.exp(m{i} - _ms) + tl.exp(_x - _ms)",
                f"m{i} = _mn",
            ]
            loop += indent(inner)
            loop += [
                f"st{i} = tl.max(m{i}, 1)",
                f'_safe{i} = tl.where(st{i} == float("-inf"), 0.0, st{i})',
                f"st{i + 1} = tl.sum(s{i} * tl.exp(m{i} - _safe{i}[:, None]), 1)",
            ]
            stat_code[i] = (f"st{i}", ct)
            stat_code[i + 1] = (f"st{i + 1}", ctype(k.stats[i + 1].dtype))
            i += 2
            continue
        ct = acc_ct(spec.dtype, spec.op)
        vct = ctype(spec.dtype) if spec.op not in ("argmax", "argmin") else ctype(spec.expr.dtype)
        init_ct = vct if spec.op in ("argmax", "argmin") else ct
        loop.append(f"acc{i} = tl.full([BLOCK_K, BLOCK_R], {_init(spec.op, init_ct)}, {tl_type(init_ct)})")
        if spec.op in ("argmax", "argmin"):
            loop.append(f"idx{i} = tl.zeros([BLOCK_K, BLOCK_R], tl.int64)")
        loop.append("for r0 in range(0, NR, BLOCK_R):")
        em = make_tile_emitter(f"a{i}_", dict(stat_code), {})
        inner = chunk_header("r0")
        code, have, lit = em.value(spec.expr)
        inner += em.lines
        val = em.cast((code, have, lit), init_ct)
        inner += update(spec.op, f"acc{i}", val, init_ct, f"idx{i}")
        loop += indent(inner)
        loop += finalize(i, spec.op, init_ct, f"acc{i}", f"idx{i}")
        i += 1
    loop_stats = dict(stat_code)

    # ---- single-pass path --------------------------------------------------------------------
    stat_code.clear()
    single: list[str] = chunk_header("0")
    em_single = make_tile_emitter("b_", stat_code, {})
    for i, spec in enumerate(k.stats):
        ct = acc_ct(spec.dtype, spec.op)
        vct = ctype(spec.dtype) if spec.op not in ("argmax", "argmin") else ctype(spec.expr.dtype)
        init_ct = vct if spec.op in ("argmax", "argmin") else ct
        code, have, lit = em_single.value(spec.expr)
        single += em_single.lines
        em_single.lines = []
        val = em_single.cast((code, have, lit), init_ct)
        neutral = _init(spec.op, init_ct)
        single.append(f"acc{i} = tl.where(mask, {val}, {neutral})")
        if spec.op in ("argmax", "argmin"):
            single.append(f"idx{i} = ridx[None, :] + tl.zeros([BLOCK_K, BLOCK_R], tl.int64)")
        single += finalize(i, spec.op, init_ct, f"acc{i}", f"idx{i}")
    single_stats = dict(stat_code)

    # ---- outputs -----------------------------------------------------------------------------
    def row_invariants(stats_map: dict[int, tuple[str, str]], prefix: str) -> tuple[list[str], dict]:
        inv = _row_invariant(list(k.outputs))
        em = Emitter(
            lambda ld: "", stat=lambda i: stats_map[i], scalar=ops.scalar, redcount=lambda: "NR", prefix=prefix
        )
        preset = {}
        for node in inv:
            code, ct, lit = em.value(node)
            preset[id(node)] = (code if lit else f"{code}[:, None]", ct, lit)
        return em.lines, preset

    def store_lines(em: Emitter, where: str, mask: str) -> list[str]:
        lines = []
        for o, (out, dt) in enumerate(zip(k.outputs, out_dtypes)):
            code, ct, lit = em.value(out)
            target = ctype(dt, compute=False)
            if lit:
                code = (
                    f"tl.full([BLOCK_K, BLOCK_R], {code}, {tl_type(target)})"
                    if k.kind == "row"
                    else f"tl.full([BLOCK_K], {code}, {tl_type(target)})"
                )
            lines.append(f"tl.store(out{o} + {where}, ({code}).to({tl_type(target)}), mask={mask})")
        return em.lines + lines

    def row_outputs(stats_map: dict[int, tuple[str, str]], first_chunk_em: Emitter | None, prefix: str) -> list[str]:
        lines, preset = row_invariants(stats_map, prefix + "h")
        out: list[str] = list(lines)
        if first_chunk_em is not None:  # single pass: the loaded chunk is still in registers
            first_chunk_em._memo.update(preset)
            first_chunk_em._stat = lambda i: (f"{stats_map[i][0]}[:, None]", stats_map[i][1])
            rout = " + ".join(f"{rc[d]} * cs{d}" for d in D) or "0"
            out += [f"rout = {rout}"]
            out += store_lines(first_chunk_em, "kout[:, None] + rout[None, :]", "mask")
            start = "BLOCK_R"
        else:
            start = "0"
        em = make_tile_emitter(prefix + "o_", stats_map, preset)
        inner = chunk_header("r0")
        rout = " + ".join(f"{rc[d]} * cs{d}" for d in D) or "0"
        inner.append(f"rout = {rout}")
        inner += store_lines(em, "kout[:, None] + rout[None, :]", "mask")
        out += [f"for r0 in range({start}, NR, BLOCK_R):", *indent(inner)]
        return out

    def reduce_outputs(stats_map: dict[int, tuple[str, str]]) -> list[str]:
        def load(ld: Load) -> str:
            j = ops.index(ld)
            return em._emit(f"tl.load(p{j} + koff{j}, mask=kmask, other=0)")

        em = Emitter(
            load, coord=lambda d: kc[d if d >= 0 else R + d], stat=lambda i: stats_map[i], scalar=ops.scalar,
            redcount=lambda: "NR", prefix="r_",
        )  # fmt: skip
        lines = []
        for o, (out, dt) in enumerate(zip(k.outputs, out_dtypes)):
            code, ct, lit = em.value(out)
            target = ctype(dt, compute=False)
            if lit:
                code = f"tl.full([BLOCK_K], {code}, {tl_type(target)})"
            lines.append(f"tl.store(out{o} + kidx, ({code}).to({tl_type(target)}), mask=kmask)")
        return em.lines + lines

    if k.kind == "row":
        loop += row_outputs(loop_stats, None, "L")
        single += row_outputs(single_stats, em_single, "S")
    body += ["if SINGLE:", *indent(single), "else:", *indent(loop)]
    if k.kind != "row":
        body += reduce_outputs(single_stats)  # same names in both paths

    nouts = len(k.outputs)
    params = (
        [f"p{j}" for j in range(len(loads))]
        + [f"out{o}" for o in range(nouts)]
        + [ops.scalar(s) for s in scalars]
        + ["NK", "NR"]
        + sizes
        + stride_params(ops, R)
        + ([f"cs{d}" for d in range(R)] if k.kind == "row" else [])
        + ["SINGLE: tl.constexpr", "BLOCK_K: tl.constexpr", "BLOCK_R: tl.constexpr"]
    )
    kernel = jit_kernel(kname, params, body)

    # ---- launcher ----------------------------------------------------------------------------
    full_vars = ops.broadcast_tensors(loads, full_only=True)
    lines = []
    if k.shape is not None:
        lines.append(
            f"shape = _evk_expand(_evk_bshape({', '.join(t + '.shape' for t in full_vars)}), [{', '.join(ops.shape_params())}])"
        )
    else:
        lines.append(f"shape = _evk_bshape({', '.join(t + '.shape' for t in full_vars)})")
    lines.append(f"sizes = _evk_pad(shape, {R})")
    lines.append(f"kept = [sizes[d] for d in {K!r}]")
    lines.append("NK = _evk_numel(kept)")
    lines.append(f"NR = _evk_numel([sizes[d] for d in {D!r}])")
    if k.kind == "row":
        lines.append("out_shape = sizes")
    elif k.keepdim:
        lines.append(f"out_shape = tuple(1 if d in {tuple(D)!r} else sizes[d] for d in range({R}))")
    else:
        lines.append("out_shape = tuple(kept)")
    dev = ops.device()
    for o, dt in enumerate(out_dtypes):
        lines.append(f"out{o} = torch.empty(out_shape, dtype={torch_dtype(dt)}, device={dev})")
    outs = ", ".join(f"out{o}" for o in range(nouts)) + ("," if nouts == 1 else "")
    lines.append("if NK == 0:")
    lines.append(f"    return {outs}")
    st_args = []
    for j, ld in enumerate(loads):
        t = ops.tensor(ld)
        if ld.gather is not None:
            lines.append(f"st{j} = _evk_rstrides({t}, {R})")
        elif ld.space == "out":
            lines.append(f"_o = _evk_bstrides({t}, out_shape)")
            if k.keepdim or k.kind == "row":
                lines.append(f"st{j} = _o")
            else:
                lines.append(f"st{j} = [0] * {R}")
                lines.append(f"for _i, _d in enumerate({K!r}):")
                lines.append(f"    st{j}[_d] = _o[_i]")
        else:
            lines.append(f"st{j} = _evk_bstrides({t}, sizes)")
        st_args.append(f"*st{j}")
    bk, br = int(config["BLOCK_K"]), int(config["BLOCK_R"])
    lines.append(f"BK, BR, single = {bk}, {br}, {mode == 'one_pass'}")
    if mode == "one_pass":
        lines += size_guard("NR > BR", "this kernel reads each row in one chunk of {} elements (a one_pass "
                            "configuration); rows of {} elements need a looping mode", "BR, NR")
    if mode == "fit":
        lines.append("_fit = max(_evk_next_pow2(NR), 16)")
        lines.append(f"if _fit <= {FIT_MAX}:")
        lines.append("    BR, single = _fit, True")
        lines.append(f"    BK = max(1, min(BK, {TILE_MAX} // BR))")
    cs_arg = ["*_evk_cstrides(sizes)"] if k.kind == "row" else []
    args = (
        [ops.tensor(ld) for ld in loads]
        + [f"out{o}" for o in range(nouts)]
        + [ops.scalar(s) for s in scalars]
        + ["NK", "NR", "*sizes"]
        + st_args
        + cs_arg
        + ["SINGLE=single", "BLOCK_K=BK", "BLOCK_R=BR", f"num_warps={int(config.get('num_warps', 4))}"]
    )
    lines.append("grid = (triton.cdiv(NK, BK),)")
    lines.append(f"{kname}[grid]({', '.join(args)})")
    lines.append(f"return {outs}")
    launcher = "\n".join([f"def {lname}({', '.join(ops.launcher_params())}):", *indent(lines)]) + "\n"
    return kernel, launcher, ops.call_args()


def tl_zero_k() -> str:
    """A zero offset vector of the kept tile."""
    return "tl.zeros([BLOCK_K], tl.int64)"
