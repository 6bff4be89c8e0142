"""Lowering of data-movement and creation ops as elementwise expressions of coordinates and gathers.

``arange``/``full``/``zeros`` become expressions of coordinates; advanced indexing on trailing dims
(nearest/bilinear upsampling), ``cat``/``stack``, ``constant_pad_nd`` and ``embedding`` become
gather loads whose indices are clamped into range, with a ``where`` choosing the source (or the
pad value) -- so they fuse with the pointwise ops around them and never read out of bounds.
Each returns False when the call is outside what it handles (the caller then leaves it to torch).
"""

from __future__ import annotations

from typing import Any

from evokernel.agent.offline import ops as P
from evokernel.agent.offline.ir import Coord, Expr, Load, Op, Scalar, ViewStep
from evokernel.agent.offline.lowering import (
    EVal,
    TVal,
    _cast_to,
    _dtype_name,
    _meta,
    _schema_kwargs,
    _shape,
)

__all__ = ["lower_indexing"]


def _i(name: str, *args: Any) -> Op:
    return Op(name, tuple(a if isinstance(a, Expr) else P.const(a) for a in args), "int64")


def _b(name: str, *args: Any) -> Op:
    return Op(name, tuple(a if isinstance(a, Expr) else P.const(a) for a in args), "bool")


def _clamp(e: Expr, size: Expr) -> Expr:
    return _i("minimum", _i("maximum", e, 0), _i("sub", size, 1))


def lower_indexing(low: Any, node: Any, packet: str) -> bool:
    """Lower one indexing/creation node into an expression value; False: not handled here."""
    handler = {
        "aten._unsafe_index": _index,
        "aten.index": _index,
        "aten.arange": _arange,
        "aten.cat": _cat,
        "aten.stack": _stack,
        "aten.constant_pad_nd": _pad,
        "aten.embedding": _embedding,
    }.get(packet, _full)
    return handler(low, node)


def _index(low: Any, node: Any) -> bool:
    """x[..., i, j] with index tensors on the trailing dims (e.g. upsampling) -> a gather load."""
    kw = _schema_kwargs(node)
    val = _meta(node)
    src_v = low.value(kw["self"])
    indices = list(kw["indices"])
    rank = len(src_v.shape)
    lead = 0
    while lead < len(indices) and indices[lead] is None:
        lead += 1
    idx = indices[lead:]
    if not idx or any(i is None for i in idx) or lead + len(idx) != rank:
        return False
    out_shape = _shape(val)
    idx_vals = [low.value(i) for i in idx]
    if any(not isinstance(v, (TVal, EVal)) or len(v.shape) > len(idx) or v.dtype == "bool" for v in idx_vals):
        return False
    src = low.materialize(src_v)
    pairs = []
    for d, v in zip(range(lead, rank), idx_vals):
        e = low.expr_of(v, out_shape)
        size = Scalar(f"{src.var}.shape[{d}]", "int64")
        pairs.append((d - rank, Op("where", (_b("lt", e, 0), _i("add", e, size), e), "int64")))
    # the leading dims come from the source, the indexed ones from the (broadcast) index loads
    code = [f"{src.var}.shape[{d}]" for d in range(lead)] + ["-1"] * len(idx)
    low.env[node] = EVal(Load(src.var, src.dtype, gather=tuple(pairs)), src.dtype, out_shape, 3, shape_code=code,
                         positional=True, name=node.name)  # fmt: skip
    return True


def _term(low: Any, v: Any) -> Expr:
    x = low.expr_of(low.value(v), None)
    return x if isinstance(x, Expr) else P.const(x)


def _arange(low: Any, node: Any) -> bool:
    """arange(start, end, step) -> start + coordinate * step over an explicit length."""
    kw = _schema_kwargs(node)
    val = _meta(node)
    dtype = _dtype_name(val.dtype)
    start, end, step = kw.get("start", 0), kw["end"], kw.get("step", 1)
    s, e, st = low.py(start), low.py(end), low.py(step)
    length = f"max(0, -(-(({e}) - ({s})) // ({st})))"
    expr = Op("add", (_term(low, start), Op("mul", (Coord(-1), _term(low, step)), dtype)), dtype)
    low.env[node] = EVal(
        _cast_to(expr, dtype), dtype, _shape(val), 2, shape_code=[length], positional=True, name=node.name
    )
    return True


def _full(low: Any, node: Any) -> bool:
    """full/zeros/ones/new_full/new_zeros/new_ones -> a constant over an explicit shape."""
    kw = _schema_kwargs(node)
    val = _meta(node)
    dtype = _dtype_name(val.dtype)
    name = str(node.target.overloadpacket).removeprefix("aten.")
    value = kw.get("fill_value", 0 if "zeros" in name else 1)
    if not isinstance(value, (int, float, bool)):
        return False
    sizes = kw.get("size")
    if sizes is None:
        return False
    code = [low.py(s) for s in sizes]
    low.env[node] = EVal(P.const(value, dtype), dtype, _shape(val), 1, shape_code=code or None, name=node.name)
    return True


def _pieces(low: Any, tensors: list[Any], dim: int, rank: int) -> list[tuple[TVal, str]]:
    out = []
    for t in tensors:
        tv = low.materialize(low.value(t))
        if len(tv.shape) != rank:
            return []
        out.append((tv, f"{tv.var}.shape[{dim}]"))
    return out


