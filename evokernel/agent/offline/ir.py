"""Intermediate representation of the offline generator: expressions, kernel instances, plans.

An expression is a small DAG evaluated per element of a kernel's iteration space. Nodes are
compared by identity (``eq=False``), so a value used twice is computed once. Shapes are never
stored as numbers: every kernel reads its sizes from its operand tensors at run time, so one
generated candidate works for every size of the problem.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

__all__ = [
    "Expr",
    "Load",
    "Scalar",
    "Const",
    "Coord",
    "Stat",
    "RedCount",
    "Op",
    "StatSpec",
    "ElementwiseKernel",
    "RowKernel",
    "ScanKernel",
    "MatmulKernel",
    "WindowKernel",
    "ConvKernel",
    "Kernel",
    "ShapeStep",
    "ViewStep",
    "KernelStep",
    "TorchStep",
    "Step",
    "Plan",
    "walk",
    "operands",
]


class Expr:
    """Base class of expression nodes; ``dtype`` is the torch dtype name of the value."""

    dtype: str


@dataclass(eq=False)
class Load(Expr):
    """Element of the tensor held by forward variable ``var`` at the current position.

    space "full": the tensor is broadcast into the kernel's iteration space; "out": into its
    output shape (reduction epilogues). ``flip``: dims read in reverse (``torch.flip`` folded in).
    ``gather``: ((dim, index expression), ...): the coordinate along each ``dim`` is replaced by the
    index value (``torch.gather``, advanced indexing ``x[..., i, j]``).
    """

    var: str
    dtype: str
    space: str = "full"
    flip: tuple[int, ...] = ()
    gather: tuple[tuple[int, Expr], ...] | None = None

    def key(self) -> tuple[Any, ...]:
        """Identity of the operand this load reads (one kernel argument per key)."""
        # gathers with different index expressions read different elements: one operand each
        return (self.var, self.space, self.flip, tuple((d, id(e)) for d, e in self.gather) if self.gather else None)


@dataclass(eq=False)
class Scalar(Expr):
    """A run-time Python number passed to the kernel: ``expr`` is its forward expression."""

    expr: str
    dtype: str


@dataclass(eq=False)
class Const(Expr):
    """A literal number."""

    value: Union[float, int, bool]
    dtype: str


@dataclass(eq=False)
class Coord(Expr):
    """The coordinate of the current element along dimension ``dim`` of the kernel's space."""

    dim: int
    dtype: str = "int64"


@dataclass(eq=False)
class Stat(Expr):
    """Result of statistic ``index`` of a row kernel (or the matmul accumulator, index 0)."""

    index: int
    dtype: str


@dataclass(eq=False)
class RedCount(Expr):
    """Number of elements reduced per output (product of the reduced sizes), a run-time value."""

    dtype: str = "int64"


@dataclass(eq=False)
class Op(Expr):
    """A pointwise operation ``op`` (see ops.POINTWISE) on argument expressions."""

    op: str
    args: tuple[Any, ...]
    dtype: str
    params: dict[str, Any] = field(default_factory=dict)


def walk(expr: Expr, seen: set[int] | None = None):
    """Yield every node of an expression DAG once (children before parents)."""
    seen = set() if seen is None else seen
    if id(expr) in seen:
        return
    seen.add(id(expr))
    children: list[Expr] = []
    if isinstance(expr, Op):
        children = [a for a in expr.args if isinstance(a, Expr)]
    elif isinstance(expr, Load) and expr.gather is not None:
        children = [e for _, e in expr.gather]
    for child in children:
        yield from walk(child, seen)
    yield expr


@dataclass
class StatSpec:
    """One per-row statistic: ``op`` over the reduced dims of ``expr`` (may use earlier Stats)."""

    op: str  # sum | prod | max | min | argmax | argmin
    expr: Expr
    dtype: str  # accumulation dtype name


@dataclass
class ElementwiseKernel:
    """Fused pointwise expressions over the broadcast shape of the loads (or ``shape``)."""

    rank: int
    outputs: list[Expr]
    shape: list[str] | None = None  # python expressions; None: broadcast of the loaded tensors
    family: str = "elementwise"

    def exprs(self) -> list[Expr]:
        """Every expression root of the kernel."""
        return list(self.outputs)


@dataclass
class RowKernel:
    """Statistics over ``red_dims`` of the iteration space, then outputs.

    kind "reduce": outputs are per kept index (shape with reduced dims dropped or kept as 1);
    kind "row": outputs span the whole space (softmax, norms), using the statistics broadcast.
    ``online``: stats (i, i+1) are (max(e), sum(exp(e - max))) and may be computed in one pass.
    The space is the broadcast shape of the "full" loads, or ``shape`` when given.
    """

    kind: str
    rank: int
    red_dims: tuple[int, ...]
    keepdim: bool
    stats: list[StatSpec]
    outputs: list[Expr]
    online: tuple[int, ...] = ()
    shape: list[str] | None = None
    family: str = "reduction"
    space_shape: tuple[str, ...] | None = None  # symbolic shape of the space (fusion decisions)

    def exprs(self) -> list[Expr]:
        """Every expression root of the kernel."""
        return [s.expr for s in self.stats] + list(self.outputs)


