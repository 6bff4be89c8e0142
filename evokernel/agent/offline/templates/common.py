"""Shared pieces of the templates: rendering expressions to Triton, index math, host helpers."""

from __future__ import annotations

import math
from typing import Any, Callable

from evokernel.agent.offline.ir import Const, Coord, Expr, Load, Op, RedCount, Scalar, Stat

__all__ = [
    "Emitter",
    "ctype",
    "tl_type",
    "literal",
    "torch_dtype",
    "decompose",
    "HOST_HELPERS",
    "indent",
    "jit_kernel",
    "size_guard",
]

_STORAGE = {
    "float16": "fp16", "bfloat16": "bf16", "float32": "fp32", "float64": "fp64", "bool": "i1",
    "int8": "i8", "uint8": "u8", "int16": "i16", "int32": "i32", "int64": "i64",
}  # fmt: skip
_TL = {
    "fp16": "tl.float16", "bf16": "tl.bfloat16", "fp32": "tl.float32", "fp64": "tl.float64", "i1": "tl.int1",
    "i8": "tl.int8", "u8": "tl.uint8", "i16": "tl.int16", "i32": "tl.int32", "i64": "tl.int64",
}  # fmt: skip
_FLOAT_CT = ("fp16", "bf16", "fp32", "fp64")


def ctype(dtype: str, compute: bool = True) -> str:
    """Triton type tag of a torch dtype name; with ``compute``, half types widen to fp32."""
    ct = _STORAGE[dtype]
    if compute and ct in ("fp16", "bf16"):
        return "fp32"
    return ct


def tl_type(ct: str) -> str:
    """``tl.float32`` etc. for a type tag."""
    return _TL[ct]


def torch_dtype(dtype: str) -> str:
    """``torch.float32`` etc. for a dtype name."""
    return f"torch.{dtype}"


def literal(value: Any, ct: str) -> str:
    """A Python literal usable inside a Triton kernel, as type tag ``ct``."""
    if ct in _FLOAT_CT:
        v = float(value)
        if math.isnan(v):
            return 'float("nan")'
        if math.isinf(v):
            return 'float("inf")' if v > 0 else 'float("-inf")'
        return repr(v)
    if ct == "i1":
        return "True" if value else "False"
    return str(int(value))


def literal_value(code: str) -> float:
    """The number a literal produced by :func:`literal` stands for."""
    special = {"True": 1.0, "False": 0.0, 'float("inf")': float("inf"), 'float("-inf")': float("-inf"),
               'float("nan")': float("nan")}  # fmt: skip
    return special[code] if code in special else float(code)


def jit_kernel(name: str, params: list[str], body: list[str]) -> str:
    """Source of one ``@triton.jit`` function."""
    return "\n".join(["@triton.jit", f"def {name}({', '.join(params)}):", *indent(body)]) + "\n"


def size_guard(violated: str, message: str, values: str) -> list[str]:
    """Launcher lines that raise ValueError where a risky configuration's size assumption fails
    (``violated``: a host expression; ``message``: a str.format text filled from ``values``), so that
    such a kernel is never silently wrong on sizes it was not verified at."""
    return [f"if {violated}:", f"    raise ValueError({message!r}.format({values}))"]


def indent(lines: list[str], n: int = 4) -> list[str]:
    """Indent each line by ``n`` spaces."""
    return [" " * n + ln if ln else ln for ln in lines]


def decompose(index: str, sizes: list[str], names: list[str]) -> list[str]:
    """Lines splitting linear ``index`` into coordinates ``names`` over ``sizes`` (row-major)."""
    if not names:
        return []
    lines = []
    rem = index
    for i in range(len(names) - 1, 0, -1):
        lines.append(f"{names[i]} = {rem} % {sizes[i]}")
        nxt = f"_r{names[i]}"
        lines.append(f"{nxt} = {rem} // {sizes[i]}")
        rem = nxt
    lines.append(f"{names[0]} = {rem}")
    return lines


