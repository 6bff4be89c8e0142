"""The pointwise operators the generator knows: aten operators -> expressions of primitives.

Each builder receives the aten call's arguments by schema name (tensors already turned into
expressions, numbers as Python values) and the output dtype, and returns an expression made of
the primitives the renderer (``templates/common.py``) implements. Composite activations (GELU,
softplus, ELU, ...) are written out here once, in fp32 arithmetic.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from evokernel.agent.offline.ir import Const, Coord, Expr, Op

__all__ = ["POINTWISE", "PRIMITIVES", "build_pointwise", "is_float", "const", "promote"]

# primitives the renderer implements: name -> arity (None: any)
PRIMITIVES: dict[str, int] = {
    "add": 2, "sub": 2, "mul": 2, "div": 2, "idiv": 2, "mod": 2, "neg": 1, "abs": 1,
    "exp": 1, "exp2": 1, "log": 1, "log2": 1, "sqrt": 1, "rsqrt": 1, "sin": 1, "cos": 1,
    "erf": 1, "floor": 1, "ceil": 1, "sigmoid": 1, "maximum": 2, "minimum": 2, "where": 3,
    "eq": 2, "ne": 2, "lt": 2, "le": 2, "gt": 2, "ge": 2, "and": 2, "or": 2, "xor": 2,
    "not": 1, "cast": 1, "fill": 1, "isnan": 1, "isinf": 1,
}  # fmt: skip

FLOATS = ("float16", "bfloat16", "float32", "float64")
INTS = ("int8", "uint8", "int16", "int32", "int64")
_ORDER = ("bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64")


def is_float(dtype: str) -> bool:
    """True for floating dtypes."""
    return dtype in FLOATS


def promote(*dtypes: str) -> str:
    """A simple type promotion: the widest of the dtypes in bool < ints < floats order."""
    return max(dtypes, key=_ORDER.index)


def const(value: Any, dtype: str | None = None) -> Const:
    """A literal with a dtype inferred from the Python type unless given."""
    if dtype is None:
        dtype = "bool" if isinstance(value, bool) else "int64" if isinstance(value, int) else "float32"
    return Const(value, dtype)


def _e(value: Any, dtype: str) -> Expr:
    return value if isinstance(value, Expr) else const(value)


def _op(name: str, dtype: str, *args: Any, **params: Any) -> Op:
    return Op(name, tuple(_e(a, dtype) for a in args), dtype, params)


def _f(dtype: str) -> str:
    return dtype if is_float(dtype) else "float32"


# ---- builders: (kw, dtype) -> Expr ---------------------------------------------------------

Builder = Callable[[dict[str, Any], str], Expr]


def _scaled(x: Any, alpha: Any, dtype: str) -> Any:
    return x if alpha in (None, 1) else _op("mul", dtype, x, alpha)


def _add(kw: dict[str, Any], d: str) -> Expr:
    return _op("add", d, kw["self"], _scaled(kw["other"], kw.get("alpha"), d))


def _sub(kw: dict[str, Any], d: str) -> Expr:
    return _op("sub", d, kw["self"], _scaled(kw["other"], kw.get("alpha"), d))


def _rsub(kw: dict[str, Any], d: str) -> Expr:
    return _op("sub", d, kw["other"], _scaled(kw["self"], kw.get("alpha"), d))


def _div(kw: dict[str, Any], d: str) -> Expr:
    mode = kw.get("rounding_mode")
    a, b = kw["self"], kw["other"]
    if mode is None:
        return _op("div", d, a, b)
    if not is_float(d):
        if mode == "trunc":
            return _op("idiv", d, a, b)
        q = _op("idiv", d, a, b)  # floor division of ints: adjust truncation toward -inf
        return _op("sub", d, q, _op("cast", d, _truncation_off(_op("mod", d, a, b), b)))
    q = _op("div", d, a, b)
    return _op("floor", d, q) if mode == "floor" else _trunc_expr(q, d)


def _truncation_off(r: Expr, b: Any) -> Expr:
    """Where the truncated remainder ``r`` of a division by ``b`` differs from the floored one (torch's):
    r is not zero and its sign differs from b's."""
    return _op("and", "bool", _op("ne", "bool", r, 0), _op("ne", "bool", _op("lt", "bool", r, 0), _op("lt", "bool", b, 0)))


def _int_remainder(kw: dict[str, Any], d: str) -> Expr:
    """torch.remainder of integers (the sign of the divisor) from Triton's truncated ``%``."""
    a, b = kw["self"], kw["other"]
    r = _op("mod", d, a, b)
    return _op("where", d, _truncation_off(r, b), _op("add", d, r, b), r)


def _trunc_expr(x: Expr, d: str) -> Expr:
    return _op("where", d, _op("ge", "bool", x, 0.0), _op("floor", d, x), _op("ceil", d, x))


def _unary(name: str) -> Builder:
    return lambda kw, d: _op(name, d, kw["self"])


def _tanh(x: Any, d: str) -> Expr:
    # tanh(x) = 2 sigmoid(2x) - 1 (no tanh primitive on every Triton backend)
    return _op("sub", d, _op("mul", d, 2.0, _op("sigmoid", d, _op("mul", d, x, 2.0))), 1.0)


def _softplus(x: Any, beta: float, threshold: float, d: str) -> Expr:
    bx = _op("mul", d, x, float(beta)) if beta != 1 else x
    # log(1 + exp(z)) computed stably as max(z, 0) + log(1 + exp(-|z|))
    stable = _op(
        "add",
        d,
        _op("maximum", d, bx, 0.0),
        _op("log", d, _op("add", d, 1.0, _op("exp", d, _op("neg", d, _op("abs", d, bx))))),
    )
    soft = _op("div", d, stable, float(beta)) if beta != 1 else stable
    return _op("where", d, _op("gt", "bool", bx, float(threshold)), x, soft)


def _gelu(kw: dict[str, Any], d: str) -> Expr:
    x = kw["self"]
    if kw.get("approximate", "none") == "tanh":
        inner = _op(
            "mul",
            d,
            0.7978845608028654,
            _op("add", d, x, _op("mul", d, 0.044715, _op("mul", d, x, _op("mul", d, x, x)))),
        )
        return _op("mul", d, _op("mul", d, 0.5, x), _op("add", d, 1.0, _tanh(inner, d)))
    return _op("mul", d, _op("mul", d, 0.5, x), _op("add", d, 1.0, _op("erf", d, _op("mul", d, x, 0.7071067811865476))))


def _elu(kw: dict[str, Any], d: str) -> Expr:
    x = kw["self"]
    alpha, scale, iscale = float(kw.get("alpha", 1.0)), float(kw.get("scale", 1.0)), float(kw.get("input_scale", 1.0))
    neg = _op("mul", d, _op("sub", d, _op("exp", d, _op("mul", d, x, iscale)), 1.0), alpha * scale)
    return _op("where", d, _op("gt", "bool", x, 0.0), _op("mul", d, x, scale), neg)


def _clamp(kw: dict[str, Any], d: str) -> Expr:
    x = kw["self"]
    lo, hi = kw.get("min"), kw.get("max")
    if lo is not None:
        x = _op("maximum", d, x, lo)
    if hi is not None:
        x = _op("minimum", d, x, hi)
    return x if isinstance(x, Op) else _op("cast", d, x)


def _pow(kw: dict[str, Any], d: str) -> Expr:
    base, exp = kw["self"], kw["exponent"]
    if isinstance(exp, (int, float)) and not isinstance(exp, bool):
        e = float(exp)
        if e == 0.5:
            return _op("sqrt", d, base)
        if e == -0.5:
            return _op("rsqrt", d, base)
        if e.is_integer() and abs(e) <= 8:
            n = int(abs(e))
            if n == 0:
                return _op("fill", d, base, value=1)
            acc: Any = base
            for _ in range(n - 1):
                acc = _op("mul", d, acc, base)
            if n == 1:
                acc = _op("cast", d, base)
            return _op("div", d, 1.0, acc) if e < 0 else acc
        # non-integral exponent: nan for negative bases, as in torch
        return _op("exp2", d, _op("mul", d, _op("log2", d, base), e))
    if isinstance(base, (int, float)):
        return _op("exp2", d, _op("mul", d, exp, math.log2(base) if base > 0 else float("nan")))
    return _pow_tensor(base, exp, d)


def _pow_tensor(base: Any, exp: Any, d: str) -> Expr:
    """base ** exp for a tensor exponent, as torch computes it: |base| ** exp through exp2/log2, negated
    for a negative base and an odd integral exponent, NaN for a negative base and a fractional one,
    and 1 wherever the exponent is 0 (log2(0) * 0 would be NaN)."""
    magnitude = _op("exp2", d, _op("mul", d, _op("log2", d, _op("abs", d, base)), exp))
    integral = _op("eq", "bool", _op("floor", d, exp), exp)
    half = _op("mul", d, exp, 0.5)
    odd = _op("ne", "bool", _op("floor", d, half), half)
    signed = _op("where", d, odd, _op("neg", d, magnitude), magnitude)
    negative = _op("where", d, integral, signed, float("nan"))
    value = _op("where", d, _op("lt", "bool", base, 0.0), negative, magnitude)
    return _op("where", d, _op("eq", "bool", exp, 0.0), 1.0, value)


def _where(kw: dict[str, Any], d: str) -> Expr:
    return _op("where", d, kw["condition"], kw["self"], kw["other"])


def _cmp(name: str) -> Builder:
    return lambda kw, d: _op(name, "bool", kw["self"], kw["other"])


def _to_copy(kw: dict[str, Any], d: str) -> Expr:
    return _op("cast", d, kw["self"])


def _masked_fill(kw: dict[str, Any], d: str) -> Expr:
    return _op("where", d, kw["mask"], kw["value"], kw["self"])


def _round(kw: dict[str, Any], d: str) -> Expr:
    """torch.round: to the nearest integer, halves to even (decimals: scaled by 10 ** decimals)."""
    x = kw["self"]
    if not is_float(d):
        return _op("cast", d, x)
    scale = 10.0 ** int(kw.get("decimals", 0) or 0)
    if scale != 1.0:
        x = _op("mul", d, x, scale)
    r = _op("floor", d, _op("add", d, x, 0.5))
    half_up = _op("eq", "bool", _op("sub", d, r, x), 0.5)  # x was exactly between two integers
    odd = _op("ne", "bool", _op("mul", d, _op("floor", d, _op("mul", d, r, 0.5)), 2.0), r)
    r = _op("where", d, _op("and", "bool", half_up, odd), _op("sub", d, r, 1.0), r)
    return _op("div", d, r, scale) if scale != 1.0 else r


def _fill_like(value: Any) -> Builder:
    return lambda kw, d: _op("fill", d, kw["self"], value=kw.get("fill_value", value) if value is None else value)


def _xlogy(kw: dict[str, Any], d: str) -> Expr:
    x, y = kw["self"], kw["other"]
    prod = _op("mul", d, x, _op("log", d, y))
    res = _op("where", d, _op("eq", "bool", x, 0.0), 0.0, prod)
    return _op("where", d, _op("isnan", "bool", y), float("nan"), res)


def _triangle(upper: bool) -> Builder:
    def build(kw: dict[str, Any], d: str) -> Expr:
        k = int(kw.get("diagonal", 0))
        diff = Op("sub", (Coord(-1), Coord(-2)), "int64")
        keep = _op("ge" if upper else "le", "bool", diff, k)
        zero = const(0.0 if is_float(d) else 0, d if is_float(d) else None)
        return Op("where", (keep, kw["self"], zero), d)

    return build


def _hardsigmoid(x: Any, d: str) -> Expr:
    return _op("minimum", d, _op("maximum", d, _op("add", d, _op("div", d, x, 6.0), 0.5), 0.0), 1.0)


POINTWISE: dict[str, Builder] = {
    "aten.add": _add,
    "aten.sub": _sub,
    "aten.rsub": _rsub,
    "aten.mul": lambda kw, d: _op("mul", d, kw["self"], kw["other"]),
    "aten.div": _div,
    "aten.true_divide": _div,
    "aten.neg": _unary("neg"),
    "aten.abs": _unary("abs"),
    "aten.relu": lambda kw, d: _op("maximum", d, kw["self"], 0.0 if is_float(d) else 0),
    "aten.sigmoid": _unary("sigmoid"),
    "aten.tanh": lambda kw, d: _tanh(kw["self"], d),
    "aten.exp": _unary("exp"),
    "aten.exp2": _unary("exp2"),
    "aten.expm1": lambda kw, d: _op("sub", d, _op("exp", d, kw["self"]), 1.0),
    "aten.log": _unary("log"),
    "aten.log2": _unary("log2"),
    "aten.log10": lambda kw, d: _op("mul", d, _op("log", d, kw["self"]), 0.4342944819032518),
    "aten.log1p": lambda kw, d: _op("log", d, _op("add", d, kw["self"], 1.0)),
    "aten.sqrt": _unary("sqrt"),
    "aten.rsqrt": _unary("rsqrt"),
    "aten.reciprocal": lambda kw, d: _op("div", d, 1.0, kw["self"]),
    "aten.sin": _unary("sin"),
    "aten.cos": _unary("cos"),
    "aten.tan": lambda kw, d: _op("div", d, _op("sin", d, kw["self"]), _op("cos", d, kw["self"])),
    "aten.erf": _unary("erf"),
    "aten.erfc": lambda kw, d: _op("sub", d, 1.0, _op("erf", d, kw["self"])),
    "aten.floor": _unary("floor"),
    "aten.ceil": _unary("ceil"),
    "aten.trunc": lambda kw, d: _trunc_expr(kw["self"], d),
    "aten.frac": lambda kw, d: _op("sub", d, kw["self"], _trunc_expr(kw["self"], d)),
    "aten.sign": lambda kw, d: _op(
        "sub", d, _op("cast", d, _op("gt", "bool", kw["self"], 0)), _op("cast", d, _op("lt", "bool", kw["self"], 0))
    ),
    "aten.sgn": lambda kw, d: POINTWISE["aten.sign"](kw, d),
    "aten.square": lambda kw, d: _op("mul", d, kw["self"], kw["self"]),
    "aten.gelu": _gelu,
    "aten.silu": lambda kw, d: _op("mul", d, kw["self"], _op("sigmoid", d, kw["self"])),
    "aten.mish": lambda kw, d: _op("mul", d, kw["self"], _tanh(_softplus(kw["self"], 1.0, 20.0, d), d)),
    "aten.softplus": lambda kw, d: _softplus(kw["self"], float(kw.get("beta", 1.0)), float(kw.get("threshold", 20.0)), d),
    "aten.elu": _elu,
    "aten.celu": lambda kw, d: _elu({"self": kw["self"], "alpha": kw.get("alpha", 1.0), "input_scale": 1.0 / float(kw.get("alpha", 1.0))}, d),
    "aten.selu": lambda kw, d: _elu({"self": kw["self"], "alpha": 1.6732632423543772, "scale": 1.0507009873554805}, d),
    "aten.leaky_relu": lambda kw, d: _op(
        "where", d, _op("gt", "bool", kw["self"], 0.0), kw["self"], _op("mul", d, kw["self"], float(kw.get("negative_slope", 0.01)))
    ),
    "aten.hardtanh": lambda kw, d: _op(
        "minimum", d, _op("maximum", d, kw["self"], float(kw.get("min_val", -1.0))), float(kw.get("max_val", 1.0))
    ),
    "aten.hardsigmoid": lambda kw, d: _hardsigmoid(kw["self"], d),
    "aten.hardswish": lambda kw, d: _op("mul", d, kw["self"], _hardsigmoid(kw["self"], d)),
    "aten.log_sigmoid": lambda kw, d: _op(
        "sub", d, _op("minimum", d, kw["self"], 0.0),
        _op("log", d, _op("add", d, 1.0, _op("exp", d, _op("neg", d, _op("abs", d, kw["self"]))))),
    ),
    "aten.clamp": _clamp,
    "aten.clip": _clamp,
    "aten.clamp_min": lambda kw, d: _op("maximum", d, kw["self"], kw["min"]),
    "aten.clamp_max": lambda kw, d: _op("minimum", d, kw["self"], kw["max"]),
    "aten.pow": _pow,
    "aten.maximum": lambda kw, d: _op("maximum", d, kw["self"], kw["other"]),
    "aten.minimum": lambda kw, d: _op("minimum", d, kw["self"], kw["other"]),
    "aten.fmax": lambda kw, d: _op("maximum", d, kw["self"], kw["other"]),
    "aten.fmin": lambda kw, d: _op("minimum", d, kw["self"], kw["other"]),
    "aten.eq": _cmp("eq"),
    "aten.ne": _cmp("ne"),
    "aten.lt": _cmp("lt"),
    "aten.le": _cmp("le"),
    "aten.gt": _cmp("gt"),
    "aten.ge": _cmp("ge"),
    "aten.logical_and": lambda kw, d: _op("and", "bool", kw["self"], kw["other"]),
    "aten.logical_or": lambda kw, d: _op("or", "bool", kw["self"], kw["other"]),
    "aten.logical_xor": lambda kw, d: _op("xor", "bool", kw["self"], kw["other"]),
    "aten.logical_not": lambda kw, d: _op("not", "bool", kw["self"]),
    "aten.bitwise_not": lambda kw, d: _op("not", d, kw["self"]),
    "aten.bitwise_and": lambda kw, d: _op("and", d, kw["self"], kw["other"]),
    "aten.bitwise_or": lambda kw, d: _op("or", d, kw["self"], kw["other"]),
    "aten.isnan": lambda kw, d: _op("isnan", "bool", kw["self"]),
    "aten.isinf": lambda kw, d: _op("isinf", "bool", kw["self"]),
    "aten.where": _where,
    "aten.masked_fill": _masked_fill,
    "aten._to_copy": _to_copy,
    "aten.clone": lambda kw, d: _op("cast", d, kw["self"]),
    "aten.copy": lambda kw, d: _op("cast", d, kw["src"]),
    "aten.fill": lambda kw, d: _op("fill", d, kw["self"], value=kw["value"]),
    "aten.full_like": _fill_like(None),
    "aten.zeros_like": _fill_like(0),
    "aten.ones_like": _fill_like(1),
    # its values are never read before something overwrites them (a decomposition's empty_like + fill)
    "aten.empty_like": _fill_like(0),
    "aten.floor_divide": lambda kw, d: _div({**kw, "rounding_mode": "floor"}, d),
    "aten.round": _round,
    "aten.xlogy": _xlogy,
    "aten.threshold": lambda kw, d: _op("where", d, _op("le", "bool", kw["self"], kw["threshold"]), kw["value"], kw["self"]),
    "aten.lerp": lambda kw, d: _op("add", d, kw["self"], _op("mul", d, kw["weight"], _op("sub", d, kw["end"], kw["self"]))),
    "aten.remainder": lambda kw, d: _op(
        "sub", d, kw["self"], _op("mul", d, _op("floor", d, _op("div", d, kw["self"], kw["other"])), kw["other"])
    )
    if is_float(d)
    else _int_remainder(kw, d),
    "aten.fmod": lambda kw, d: _op("sub", d, kw["self"], _op("mul", d, _trunc_expr(_op("div", d, kw["self"], kw["other"]), d), kw["other"])),
    "aten.triu": _triangle(True),
    "aten.tril": _triangle(False),
    "aten.hardshrink": lambda kw, d: _op(
        "where", d, _op("gt", "bool", _op("abs", d, kw["self"]), float(kw.get("lambd", 0.5))), kw["self"], 0.0
    ),
    "aten.softshrink": lambda kw, d: _op(
        "where", d, _op("gt", "bool", kw["self"], float(kw.get("lambd", 0.5))), _op("sub", d, kw["self"], float(kw.get("lambd", 0.5))),
        _op("where", d, _op("lt", "bool", kw["self"], -float(kw.get("lambd", 0.5))), _op("add", d, kw["self"], float(kw.get("lambd", 0.5))), 0.0),
    ),
}  # fmt: skip


def build_pointwise(packet: str, kw: dict[str, Any], dtype: str) -> Expr:
    """Expression for the aten pointwise operator ``packet`` (e.g. "aten.add") with arguments ``kw``."""
    expr = POINTWISE[packet](kw, dtype)
    if expr.dtype != dtype:  # e.g. where() of mixed operands: make the node carry the aten output dtype
        expr = Op("cast", (expr,), dtype)
    return expr