@dataclass
class ScanKernel:
    """Inclusive scan (cumsum/cumprod) of ``expr`` along ``dim``; outputs use Stat(0)."""

    rank: int
    dim: int
    op: str  # sum | prod
    expr: Expr
    acc_dtype: str
    outputs: list[Expr]
    family: str = "scan"

    def exprs(self) -> list[Expr]:
        """Every expression root of the kernel."""
        return [self.expr, *self.outputs]


@dataclass
class MatmulKernel:
    """out[b] = A[b] @ B[b] (A: a_var, B: b_var, rank 2 or 3), then outputs over Stat(0)."""

    a_var: str
    b_var: str
    a_dtype: str
    b_dtype: str
    out_rank: int
    outputs: list[Expr]  # epilogue: loads live in space "out"
    family: str = "matmul"

    def exprs(self) -> list[Expr]:
        """Every expression root of the kernel."""
        return list(self.outputs)


@dataclass
class WindowKernel:
    """Max/avg pooling over a sliding window of the trailing ``nd`` dims; outputs over Stat(0)."""

    op: str  # max | avg
    nd: int
    x_var: str
    x_dtype: str
    kernel: list[int]
    stride: list[int]
    padding: list[int]
    dilation: list[int]
    ceil_mode: bool = False
    count_include_pad: bool = True
    divisor: int | None = None
    outputs: list[Expr] = field(default_factory=list)
    family: str = "window"

    def exprs(self) -> list[Expr]:
        """Every expression root of the kernel."""
        return list(self.outputs)


@dataclass
class ConvKernel:
    """N-d convolution (or transposed convolution) as an implicit GEMM; outputs over Stat(0)."""

    x_var: str
    w_var: str
    x_dtype: str
    nd: int
    stride: list[int]
    padding: list[int]
    dilation: list[int]
    transposed: bool
    output_padding: list[int]
    groups: Any  # int, or a forward expression when it is really a size (depthwise: channels)
    outputs: list[Expr] = field(default_factory=list)  # epilogue: loads live in the output space
    family: str = "conv"

    def exprs(self) -> list[Expr]:
        """Every expression root of the kernel."""
        return list(self.outputs)


Kernel = Union[ElementwiseKernel, RowKernel, ScanKernel, MatmulKernel, WindowKernel, ConvKernel]


def operands(kernel: Kernel) -> tuple[list[Load], list[Scalar]]:
    """The distinct tensor loads (one per Load.key) and run-time scalars a kernel reads."""
    loads: dict[Any, Load] = {}
    scalars: dict[str, Scalar] = {}
    seen: set[int] = set()
    for root in kernel.exprs():
        for node in walk(root, seen):
            if isinstance(node, Load):
                loads.setdefault(node.key(), node)
            elif isinstance(node, Scalar):
                scalars.setdefault(node.expr, node)
    return list(loads.values()), list(scalars.values())


@dataclass
class ShapeStep:
    """``name = expr`` for a run-time integer (a size read from a tensor, or arithmetic on sizes)."""

    name: str
    expr: str


@dataclass
class ViewStep:
    """``name = expr``: a view of another value (no data is copied)."""

    name: str
    expr: str
    src: str


@dataclass
class KernelStep:
    """One Triton kernel launch: ``outputs`` (forward variables) computed by ``kernel``."""

    kernel: Kernel
    outputs: list[str]
    out_dtypes: list[str]
    out_shapes: list[tuple[str, ...]]  # symbolic shapes from the trace (for fusion decisions only)
    ops: list[str] = field(default_factory=list)  # aten ops this launch implements


@dataclass
class TorchStep:
    """An operator left to PyTorch (policy ``mixed``): ``name = expr``."""

    name: str
    expr: str
    op: str
    inputs: list[str] = field(default_factory=list)


Step = Union[ShapeStep, ViewStep, KernelStep, TorchStep]


@dataclass
class Plan:
    """The lowered program: steps in execution order and the forward's inputs and outputs."""

    steps: list[Step]
    forward_args: str  # the text of the forward's parameter list (without self)
    inputs: list[tuple[str, str | None]]  # (variable, expression binding it, e.g. "args[0]"; None: a parameter)
    params: dict[str, str]  # variable -> python expression reading a parameter or buffer
    output: Any  # variable name or nested tuple/list of them
    unsupported: list[str] = field(default_factory=list)  # aten ops left to torch

    @property
    def kernels(self) -> list[KernelStep]:
        """The Triton launches of the plan."""
        return [s for s in self.steps if isinstance(s, KernelStep)]

    @property
    def families(self) -> list[str]:
        """Template families used, in first-use order."""
        seen: dict[str, None] = {}
        for k in self.kernels:
            seen.setdefault(k.kernel.family, None)
        return list(seen)

    @property
    def policy(self) -> str:
        """``strict`` when every compute op became a Triton kernel, else ``mixed``."""
        return "mixed" if any(isinstance(s, TorchStep) for s in self.steps) else "strict"