class Emitter:
    """Renders expression DAGs to Triton statements, once per node, casting as torch would.

    ``load(node) -> code`` emits the template-specific load (its value has the storage type of the
    node's dtype); ``coord(dim)``, ``stat(index)``, ``scalar(node)`` and ``redcount()`` return code.
    """

    def __init__(
        self,
        load: Callable[[Load], str],
        coord: Callable[[int], str] | None = None,
        stat: Callable[[int], tuple[str, str]] | None = None,
        scalar: Callable[[Scalar], str] | None = None,
        redcount: Callable[[], str] | None = None,
        prefix: str = "v",
        preset: dict[int, tuple[str, str, bool]] | None = None,
    ) -> None:
        self._load = load
        self._coord = coord
        self._stat = stat
        self._scalar = scalar
        self._redcount = redcount
        self.prefix = prefix
        self.lines: list[str] = []
        self._memo: dict[int, tuple[str, str, bool]] = dict(preset or {})
        self._n = 0
        self._scalar_codes: set[str] = set()  # kernel scalar arguments (may be specialized constexprs)

    def _fresh(self) -> str:
        self._n += 1
        return f"{self.prefix}{self._n}"

    def _emit(self, code: str) -> str:
        name = self._fresh()
        self.lines.append(f"{name} = {code}")
        return name

    # value: (code, type tag, is_literal)
    def value(self, e: Expr) -> tuple[str, str, bool]:
        """Code for expression ``e`` (emitting statements as needed), its type tag, literal flag."""
        key = id(e)
        if key in self._memo:
            return self._memo[key]
        out = self._value(e)
        self._memo[key] = out
        return out

    def cast(self, v: tuple[str, str, bool], ct: str) -> str:
        """Code of value ``v`` converted to type tag ``ct``."""
        code, have, lit = v
        if have == ct:
            return code
        if code in self._scalar_codes:  # Triton turns an int argument equal to 1 into a constexpr: no .to()
            if ct in ("fp32", "fp16", "bf16"):
                return f"({code} * 1.0)"
            if ct != "i1" and have not in _FLOAT_CT:
                return code
        if lit:
            value = literal_value(code)
            if ct in _FLOAT_CT or value != value or value in (float("inf"), float("-inf")):
                return literal(value, ct) if ct in _FLOAT_CT else code
            return literal(int(value), ct)
        if ct == "i1":
            return f"({code} != 0)"
        return f"{code}.to({tl_type(ct)})"

    def as_type(self, e: Expr, ct: str) -> str:
        """Code of ``e`` converted to type tag ``ct``."""
        return self.cast(self.value(e), ct)

    def _value(self, e: Expr) -> tuple[str, str, bool]:
        if isinstance(e, Const):
            ct = ctype(e.dtype)
            return literal(e.value, ct), ct, True
        if isinstance(e, Load):
            code = self._load(e)
            st = ctype(e.dtype, compute=False)
            ct = ctype(e.dtype)
            if st != ct:
                code = self._emit(f"{code}.to({tl_type(ct)})")
            return code, ct, False
        if isinstance(e, Scalar):
            assert self._scalar is not None
            code = self._scalar(e)
            self._scalar_codes.add(code)
            return code, ctype(e.dtype), False
        if isinstance(e, Coord):
            assert self._coord is not None, "coordinates are not available in this template"
            return self._coord(e.dim), "i64", False
        if isinstance(e, Stat):
            assert self._stat is not None
            code, ct = self._stat(e.index)
            return code, ct, False
        if isinstance(e, RedCount):
            assert self._redcount is not None
            code = self._redcount()
            self._scalar_codes.add(code)
            return code, "i64", False
        if isinstance(e, Op):
            return self._op(e)
        raise TypeError(f"cannot render {type(e).__name__}")

    def _op(self, e: Op) -> tuple[str, str, bool]:
        ct = ctype(e.dtype)
        name = e.op
        args = e.args
        if name == "fill":
            return literal(e.params["value"], ct), ct, True
        if name == "cast":
            return self.cast(self.value(args[0]), ct), ct, False
        if name in ("eq", "ne", "lt", "le", "gt", "ge"):
            vals = [self.value(a) for a in args]
            common = _promote_ct([v[1] for v in vals])
            a, b = (self.cast(v, common) for v in vals)
            sym = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}[name]
            return self._emit(f"{a} {sym} {b}"), "i1", False
        if name in ("and", "or", "xor"):
            a, b = (self.as_type(x, ct) for x in args)
            sym = {"and": "&", "or": "|", "xor": "^"}[name]
            return self._emit(f"{a} {sym} {b}"), ct, False
        if name == "not":
            a = self.value(args[0])
            if ct == "i1":
                return self._emit(f"{self.cast(a, a[1])} == 0"), "i1", False
            return self._emit(f"~{self.cast(a, ct)}"), ct, False
        if name in ("isnan", "isinf"):
            a = self.value(args[0])
            if a[1] not in _FLOAT_CT:
                return "0", "i1", True
            code = f"{a[0]} != {a[0]}" if name == "isnan" else f'tl.abs({a[0]}) == float("inf")'
            return self._emit(code), "i1", False
        if name == "where":
            cv = self.value(args[0])
            if cv[2]:  # a literal condition: pick the branch now
                v = self.value(args[1] if literal_value(cv[0]) != 0 else args[2])
                return (self.cast(v, ct), ct, v[2])
            c = self.as_type(args[0], "i1")
            a, b = (self.as_type(x, ct) for x in args[1:])
            if ct == "i1" and (a, b) == ("True", "False"):
                return c, ct, False
            if ct == "i1" and (a, b) == ("False", "True"):
                return self._emit(f"{c} == 0"), ct, False
            code = f"tl.where({c}, {a}, {b})"
            return self._emit(f"({code}) != 0" if ct == "i1" else code), ct, False
        vals = [self.as_type(a, ct) for a in args]
        binops = {"add": "+", "sub": "-", "mul": "*", "div": "/", "idiv": "//", "mod": "%"}
        if name in binops:
            a, b = vals
            if name == "div" and ct not in _FLOAT_CT:
                raise TypeError("true division with an integer result type")
            return self._emit(f"{a} {binops[name]} {b}"), ct, False
        if name == "neg":
            return self._emit(f"-{vals[0]}"), ct, False
        if name in ("maximum", "minimum"):
            return self._emit(f"tl.{name}({vals[0]}, {vals[1]})"), ct, False
        funcs = {
            "abs": "tl.abs", "exp": "tl.exp", "exp2": "tl.exp2", "log": "tl.log", "log2": "tl.log2",
            "sqrt": "tl.sqrt", "rsqrt": "tl.rsqrt", "sin": "tl.sin", "cos": "tl.cos", "erf": "tl.erf",
            "floor": "tl.floor", "ceil": "tl.ceil", "sigmoid": "tl.sigmoid",
        }  # fmt: skip
        if name in funcs:
            arg = vals[0]
            if self.value(args[0])[2]:  # a literal argument: make it a tensor of the right type
                arg = f"tl.full([1], {arg}, {tl_type(ct)})"
            return self._emit(f"{funcs[name]}({arg})"), ct, False
        raise KeyError(f"no renderer for pointwise primitive {name!r}")


