"""Lowering of the non-pointwise operator families: reductions, rows, matmuls, scans, windows."""

from __future__ import annotations

from typing import Any

from evokernel.agent.offline import ops as P
from evokernel.agent.offline.ir import (
    ConvKernel,
    Expr,
    KernelStep,
    Load,
    MatmulKernel,
    Op,
    RedCount,
    RowKernel,
    ScanKernel,
    Stat,
    StatSpec,
    ViewStep,
    WindowKernel,
)
from evokernel.agent.offline.lowering import (
    EVal,
    TupleVal,
    TVal,
    Unsupported,
    _cast_to,
    _dtype_name,
    _meta,
    _schema_kwargs,
    _shape,
)

__all__ = ["lower_reduction", "lower_row", "lower_matmul", "lower_scan", "lower_window", "lower_conv"]


def _acc(dtype: str) -> str:
    if dtype == "float64":
        return "float64"
    return "float32" if P.is_float(dtype) else "int64"


def _op(name: str, dtype: str, *args: Any) -> Op:
    return Op(name, tuple(a if isinstance(a, Expr) else P.const(a) for a in args), dtype)


def _source(low: Any, arg: Any) -> tuple[Any, Expr, tuple[str, ...], list[str] | None]:
    v = low.value(arg)
    if not isinstance(v, (EVal, TVal)):
        raise Unsupported("reduction of a non-tensor")
    shape = tuple(v.shape)
    e = low.expr_of(v, shape)
    code = v.shape_code if isinstance(v, EVal) and v.materialized is None else None
    return v, e, shape, code


def _dims(dim: Any, rank: int) -> tuple[int, ...]:
    if rank == 0:
        return ()
    if dim is None or (isinstance(dim, (list, tuple)) and len(dim) == 0):
        return tuple(range(rank))
    if isinstance(dim, int):
        dim = [dim]
    return tuple(sorted({int(d) % rank for d in dim}))


def _emit(low: Any, node: Any, kernel: Any, outs: list[tuple[str, tuple[str, ...]]], ops: list[str]) -> list[TVal]:
    vars_ = [low.fresh(node.name + (f"_{i}" if len(outs) > 1 else "")) for i in range(len(outs))]
    low.steps.append(KernelStep(kernel, vars_, [d for d, _ in outs], [s for _, s in outs], ops=ops))
    tvs = []
    for var, (d, s) in zip(vars_, outs):
        tv = TVal(var, d, s)
        low.var_info[var] = tv
        tvs.append(tv)
    return tvs