def _cat(low: Any, node: Any) -> bool:
    """cat(tensors, dim) -> where(coordinate < size0, tensor0[...], tensor1[coordinate - size0], ...)."""
    kw = _schema_kwargs(node)
    val = _meta(node)
    rank = len(val.shape)
    if rank == 0:
        return False
    dim = int(kw.get("dim", 0)) % rank
    pieces = _pieces(low, list(kw["tensors"]), dim, rank)
    if not pieces:
        return False
    return _select_along(low, node, pieces, dim, rank, [f"{pieces[0][0].var}.shape[{d}]" for d in range(rank)])


def _select_along(low: Any, node: Any, pieces: list[tuple[TVal, str]], dim: int, rank: int, base: list[str]) -> bool:
    val = _meta(node)
    dtype = _dtype_name(val.dtype)
    coord = Coord(dim - rank)
    offset: Expr = P.const(0)
    expr: Expr | None = None
    starts: list[Expr] = []
    for _, size_code in pieces:
        starts.append(offset)
        offset = _i("add", offset, Scalar(size_code, "int64"))
    for (tv, size_code), start in reversed(list(zip(pieces, starts))):
        size = Scalar(size_code, "int64")
        load = Load(tv.var, tv.dtype, gather=((dim - rank, _clamp(_i("sub", coord, start), size)),))
        value = _cast_to(load, dtype)
        expr = value if expr is None else Op("where", (_b("lt", coord, _i("add", start, size)), value, expr), dtype)
    total = " + ".join(code for _, code in pieces)
    shape = list(base)
    shape[dim] = f"({total})"
    assert expr is not None
    low.env[node] = EVal(expr, dtype, _shape(val), 2 * len(pieces), shape_code=shape, positional=True, name=node.name)
    return True


def _stack(low: Any, node: Any) -> bool:
    """stack(tensors, dim) -> cat of the tensors unsqueezed at dim."""
    kw = _schema_kwargs(node)
    val = _meta(node)
    rank = len(val.shape)
    dim = int(kw.get("dim", 0)) % rank
    pieces = []
    for t in kw["tensors"]:
        tv = low.materialize(low.value(t))
        if len(tv.shape) != rank - 1:
            return False
        var = low.fresh("stack_piece")
        low.steps.append(ViewStep(var, f"{tv.var}.unsqueeze({dim})", tv.var))
        piece = TVal(var, tv.dtype, tv.shape[:dim] + ("1",) + tv.shape[dim:], tv.base)
        low.var_info[var] = piece
        pieces.append((piece, "1"))
    first = pieces[0][0].var
    return _select_along(low, node, pieces, dim, rank, [f"{first}.shape[{d}]" for d in range(rank)])


def _pad(low: Any, node: Any) -> bool:
    """constant_pad_nd(x, pad, value) -> where(inside, x[coordinate - before], value)."""
    kw = _schema_kwargs(node)
    val = _meta(node)
    x = low.materialize(low.value(kw["self"]))
    rank = len(x.shape)
    pad = list(kw["pad"])
    if len(pad) % 2 or len(pad) // 2 > rank:
        return False
    dtype = _dtype_name(val.dtype)
    fill = kw.get("value", 0)
    if not isinstance(fill, (int, float)):
        return False
    pairs = []
    inside: Expr | None = None
    shape = [f"{x.var}.shape[{d}]" for d in range(rank)]
    for i in range(len(pad) // 2):
        d = rank - 1 - i
        before, after = low.py(pad[2 * i]), low.py(pad[2 * i + 1])
        size = Scalar(f"{x.var}.shape[{d}]", "int64")
        src = _i("sub", Coord(d - rank), Scalar(f"({before})", "int64"))
        ok = _b("and", _b("ge", src, 0), _b("lt", src, size))
        inside = ok if inside is None else _b("and", inside, ok)
        pairs.append((d - rank, _clamp(src, size)))
        shape[d] = f"({x.var}.shape[{d}] + ({before}) + ({after}))"
    load = _cast_to(Load(x.var, x.dtype, gather=tuple(pairs)), dtype)
    expr = Op("where", (inside, load, P.const(fill)), dtype) if inside is not None else load
    low.env[node] = EVal(expr, dtype, _shape(val), 3, shape_code=shape, positional=True, name=node.name)
    return True


def _embedding(low: Any, node: Any) -> bool:
    """embedding(weight, indices) -> weight[indices[..., None], j] as a gather along the rows."""
    kw = _schema_kwargs(node)
    val = _meta(node)
    w = low.materialize(low.value(kw["weight"]))
    idx = low.materialize(low.value(kw["indices"]))
    if len(w.shape) != 2:
        return False
    var = low.fresh("indices_col")
    low.steps.append(ViewStep(var, f"{idx.var}.unsqueeze(-1)", idx.var))
    col = TVal(var, idx.dtype, idx.shape + ("1",), idx.base)
    low.var_info[var] = col
    rows = Scalar(f"{w.var}.shape[0]", "int64")
    index = _clamp(_cast_to(Load(var, idx.dtype), "int64"), rows)
    shape = [f"{idx.var}.shape[{d}]" for d in range(len(idx.shape))] + [f"{w.var}.shape[1]"]
    dtype = _dtype_name(val.dtype)
    expr = Load(w.var, w.dtype, gather=((-2, index),))
    low.env[node] = EVal(expr, dtype, _shape(val), 2, shape_code=shape, positional=True, name=node.name)
    return True