def _promote_ct(cts: list[str]) -> str:
    order = ["i1", "u8", "i8", "i16", "i32", "i64", "fp16", "bf16", "fp32", "fp64"]
    best = max(cts, key=order.index)
    return "fp32" if best in ("fp16", "bf16") else best


# Python helpers placed once in every generated file (host side: pure Python on shapes/strides).
HOST_HELPERS = '''
@triton.jit
def _evk_mul(a, b):
    return a * b


def _evk_bshape(*shapes):
    """Broadcast shape of several shapes (numpy rules), in pure Python."""
    rank = max((len(s) for s in shapes), default=0)
    out = [1] * rank
    for s in shapes:
        for i, n in enumerate(s):
            j = rank - len(s) + i
            if n != 1:
                if out[j] != 1 and out[j] != n:
                    raise ValueError(f"shapes {shapes} do not broadcast")
                out[j] = n
    return tuple(out)


def _evk_bstrides(t, shape, flip=()):
    """Strides of tensor t broadcast into shape (0 on broadcast dims), right-aligned.

    Flipped dims are returned as (stride, size) pairs' stride only; the kernel reads them reversed.
    """
    rank = len(shape)
    tshape = tuple(t.shape)
    tstride = t.stride()
    out = [0] * rank
    for i, n in enumerate(tshape):
        j = rank - len(tshape) + i
        if n != 1:
            out[j] = tstride[i]
    return out


def _evk_rstrides(t, rank):
    """Strides of t right-aligned into rank dims (no broadcast check; gathers)."""
    st = list(t.stride())
    return [0] * (rank - len(st)) + st


def _evk_cstrides(shape):
    """Contiguous (row-major) strides of a shape."""
    out = [0] * len(shape)
    acc = 1
    for i in range(len(shape) - 1, -1, -1):
        out[i] = acc
        acc *= shape[i]
    return out


def _evk_numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def _evk_pad(shape, rank):
    """Left-pad a shape with ones to rank dims."""
    return (1,) * (rank - len(shape)) + tuple(shape)


def _evk_expand(base, sizes):
    """Shape of an expand: -1 keeps the (right-aligned) size of base."""
    base = _evk_pad(base, len(sizes))
    return tuple(b if s == -1 else s for b, s in zip(base, sizes))


def _evk_pool_out(size, k, s, p, d, ceil):
    """Output length of a pooling window (torch's formula, ceil_mode included)."""
    num = size + 2 * p - d * (k - 1) - 1
    out = (num + (s - 1 if ceil else 0)) // s + 1
    if ceil and (out - 1) * s >= size + p:
        out -= 1
    return out


def _evk_pad_strides(x, nd, nlead):
    """Strides of the leading dims of x (innermost nlead kept; merged leading dims must be contiguous)."""
    st = list(x.stride()[: x.dim() - nd])
    return [0] * max(nlead - len(st), 0) + st[len(st) - min(len(st), nlead):]


def _evk_conv_out(size, k, s, p, d, transposed, output_padding):
    """Output length of a (transposed) convolution along one dim."""
    if transposed:
        return (size - 1) * s - 2 * p + d * (k - 1) + output_padding + 1
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def _evk_next_pow2(n):
    return 1 << max(int(n) - 1, 0).bit_length()
'''