def lower_reduction(low: Any, node: Any, packet: str) -> None:
    """sum/mean/amax/amin/max/min/prod/argmax/argmin/var/std/logsumexp/norms/any/all -> RowKernel(reduce)."""
    kw = _schema_kwargs(node)
    val = _meta(node)
    src, e, shape, code = _source(low, kw["self"])
    rank = len(shape)
    dim = kw.get("dim")
    dims = _dims(dim, rank)
    keepdim = bool(kw.get("keepdim") or False)
    in_dt = src.dtype
    acc = _acc(in_dt)
    vals = list(val) if isinstance(val, (list, tuple)) else [val]
    out_dts = [_dtype_name(v.dtype) for v in vals]
    out_shapes = [_shape(v) for v in vals]
    cdt = "float64" if in_dt == "float64" else ("float32" if P.is_float(in_dt) else in_dt)
    ef = _cast_to(e, acc if acc != "int64" else in_dt)
    n = _op("cast", "float32", RedCount())
    stats: list[StatSpec] = []
    online: tuple[int, ...] = ()
    name = packet.removeprefix("aten.")
    if kw.get("dtype") is not None and name in ("sum", "mean", "prod", "linalg_vector_norm"):
        ef = _cast_to(e, _acc(_dtype_name(kw["dtype"])))

    def mean_var(correction: float) -> tuple[Expr, Expr]:
        stats.append(StatSpec("sum", _cast_to(e, "float32"), "float32"))
        mean = _op("div", "float32", Stat(0, "float32"), n)
        d = _op("sub", "float32", _cast_to(e, "float32"), mean)
        stats.append(StatSpec("sum", _op("mul", "float32", d, d), "float32"))
        var = _op(
            "div",
            "float32",
            Stat(1, "float32"),
            _op("maximum", "float32", _op("sub", "float32", n, float(correction)), 0.0),
        )
        return mean, var

    if name == "sum":
        stats.append(StatSpec("sum", ef, acc))
        outs: list[Expr] = [Stat(0, acc)]
    elif name == "mean":
        stats.append(StatSpec("sum", _cast_to(e, "float32"), "float32"))
        outs = [_op("div", "float32", Stat(0, "float32"), n)]
    elif name in ("amax", "amin") or (name in ("max", "min") and dim is None):
        op = "max" if name in ("amax", "max") else "min"
        stats.append(StatSpec(op, _cast_to(e, cdt), cdt))
        outs = [Stat(0, cdt)]
    elif name in ("max", "min"):
        op = name
        stats.append(StatSpec(op, _cast_to(e, cdt), cdt))
        stats.append(StatSpec("arg" + op, _cast_to(e, cdt), "int64"))
        outs = [Stat(0, cdt), Stat(1, "int64")]
    elif name == "prod":
        stats.append(StatSpec("prod", ef, acc))
        outs = [Stat(0, acc)]
    elif name in ("argmax", "argmin"):
        stats.append(StatSpec(name, _cast_to(e, cdt), "int64"))
        outs = [Stat(0, "int64")]
    elif name in ("var", "std", "var_mean", "std_mean"):
        corr = kw.get("correction")
        if corr is None:
            corr = 1 if kw.get("unbiased", True) is not False else 0
        mean, var = mean_var(float(corr))
        res = var if name.startswith("var") else _op("sqrt", "float32", var)
        outs = [res, mean] if name.endswith("_mean") else [res]
    elif name == "logsumexp":
        ex = _cast_to(e, "float32")
        stats.append(StatSpec("max", ex, "float32"))
        m = Stat(0, "float32")
        safe_m = _op("where", "float32", _op("isinf", "bool", m), 0.0, m)
        stats.append(StatSpec("sum", _op("exp", "float32", _op("sub", "float32", ex, safe_m)), "float32"))
        outs = [_op("add", "float32", safe_m, _op("log", "float32", Stat(1, "float32")))]
        online = ()
    elif name == "linalg_vector_norm":
        ordv = float(kw.get("ord", 2.0))
        ex = _cast_to(e, "float32")
        a = _op("abs", "float32", ex)
        if ordv == 2.0:
            stats.append(StatSpec("sum", _op("mul", "float32", ex, ex), "float32"))
            outs = [_op("sqrt", "float32", Stat(0, "float32"))]
        elif ordv == 1.0:
            stats.append(StatSpec("sum", a, "float32"))
            outs = [Stat(0, "float32")]
        elif ordv == float("inf"):
            stats.append(StatSpec("max", a, "float32"))
            outs = [Stat(0, "float32")]
        elif ordv == float("-inf"):
            stats.append(StatSpec("min", a, "float32"))
            outs = [Stat(0, "float32")]
        elif ordv == 0.0:
            stats.append(StatSpec("sum", _op("cast", "float32", _op("ne", "bool", ex, 0.0)), "float32"))
            outs = [Stat(0, "float32")]
        else:
            p = P.build_pointwise("aten.pow", {"self": a, "exponent": ordv}, "float32")
            stats.append(StatSpec("sum", p, "float32"))
            outs = [P.build_pointwise("aten.pow", {"self": Stat(0, "float32"), "exponent": 1.0 / ordv}, "float32")]
    elif name in ("any", "all"):
        nz = _op("cast", "int64", _op("ne", "bool", e, 0))
        stats.append(StatSpec("max" if name == "any" else "min", nz, "int64"))
        outs = [Stat(0, "int64")]
    else:
        raise Unsupported(f"reduction {packet}", [str(node.target)])
    outs = [_cast_to(o, d) for o, d in zip(outs, out_dts)]
    kernel = RowKernel(
        kind="reduce", rank=rank, red_dims=dims, keepdim=keepdim, stats=stats, outputs=outs,
        online=online, shape=code, family="reduction",
    )  # fmt: skip
    kernel.space_shape = shape
    tvs = _emit(low, node, kernel, list(zip(out_dts, out_shapes)), [packet])
    low.env[node] = tvs[0] if not isinstance(val, (list, tuple)) else TupleVal(list(tvs))


