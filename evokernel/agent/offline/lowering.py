"""Lower a traced aten graph into a plan of template instances (or say what cannot be lowered).

Walks the graph once, in order. Pointwise operators become expressions that stay symbolic
(inlined into their consumer) while they have one user or are cheap to recompute; everything
else materializes into a forward variable: a Triton kernel instance (elementwise, reduction,
softmax/norm rows, scan, matmul, window), a view (no copy), a size computation, or -- for
operators no template covers -- a call to the aten operator itself (policy ``mixed``).
Fusion across kernels that depends on the configuration happens later, in :mod:`.fusion`.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass, field
from typing import Any

from evokernel.agent.offline import ops as P
from evokernel.agent.offline.ir import (
    Coord,
    ElementwiseKernel,
    Expr,
    KernelStep,
    Load,
    Op,
    Plan,
    Scalar,
    ShapeStep,
    TorchStep,
    ViewStep,
    walk,
)
from evokernel.agent.offline.trace import (
    RuntimeFloat,
    RuntimeInt,
    Traced,
    TraceError,
    placeholder_var,
    trace_for_any_size,
)

__all__ = ["Unsupported", "lower", "lower_program", "VIEW_OPS", "REDUCTIONS"]

# recompute an inlined pointwise value in each consumer up to this many nodes, else materialize
INLINE_COST = 12


class Unsupported(Exception):
    """Nothing (or nothing useful) could be lowered to Triton; ``ops`` names the aten operators."""

    def __init__(self, message: str, ops: list[str] | None = None) -> None:
        super().__init__(message)
        self.ops = list(ops or [])


@dataclass
class TVal:
    """A materialized tensor held by forward variable ``var``."""

    var: str
    dtype: str
    shape: tuple[str, ...]
    base: str | None = None  # the placeholder this is a view of, if any


@dataclass
class EVal:
    """A pointwise value kept as an expression until a consumer needs a tensor."""

    expr: Expr
    dtype: str
    shape: tuple[str, ...]
    cost: int
    shape_code: list[str] | None = None  # explicit output shape (after an expand)
    positional: bool = False  # uses coordinates or gathers: cannot be broadcast into a bigger space
    materialized: TVal | None = None
    name: str = ""
    ops: list[str] = field(default_factory=list)  # aten ops folded into the expression


@dataclass
class SVal:
    """A run-time Python number (a size) held by forward variable ``var``."""

    var: str
    dtype: str = "int64"


@dataclass
class TupleVal:
    """Several values returned by one operator."""

    items: list[Any] = field(default_factory=list)


SYM_OPS = {
    "aten.sym_size.int": None,
    "aten.sym_numel.default": None,
    "aten.sym_stride.int": None,
}
_PYOPS = {
    operator.mul: "*", operator.add: "+", operator.sub: "-", operator.floordiv: "//",
    operator.truediv: "/", operator.mod: "%", operator.pow: "**",
}  # fmt: skip

VIEW_OPS = {
    "aten.view", "aten._unsafe_view", "aten.reshape", "aten.expand", "aten.permute", "aten.t",
    "aten.transpose", "aten.unsqueeze", "aten.squeeze", "aten.select", "aten.slice", "aten.alias",
    "aten.as_strided", "aten.detach", "aten.lift_fresh_copy", "aten.view_as", "aten.expand_as",
    "aten.numpy_T", "aten.diagonal",
}  # fmt: skip

REDUCTIONS = {
    "aten.sum", "aten.mean", "aten.amax", "aten.amin", "aten.max", "aten.min", "aten.prod",
    "aten.argmax", "aten.argmin", "aten.var", "aten.std", "aten.var_mean", "aten.std_mean",
    "aten.logsumexp", "aten.linalg_vector_norm", "aten.any", "aten.all",
}  # fmt: skip
ROWS = {
    "aten._softmax",
    "aten._log_softmax",
    "aten.native_layer_norm",
    "aten.softmax",
    "aten.log_softmax",
    "aten._safe_softmax",
}
MATMULS = {"aten.mm", "aten.addmm", "aten.bmm", "aten.baddbmm", "aten.mv"}
SCANS = {"aten.cumsum", "aten.cumprod"}
IGNORED = {"aten.copy_"}
# creation and data-movement ops built from coordinates and gathers (lower_index.py)
INDEXING = {
    "aten._unsafe_index", "aten.index", "aten.arange", "aten.cat", "aten.stack", "aten.constant_pad_nd",
    "aten.embedding", "aten.full", "aten.zeros", "aten.ones", "aten.new_full", "aten.new_zeros", "aten.new_ones",
}  # fmt: skip  # writes into inputs/buffers (running statistics): not part of the output


def _packet(target: Any) -> str:
    return str(getattr(target, "overloadpacket", target))


def _dtype_name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")


def _meta(node: Any) -> Any:
    return node.meta.get("val")


def _shape(val: Any) -> tuple[str, ...]:
    return tuple(str(s) for s in val.shape)


def _schema_kwargs(node: Any) -> dict[str, Any]:
    schema = node.target._schema
    out: dict[str, Any] = {}
    for i, arg in enumerate(schema.arguments):
        if i < len(node.args) and not arg.kwarg_only:
            out[arg.name] = node.args[i]
        elif arg.name in node.kwargs:
            out[arg.name] = node.kwargs[arg.name]
        elif arg.has_default_value():
            out[arg.name] = arg.default_value
        else:
            out[arg.name] = None
    return out


def _ident(name: str) -> str:
    return re.sub(r"\W", "_", name)


def lower_indexing(low: Any, node: Any, packet: str) -> bool:
    """Dispatch to lower_index (imported lazily: it imports this module)."""
    from evokernel.agent.offline.lower_index import lower_indexing as impl

    return impl(low, node, packet)


class _Lowering:
    def __init__(self, traced: Traced) -> None:
        self.t = traced
        self.steps: list[Any] = []
        self.env: dict[Any, Any] = {}
        self.params: dict[str, str] = {}
        self.inputs: list[tuple[str, str | None]] = []
        self.unsupported: list[str] = []
        self.users: dict[Any, int] = {}
        self._n = 0
        self.conv = True  # lower aten.convolution to the conv template (False: leave it to torch)

    # ---- helpers --------------------------------------------------------------------------
    def fresh(self, hint: str) -> str:
        self._n += 1
        return f"v{self._n}_{_ident(hint)}"

    def materialize(self, v: Any) -> TVal:
        """A tensor variable for a value (runs an elementwise kernel for expressions)."""
        if isinstance(v, TVal):
            return v
        if not isinstance(v, EVal):
            raise Unsupported(f"expected a tensor, got {type(v).__name__}")
        if v.materialized is not None:
            return v.materialized
        e = v.expr
        if isinstance(e, Load) and not e.flip and e.gather is None and e.space == "full":
            src = self.var_info[e.var]
            if v.shape_code is not None:  # a pure expand: a view, no copy
                var = self.fresh(v.name or "expand")
                self.steps.append(ViewStep(var, f"{e.var}.expand({', '.join(v.shape_code)})", e.var))
                v.materialized = TVal(var, v.dtype, v.shape, src.base)
                return v.materialized
            if v.shape == src.shape and v.dtype == src.dtype:
                v.materialized = src
                return src
        var = self.fresh(v.name or "ew")
        rank = len(v.shape)
        k = ElementwiseKernel(rank=rank, outputs=[_cast_to(e, v.dtype)], shape=v.shape_code)
        self.steps.append(KernelStep(k, [var], [v.dtype], [v.shape], ops=list(dict.fromkeys(v.ops))))
        v.materialized = TVal(var, v.dtype, v.shape)
        self.var_info[var] = v.materialized
        return v.materialized

    def expr_of(self, v: Any, consumer_shape: tuple[str, ...] | None, dtype_hint: str = "float32") -> Any:
        """Expression for an argument value inside a consumer computing over consumer_shape."""
        if isinstance(v, EVal):
            if v.materialized is not None:
                t = v.materialized
                return Load(t.var, t.dtype)
            if v.positional and consumer_shape is not None and tuple(v.shape) != tuple(consumer_shape):
                t = self.materialize(v)
                return Load(t.var, t.dtype)
            return v.expr
        if isinstance(v, TVal):
            return Load(v.var, v.dtype)
        if isinstance(v, SVal):
            return Scalar(v.var, v.dtype)
        if isinstance(v, RuntimeInt):
            return Scalar(v.expr, "int64")
        if isinstance(v, RuntimeFloat):
            return Scalar(v.expr, "float32")
        if isinstance(v, (list, tuple)):
            return [self.expr_of(x, consumer_shape, dtype_hint) for x in v]
        return v

    def value(self, arg: Any) -> Any:
        """Environment value of an fx argument (recursing into lists)."""
        import torch.fx

        if isinstance(arg, torch.fx.Node):
            return self.env[arg]
        if isinstance(arg, (list, tuple)):
            return type(arg)(self.value(a) for a in arg)
        return arg

    def py(self, arg: Any) -> str:
        """Python source for a (non-tensor-expression) argument of a view/torch call."""
        import torch

        v = self.value(arg) if not isinstance(arg, (TVal, SVal, EVal)) else arg
        if isinstance(v, (RuntimeInt, RuntimeFloat)):
            return v.expr
        if isinstance(v, (TVal, EVal)):
            return self.materialize(v).var
        if isinstance(v, SVal):
            return v.var
        if isinstance(v, TupleVal):
            raise Unsupported("tuple argument")
        if isinstance(v, (list, tuple)):
            inner = ", ".join(self.py(x) for x in v)
            return f"[{inner}]"
        if isinstance(v, float):
            if v != v:
                return 'float("nan")'
            if v in (float("inf"), float("-inf")):
                return 'float("inf")' if v > 0 else 'float("-inf")'
            return repr(v)
        if isinstance(v, torch.dtype):
            return str(v)
        if isinstance(v, torch.device):
            return "_evk_device"
        if isinstance(v, (torch.layout, torch.memory_format)):
            return str(v)
        return repr(v)

    # ---- main walk ------------------------------------------------------------------------
    def run(self) -> Plan:
        gm = self.t.gm
        self.var_info: dict[str, TVal] = {}
        for node in gm.graph.nodes:
            self.users[node] = len(node.users)
        output = None
        for node in gm.graph.nodes:
            if node.op == "placeholder":
                self.placeholder(node)
            elif node.op == "output":
                output = self.output(node.args[0])
            elif node.op == "call_function":
                if len(node.users) == 0 and _packet(node.target) not in IGNORED:
                    continue  # dead (e.g. unused mean/rstd of a norm)
                self.call(node)
            else:
                raise Unsupported(
                    f"graph node {node.op} {node.target} (constants captured in forward)", [str(node.target)]
                )
        return Plan(
            steps=self.steps,
            forward_args=self.t.forward_args,
            inputs=self.inputs,
            params=self.params,
            output=output,
            unsupported=sorted(set(self.unsupported)),
        )

    def placeholder(self, node: Any) -> None:
        kind, ref = self.t.bindings[node.name]
        val = _meta(node)
        var = placeholder_var((kind, ref), self.t)
        if kind in ("param", "buffer"):
            getter = "get_parameter" if kind == "param" else "get_buffer"
            self.params[var] = f"self.{getter}({ref!r})"
        elif var.startswith("in") and self.t.vararg is not None and ref >= len(self.t.arg_names):
            self.inputs.append((var, f"{self.t.vararg}[{ref - len(self.t.arg_names)}]"))
        else:
            self.inputs.append((var, None))
        tv = TVal(var, _dtype_name(val.dtype), _shape(val), base=var)
        self.env[node] = tv
        self.var_info[var] = tv

    def output(self, out: Any) -> Any:
        import torch.fx

        if isinstance(out, torch.fx.Node):
            v = self.env[out]
            t = self.materialize(v)
            if t.base is not None:  # an input or a view of one: return a copy, never an alias
                var = self.fresh("copy")
                k = ElementwiseKernel(rank=len(t.shape), outputs=[Load(t.var, t.dtype)])
                self.steps.append(KernelStep(k, [var], [t.dtype], [t.shape], ops=["aten.clone"]))
                return var
            return t.var
        if isinstance(out, (list, tuple)):
            items = [self.output(o) for o in out]
            if self.t.single_output and len(items) == 1:  # type: ignore[attr-defined]
                return items[0]
            # the container Model.forward returns (fx hands the outputs over as a list either way)
            return list(items) if self.t.output_container == "list" else tuple(items)  # type: ignore[attr-defined]
        return out

    def call(self, node: Any) -> None:
        target = node.target
        packet = _packet(target)
        name = str(target)
        if target is operator.getitem:
            src = self.env[node.args[0]]
            if not isinstance(src, TupleVal):
                raise Unsupported("getitem on a non-tuple value", [name])
            item = src.items[node.args[1]]
            if item is None:  # name the op whose output is missing (e.g. max pooling's indices), not getitem
                producer = str(getattr(node.args[0], "target", name))
                raise Unsupported(f"output {node.args[1]} of {producer} is used, and the templates do not produce it "
                                  "(e.g. max pooling's indices)", [producer])
            self.env[node] = item
            return
        if (
            name in SYM_OPS
            or target in _PYOPS
            or packet.startswith("aten.sym_")
            or not hasattr(target, "overloadpacket")
        ):
            self.sym(node)
            return
        if packet in IGNORED:
            return
        val = _meta(node)
        if packet.endswith("_") and packet[:-1] in P.POINTWISE and _is_tensor(val):
            # in-place pointwise op (left by decompositions): compute it functionally and rebind the
            # mutated tensor, so later uses of it see the new value
            self.pointwise(node, packet[:-1])
            mutated = node.args[0]
            self.env[mutated] = self.env[node]
            return
        if packet in ("aten.max", "aten.min") and "other" in _schema_kwargs(node):  # elementwise max/min
            self.pointwise(node, "aten.maximum" if packet == "aten.max" else "aten.minimum")
        elif packet in VIEW_OPS:
            self.view(node, packet)
        elif packet in ("aten.split", "aten.split_with_sizes", "aten.unbind", "aten.chunk"):
            self.split(node, packet)
        elif packet in P.POINTWISE and _is_tensor(val):
            self.pointwise(node, packet)
        elif packet == "aten.scalar_tensor":
            kw = _schema_kwargs(node)
            dt = _dtype_name(val.dtype)
            self.env[node] = EVal(P.const(kw["s"], dt), dt, (), 1, name=node.name)
        elif packet in REDUCTIONS:
            from evokernel.agent.offline.lower_ops import lower_reduction

            lower_reduction(self, node, packet)
        elif packet in ROWS:
            from evokernel.agent.offline.lower_ops import lower_row

            lower_row(self, node, packet)
        elif packet in MATMULS:
            from evokernel.agent.offline.lower_ops import lower_matmul

            lower_matmul(self, node, packet)
        elif packet in SCANS:
            from evokernel.agent.offline.lower_ops import lower_scan

            lower_scan(self, node, packet)
        elif packet == "aten.flip":
            kw = _schema_kwargs(node)
            src = self.materialize(self.value(kw["self"]))
            rank = len(src.shape)
            dims = tuple(sorted((d % rank) - rank for d in kw["dims"]))
            self.env[node] = EVal(
                Load(src.var, src.dtype, flip=dims), src.dtype, src.shape, 1, positional=True, name=node.name
            )
        elif packet == "aten.gather":
            kw = _schema_kwargs(node)
            src = self.materialize(self.value(kw["self"]))
            rank = len(src.shape)
            shape = _shape(val)
            index = self.expr_of(self.value(kw["index"]), shape)
            dim = (kw["dim"] % rank) - rank
            expr = Load(src.var, src.dtype, gather=((dim, index),))
            self.env[node] = EVal(expr, src.dtype, shape, 2, positional=True, name=node.name)
        elif packet in INDEXING and lower_indexing(self, node, packet):
            pass
        elif packet in ("aten.max_pool1d_with_indices", "aten.max_pool2d_with_indices", "aten.max_pool3d_with_indices",
                        "aten.avg_pool1d", "aten.avg_pool2d", "aten.avg_pool3d", "aten.max_pool2d", "aten.max_pool1d"):  # fmt: skip
            from evokernel.agent.offline.lower_ops import lower_window

            lower_window(self, node, packet)
        elif packet == "aten.convolution" and self.conv:
            from evokernel.agent.offline.lower_ops import lower_conv

            try:
                lower_conv(self, node, packet)
            except Unsupported:
                self.fallback(node)
        else:
            self.fallback(node)

    # ---- node kinds -----------------------------------------------------------------------
    def sym(self, node: Any) -> None:
        target = node.target
        name = str(target)
        var = self.fresh(node.name)
        a = [self.py(x) for x in node.args]
        if name == "aten.sym_size.int":
            code = f"{a[0]}.shape[{a[1]}]"
        elif name == "aten.sym_numel.default":
            code = f"{a[0]}.numel()"
        elif name == "aten.sym_stride.int":
            code = f"{a[0]}.stride({a[1]})"
        elif target in _PYOPS:
            code = f"({a[0]} {_PYOPS[target]} {a[1]})"
        elif name in ("<built-in function neg>",):
            code = f"(-{a[0]})"
        elif callable(target):
            fn = getattr(target, "__name__", name)
            if fn in ("sym_float", "float"):
                code = f"float({a[0]})"
            elif fn in ("sym_int", "int"):
                code = f"int({a[0]})"
            elif fn in ("sym_max", "sym_min"):
                code = f"{fn[4:]}({a[0]}, {a[1]})"
            elif fn in ("sym_sqrt", "sqrt"):
                code = f"({a[0]}) ** 0.5"
            elif fn in ("eq", "ne", "lt", "le", "gt", "ge"):
                sym = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}[fn]
                code = f"({a[0]} {sym} {a[1]})"
            else:
                raise Unsupported(f"size arithmetic {name}", [name])
        else:
            raise Unsupported(f"size arithmetic {name}", [name])
        self.steps.append(ShapeStep(var, code))
        val = _meta(node)
        self.env[node] = SVal(var, "float32" if isinstance(val, float) or "Float" in type(val).__name__ else "int64")

    def view(self, node: Any, packet: str) -> None:
        kw = _schema_kwargs(node)
        val = _meta(node)
        src_v = self.value(kw["self"])
        if packet in ("aten.alias", "aten.detach", "aten.lift_fresh_copy"):
            self.env[node] = src_v
            return
        if packet == "aten.expand" and isinstance(src_v, (EVal, TVal)):
            # broadcasting is implicit in pointwise consumers; a view only if a tensor is needed
            e = self.expr_of(src_v, None)
            sizes = [self.py(s) for s in kw["size"]]
            ev = EVal(
                e if isinstance(e, Expr) else P.const(e), _dtype_name(val.dtype), _shape(val),
                getattr(src_v, "cost", 1), shape_code=sizes, name=node.name,
            )  # fmt: skip
            if isinstance(src_v, EVal) and src_v.positional:
                ev.positional = True
            self.env[node] = ev
            return
        src = self.materialize(src_v)
        s = src.var
        if packet in ("aten.view", "aten._unsafe_view", "aten.reshape"):
            code = f"{s}.view({', '.join(self.py(x) for x in kw['size'])})" if kw["size"] else f"{s}.view(())"
        elif packet == "aten.expand":
            code = f"{s}.expand({', '.join(self.py(x) for x in kw['size'])})"
        elif packet == "aten.permute":
            code = f"{s}.permute({', '.join(self.py(x) for x in kw['dims'])})"
        elif packet in ("aten.t", "aten.numpy_T"):
            code = f"{s}.t()"
        elif packet == "aten.transpose":
            code = f"{s}.transpose({self.py(kw['dim0'])}, {self.py(kw['dim1'])})"
        elif packet == "aten.unsqueeze":
            code = f"{s}.unsqueeze({self.py(kw['dim'])})"
        elif packet == "aten.squeeze":
            dim = kw.get("dim")
            if dim is None:
                code = f"{s}.squeeze()"
            elif isinstance(dim, (list, tuple)):
                code = f"{s}.squeeze({tuple(dim)!r})"
            else:
                code = f"{s}.squeeze({self.py(dim)})"
        elif packet == "aten.select":
            code = f"{s}.select({self.py(kw['dim'])}, {self.py(kw['index'])})"
        elif packet == "aten.slice":
            dim = int(kw["dim"])
            start = "None" if kw["start"] is None else self.py(kw["start"])
            end = "None" if kw["end"] is None else self.py(kw["end"])
            code = f"{s}[{'(slice(None),) * ' + str(dim) + ' + ' if dim else ''}(slice({start}, {end}, {self.py(kw['step'])}),)]"
        elif packet == "aten.as_strided":
            code = (
                f"{s}.as_strided({self.py(kw['size'])}, {self.py(kw['stride'])}, {self.py(kw.get('storage_offset'))})"
            )
        elif packet == "aten.diagonal":
            code = f"{s}.diagonal({self.py(kw['offset'])}, {self.py(kw['dim1'])}, {self.py(kw['dim2'])})"
        elif packet in ("aten.view_as", "aten.expand_as"):
            method = packet.removeprefix("aten.")
            code = f"{s}.{method}({self.py(kw['other'])})"
        else:
            raise Unsupported(f"view {packet}", [packet])
        var = self.fresh(node.name)
        self.steps.append(ViewStep(var, code, s))
        tv = TVal(var, _dtype_name(val.dtype), _shape(val), src.base)
        self.env[node] = tv
        self.var_info[var] = tv

    def split(self, node: Any, packet: str) -> None:
        """split / split_with_sizes / unbind / chunk: a tuple of views."""
        kw = _schema_kwargs(node)
        src = self.materialize(self.value(kw["self"]))
        method = packet.removeprefix("aten.")
        if method == "split_with_sizes":
            method, first = "split", self.py(kw["split_sizes"])
        elif method == "split":
            first = self.py(kw["split_size"])
        elif method == "chunk":
            first = self.py(kw["chunks"])
        else:
            first = None
        var = self.fresh(node.name)
        dim = self.py(kw.get("dim", 0))
        args = f"{first}, {dim}" if first is not None else dim
        self.steps.append(ViewStep(var, f"{src.var}.{method}({args})", src.var))
        items = []
        for i, v in enumerate(_meta(node)):
            tv = TVal(f"{var}[{i}]", _dtype_name(v.dtype), _shape(v), src.base)
            self.var_info[tv.var] = tv
            items.append(tv)
        self.env[node] = TupleVal(items)

    def pointwise(self, node: Any, packet: str) -> None:
        val = _meta(node)
        shape = _shape(val)
        dtype = _dtype_name(val.dtype)
        kw = _schema_kwargs(node)
        conv: dict[str, Any] = {}
        cost = 1
        positional = False
        shape_code = None
        full_without_code = False
        for k, a in kw.items():
            v = self.value(a)
            e = self.expr_of(v, shape)
            if isinstance(v, EVal) and v.materialized is None and e is v.expr:
                cost += v.cost
                positional = positional or v.positional
                if v.shape_code is not None and tuple(v.shape) == shape:
                    shape_code = v.shape_code
                elif tuple(v.shape) == shape:
                    full_without_code = True
            elif isinstance(v, (TVal, EVal)) and tuple(v.shape) == shape:
                full_without_code = True
            conv[k] = e
        if full_without_code:  # another operand already spans the shape: no explicit shape needed
            shape_code = None
        try:
            expr = P.build_pointwise(packet, conv, dtype)
        except (KeyError, TypeError) as exc:
            raise Unsupported(f"{packet}: {exc}", [str(node.target)]) from exc
        positional = positional or any(isinstance(n, Coord) for n in walk(expr))
        folded = [op for a in kw.values() if isinstance(self.value(a), EVal) for op in self.value(a).ops]
        ev = EVal(expr, dtype, shape, cost, shape_code=shape_code, positional=positional, name=node.name,
                  ops=[packet, *folded])  # fmt: skip
        self.env[node] = ev
        if self.users[node] > 1 and cost > INLINE_COST:
            self.materialize(ev)

    def fallback(self, node: Any) -> None:
        packet = _packet(node.target)
        name = str(node.target)
        self.unsupported.append(name)
        val = _meta(node)
        args = [self.py(a) for a in node.args]
        kwargs = [f"{k}={self.py(v)}" for k, v in node.kwargs.items()]
        var = self.fresh(node.name)
        inputs = [
            self.materialize(self.value(a)).var for a in node.all_input_nodes if isinstance(self.value(a), (TVal, EVal))
        ]
        op = node.target
        call = (
            f"torch.ops.aten.{op.overloadpacket.__name__}.{op._overloadname}"
            if hasattr(op, "_overloadname")
            else packet
        )
        self.steps.append(TorchStep(var, f"{call}({', '.join(args + kwargs)})", name, inputs))
        if _is_tensor(val):
            tv = TVal(var, _dtype_name(val.dtype), _shape(val))
            self.env[node] = tv
            self.var_info[var] = tv
        elif isinstance(val, (list, tuple)):
            items = []
            for i, v in enumerate(val):
                if _is_tensor(v):
                    tv = TVal(f"{var}[{i}]", _dtype_name(v.dtype), _shape(v))
                    self.var_info[tv.var] = tv
                    items.append(tv)
                else:
                    items.append(None)
            self.env[node] = TupleVal(items)
        else:
            self.env[node] = SVal(var)


def _is_tensor(val: Any) -> bool:
    import torch

    return isinstance(val, torch.Tensor)


def _cast_to(e: Any, dtype: str) -> Expr:
    if not isinstance(e, Expr):
        return P.const(e, dtype)
    if e.dtype != dtype:
        return Op("cast", (e,), dtype)
    return e


def lower(traced: Traced) -> Plan:
    """Lower a traced program; raise Unsupported when no Triton kernel results."""
    low = _Lowering(traced)
    plan = low.run()
    if not plan.kernels:
        ops = plan.unsupported
        raise Unsupported(
            "no operator of this program can be lowered to a Triton template"
            + (f"; unsupported aten ops: {', '.join(ops)}" if ops else ""),
            ops,
        )
    return plan


def lower_program(source: str, filename: str = "<problem>", *, fitted: bool = False) -> Plan:
    """Trace and lower a program source; raise Unsupported (also for tracing failures).

    ``fitted``: take literal sizes that cannot be read at run time from the CPU-fitted program
    (what the verifier runs on the interpreter) rather than from the original one.
    """
    try:
        traced = trace_for_any_size(source, filename, fitted=fitted)
    except TraceError as exc:
        raise Unsupported(str(exc)) from exc
    return lower(traced)