class Operands:
    """Kernel operands of a template instance: distinct tensors (by Load.key) and scalars.

    The launcher takes one parameter per distinct forward variable (``a0, a1, ...``) and per
    scalar (``n0, ...``); the kernel takes one pointer per distinct load key (``p0, p1, ...``).
    """

    def __init__(self, loads: list[Load], scalars: list[Scalar], shape: list[str] | None = None) -> None:
        self.loads = loads
        self.keys = [ld.key() for ld in loads]
        self.vars: list[str] = []
        for ld in loads:
            if ld.var not in self.vars:
                self.vars.append(ld.var)
        self.scalars = scalars
        self.shape = list(shape or [])  # forward expressions of an explicit shape: launcher params x0..

    def index(self, load: Load) -> int:
        """Kernel pointer index of a load."""
        return self.keys.index(load.key())

    def tensor(self, load: Load) -> str:
        """Launcher parameter holding the tensor a load reads."""
        return f"a{self.vars.index(load.var)}"

    def scalar(self, s: Scalar) -> str:
        """Launcher/kernel parameter holding a scalar."""
        return f"n{[x.expr for x in self.scalars].index(s.expr)}"

    def shape_params(self) -> list[str]:
        """Launcher parameters holding the explicit shape."""
        return [f"x{i}" for i in range(len(self.shape))]

    def broadcast_tensors(self, loads: list[Load], *, full_only: bool = False) -> list[str]:
        """Launcher tensors whose shapes broadcast to the kernel's (gathers excluded; once each)."""
        out: list[str] = []
        for ld in loads:
            if ld.gather is None and (ld.space == "full" or not full_only) and self.tensor(ld) not in out:
                out.append(self.tensor(ld))
        return out

    def device(self) -> str:
        """Launcher expression of the device to allocate outputs on."""
        return "a0.device" if self.vars else "dev"

    def launcher_params(self) -> list[str]:
        """Parameters of the launcher function."""
        extra = [] if self.vars else ["dev"]
        return (
            [f"a{i}" for i in range(len(self.vars))]
            + [f"n{i}" for i in range(len(self.scalars))]
            + self.shape_params()
            + extra
        )

    def call_args(self) -> list[str]:
        """Arguments the forward passes to the launcher."""
        extra = [] if self.vars else ["_evk_device"]
        return list(self.vars) + [s.expr for s in self.scalars] + self.shape + extra


def load_offset(
    ops: Operands,
    load: Load,
    rank: int,
    coord: Callable[[int], str],
    size: Callable[[int], str],
    emitter: Emitter | None,
) -> str:
    """Offset expression of a strided load at the current coordinates (flip and gather applied)."""
    j = ops.index(load)
    terms = []
    gathered = {(rank + d if d < 0 else d): e for d, e in (load.gather or ())}
    flips = {rank + d if d < 0 else d for d in load.flip}
    for d in range(rank):
        if d in gathered:
            assert emitter is not None
            idx = emitter.as_type(gathered[d], "i64")
            terms.append(f"{idx} * st{j}_{d}")
        elif d in flips:
            terms.append(f"({size(d)} - 1 - {coord(d)}) * st{j}_{d}")
        else:
            terms.append(f"{coord(d)} * st{j}_{d}")
    return " + ".join(terms) if terms else "0"


def stride_params(ops: Operands, rank: int) -> list[str]:
    """Kernel parameters for the strides of every load: st{j}_{d}."""
    return [f"st{j}_{d}" for j in range(len(ops.loads)) for d in range(rank)]


def stride_args(ops: Operands, rank: int, shape: str, out_shape: str | None = None) -> tuple[list[str], list[str]]:
    """Launcher lines computing the strides of every load, and the argument list passing them."""
    lines = []
    for j, ld in enumerate(ops.loads):
        t = ops.tensor(ld)
        target = out_shape if (ld.space == "out" and out_shape is not None) else shape
        if ld.gather is not None:
            lines.append(f"st{j} = _evk_rstrides({t}, {rank})")
        else:
            lines.append(f"st{j} = _evk_bstrides({t}, {target})")
    return lines, [f"*st{j}" for j in range(len(ops.loads))]