def lower_row(low: Any, node: Any, packet: str) -> None:
    """softmax / log_softmax / layer_norm -> RowKernel(row)."""
    kw = _schema_kwargs(node)
    val = _meta(node)
    src, e, shape, code = _source(low, kw.get("self", kw.get("input")))
    rank = len(shape)
    first = val[0] if isinstance(val, (list, tuple)) else val
    out_dt = _dtype_name(first.dtype)
    ex = _cast_to(e, "float64" if src.dtype == "float64" else "float32")
    fdt = ex.dtype
    n = _op("cast", fdt, RedCount())
    if packet in ("aten._softmax", "aten._log_softmax", "aten.softmax", "aten.log_softmax", "aten._safe_softmax"):
        dims = _dims(kw["dim"], rank)
        stats = [StatSpec("max", ex, fdt)]
        m = Stat(0, fdt)
        safe_m = _op("where", fdt, _op("isinf", "bool", m), 0.0, m)
        shifted = _op("sub", fdt, ex, safe_m)
        ex_shifted = _op("exp", fdt, shifted)
        stats.append(StatSpec("sum", ex_shifted, fdt))
        s = Stat(1, fdt)
        if "log" in packet:
            out: Expr = _op("sub", fdt, shifted, _op("log", fdt, s))
        else:
            out = _op("div", fdt, ex_shifted, s)
        if packet == "aten._safe_softmax":  # rows that are -inf everywhere give 0, not nan
            out = _op("where", fdt, _op("eq", "bool", s, 0.0), 0.0, out)
        kernel = RowKernel(
            "row", rank, dims, True, stats, [_cast_to(out, out_dt)], online=(0,), shape=code, family="softmax"
        )
        ops = [packet]
        outs = [(out_dt, _shape(first))]
    else:  # native_layer_norm
        k = len(kw["normalized_shape"])
        dims = tuple(range(rank - k, rank))
        stats = [StatSpec("sum", ex, fdt)]
        mean = _op("div", fdt, Stat(0, fdt), n)
        d = _op("sub", fdt, ex, mean)
        stats.append(StatSpec("sum", _op("mul", fdt, d, d), fdt))
        rstd = _op("rsqrt", fdt, _op("add", fdt, _op("div", fdt, Stat(1, fdt), n), float(kw["eps"])))
        out = _op("mul", fdt, d, rstd)
        for key, op in (("weight", "mul"), ("bias", "add")):
            if kw.get(key) is not None:
                w = low.materialize(low.value(kw[key]))
                out = _op(op, fdt, out, _cast_to(Load(w.var, w.dtype), fdt))
        kernel = RowKernel("row", rank, dims, True, stats, [_cast_to(out, out_dt)], shape=code, family="norm")
        ops = [packet]
        outs = [(out_dt, _shape(first))]
    kernel.space_shape = shape
    tvs = _emit(low, node, kernel, outs, ops)
    if isinstance(val, (list, tuple)):
        low.env[node] = TupleVal([tvs[0]] + [None] * (len(val) - 1))
    else:
        low.env[node] = tvs[0]


def lower_matmul(low: Any, node: Any, packet: str) -> None:
    """mm / addmm / bmm / baddbmm / mv -> MatmulKernel with the bias as epilogue."""
    kw = _schema_kwargs(node)
    val = _meta(node)
    out_dt = _dtype_name(val.dtype)
    out_shape = _shape(val)
    if packet in ("aten.mm", "aten.bmm", "aten.mv"):
        a = low.materialize(low.value(kw["self"]))
        b = low.materialize(low.value(kw["mat2"] if packet != "aten.mv" else kw["vec"]))
        bias = None
    else:
        a = low.materialize(low.value(kw["mat1" if packet == "aten.addmm" else "batch1"]))
        b = low.materialize(low.value(kw["mat2" if packet == "aten.addmm" else "batch2"]))
        bias = low.value(kw["self"])
    if packet == "aten.mv":
        var = low.fresh("vec_col")
        low.steps.append(ViewStep(var, f"{b.var}.unsqueeze(1)", b.var))
        b = TVal(var, b.dtype, (*b.shape, "1"), b.base)
        low.var_info[var] = b
    acc = Stat(0, "float32" if out_dt != "float64" else "float64")
    out: Expr = acc
    if bias is not None:
        alpha, beta = kw.get("alpha", 1), kw.get("beta", 1)
        if alpha != 1:
            out = _op("mul", acc.dtype, out, float(alpha))
        be = low.expr_of(bias, out_shape)
        if beta != 0:
            be = _cast_to(be, acc.dtype)
            if beta != 1:
                be = _op("mul", acc.dtype, be, float(beta))
            out = _op("add", acc.dtype, out, be)
    rank = 3 if packet in ("aten.bmm", "aten.baddbmm") else 2
    kernel = MatmulKernel(a.var, b.var, a.dtype, b.dtype, rank, [_cast_to(out, out_dt)])
    shape = out_shape if packet != "aten.mv" else (*out_shape, "1")
    (tv,) = _emit(low, node, kernel, [(out_dt, shape)], [packet])
    if packet == "aten.mv":
        var = low.fresh(node.name)
        low.steps.append(ViewStep(var, f"{tv.var}.squeeze(1)", tv.var))
        tv = TVal(var, out_dt, out_shape)
        low.var_info[var] = tv
    low.env[node] = tv


def lower_scan(low: Any, node: Any, packet: str) -> None:
    """cumsum / cumprod along one dim -> ScanKernel."""
    kw = _schema_kwargs(node)
    val = _meta(node)
    src, e, shape, code = _source(low, kw["self"])
    rank = len(shape)
    out_dt = _dtype_name(val.dtype)
    acc = _acc(out_dt)
    if code is not None:  # a value with an explicit shape (cat, pad, expand): materialize it first
        t = low.materialize(src)
        e = Load(t.var, t.dtype)
    dim = int(kw["dim"]) % max(rank, 1)
    kernel = ScanKernel(
        rank, dim, "sum" if packet == "aten.cumsum" else "prod", _cast_to(e, acc), acc, [_cast_to(Stat(0, acc), out_dt)]
    )
    (tv,) = _emit(low, node, kernel, [(out_dt, _shape(val))], [packet])
    low.env[node] = tv


def lower_window(low: Any, node: Any, packet: str) -> None:
    """max/avg pooling -> WindowKernel (indices of max pooling are not produced)."""
    kw = _schema_kwargs(node)
    val = _meta(node)
    first = val[0] if isinstance(val, (list, tuple)) else val
    x = low.materialize(low.value(kw["self"]))
    nd = int(packet[-1]) if packet[-1].isdigit() else int(packet.split("pool")[1][0])
    for p in ("max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d"):
        if p in packet:
            nd = int(p[-2])

    def ints(v: Any, default: list[int] | None = None) -> list[int]:
        if v is None or (isinstance(v, (list, tuple)) and len(v) == 0):
            assert default is not None
            return default
        v = [v] if isinstance(v, int) else list(v)
        if any(not isinstance(i, int) for i in v):
            raise Unsupported("pooling with run-time window sizes", [str(node.target)])
        return v * nd if len(v) == 1 else v

    k = ints(kw["kernel_size"])
    stride = ints(kw.get("stride"), k)
    pad = ints(kw.get("padding"), [0] * nd)
    dil = ints(kw.get("dilation"), [1] * nd) if "max" in packet else [1] * nd
    out_dt = _dtype_name(first.dtype)
    op = "max" if "max" in packet else "avg"
    wk = WindowKernel(
        op=op, nd=nd, x_var=x.var, x_dtype=x.dtype, kernel=k, stride=stride, padding=pad, dilation=dil,
        ceil_mode=bool(kw.get("ceil_mode", False)), count_include_pad=bool(kw.get("count_include_pad", True)),
        divisor=kw.get("divisor_override"), outputs=[_cast_to(Stat(0, "float32"), out_dt)],
    )  # fmt: skip
    (tv,) = _emit(low, node, wk, [(out_dt, _shape(first))], [packet])
    low.env[node] = TupleVal([tv, None]) if isinstance(val, (list, tuple)) else tv


def lower_conv(low: Any, node: Any, packet: str) -> None:
    """aten.convolution (1-3 spatial dims, groups, transposed) -> ConvKernel with the bias as epilogue."""
    kw = _schema_kwargs(node)
    val = _meta(node)
    x = low.materialize(low.value(kw["input"]))
    w = low.materialize(low.value(kw["weight"]))
    nd = len(w.shape) - 2

    def ints(v: Any) -> list[int]:
        v = list(v) if isinstance(v, (list, tuple)) else [v]
        if any(not isinstance(i, int) for i in v):
            raise Unsupported("convolution with run-time stride/padding", [str(node.target)])
        return v * nd if len(v) == 1 else v

    if nd < 1 or nd > 3 or len(x.shape) != nd + 2:
        raise Unsupported("convolution of this rank", [str(node.target)])
    groups = kw["groups"]
    if not isinstance(groups, int):
        raise Unsupported("convolution with run-time groups", [str(node.target)])
    from evokernel.agent.offline.trace import RuntimeInt

    if isinstance(groups, RuntimeInt):
        groups = groups.expr  # e.g. depthwise: groups = the input's channels
    out_dt = _dtype_name(val.dtype)
    acc = Stat(0, "float32")
    out: Expr = acc
    if kw.get("bias") is not None:
        b = low.materialize(low.value(kw["bias"]))
        var = low.fresh("bias_col")
        low.steps.append(ViewStep(var, f"{b.var}.view(-1{', 1' * nd})", b.var))
        bt = TVal(var, b.dtype, (b.shape[0],) + ("1",) * nd, b.base)
        low.var_info[var] = bt
        out = _op("add", "float32", acc, _cast_to(Load(var, b.dtype), "float32"))
    kernel = ConvKernel(
        x_var=x.var, w_var=w.var, x_dtype=x.dtype, nd=nd, stride=ints(kw["stride"]), padding=ints(kw["padding"]),
        dilation=ints(kw["dilation"]), transposed=bool(kw["transposed"]), output_padding=ints(kw["output_padding"]),
        groups=groups, outputs=[_cast_to(out, out_dt)],
        family="conv_transpose" if bool(kw["transposed"]) else "conv",
    )  # fmt: skip
    (tv,) = _emit(low, node, kernel, [(out_dt, _shape(val))], [packet])
    low.env[node] = tv
