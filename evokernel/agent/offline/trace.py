"""Trace a reference program into an aten graph with symbolic shapes.

The program is loaded with :func:`evokernel.programs.load_program`, built on the meta device (no
memory, no compute), and traced with ``make_fx(functionalize(...), tracing_mode="symbolic")``
over ``functional_call`` so that parameters and buffers are graph inputs with names. Sizes are
symbols, and view arguments are computed from ``sym_size`` nodes, so the graph describes the
program for every size. A few composite operators are decomposed (batch/group norm, the losses,
norms) into operators the templates know; softmax, log-softmax and layer norm are kept whole.
"""

from __future__ import annotations

import ast
import contextlib
import math
import re
from dataclasses import dataclass, field
from typing import Any

from evokernel._ast import parse as parse_python
from evokernel.programs import load_program

__all__ = [
    "Traced",
    "TraceError",
    "RuntimeInt",
    "RuntimeFloat",
    "trace_program",
    "trace_for_any_size",
    "forward_parameters",
    "placeholder_var",
]


class TraceError(Exception):
    """The program could not be traced into an aten graph (the message says why)."""


@dataclass
class Traced:
    """A traced program: the fx graph and what its placeholders stand for."""

    gm: Any  # torch.fx.GraphModule
    bindings: dict[str, tuple[str, Any]]  # placeholder name -> ("param"|"buffer", qualname) | ("input", index)
    forward_args: str  # parameter list text of Model.forward without self
    arg_names: list[str]  # positional parameter names (forward input i -> arg_names[i])
    vararg: str | None  # name of *args when the forward takes them
    n_inputs: int
    non_tensor_inputs: dict[int, Any] = field(default_factory=dict)
    single_output: bool = True  # Model.forward returns one tensor (not a tuple/list)
    output_container: str = "tuple"  # what holds several outputs: "tuple" or "list", as Model.forward returns them
    example_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # placeholder -> concrete shape
    module_numbers: dict[str, float] = field(default_factory=dict)  # "self.<attr>" expression -> value


class RuntimeInt(int):
    """An integer literal of the trace that is really a size: ``expr`` reads it at run time."""

    expr: str

    def __new__(cls, value: int, expr: str) -> "RuntimeInt":
        obj = int.__new__(cls, value)
        obj.expr = expr
        return obj


class RuntimeFloat(float):
    """A float literal of the trace computed from a size (e.g. ``1/sqrt(head_dim)``): ``expr`` at run time."""

    expr: str

    def __new__(cls, value: float, expr: str) -> "RuntimeFloat":
        obj = float.__new__(cls, value)
        obj.expr = expr
        return obj


def placeholder_var(binding: tuple[str, Any], traced: "Traced") -> str:
    """The forward variable that holds a placeholder's tensor (shared with the lowering)."""
    import re

    kind, ref = binding
    if kind in ("param", "buffer"):
        return "p_" + re.sub(r"\W", "_", ref)
    if traced.vararg is not None and ref >= len(traced.arg_names):
        return f"in{ref}"
    return traced.arg_names[ref]


def _decompositions() -> dict[Any, Any]:
    import torch
    from torch._decomp import get_decompositions

    aten = torch.ops.aten
    wanted = [
        aten._native_batch_norm_legit,
        aten._native_batch_norm_legit_functional,
        aten._native_batch_norm_legit_no_training,
        aten.native_batch_norm,
        aten.native_group_norm,
        aten.mse_loss,
        aten.smooth_l1_loss,
        aten.huber_loss,
        aten.l1_loss,
        aten.nll_loss_forward,
        aten.norm,
        aten.diag_embed,
        aten.binary_cross_entropy,
        aten.soft_margin_loss,
        aten.hinge_embedding_loss,
        aten.margin_ranking_loss,
        aten.cosine_similarity,
        aten.pairwise_distance,
        aten.mish,
        aten.hardswish,
        aten.celu,
        aten.addcmul,
        aten.addcdiv,
        aten.lerp,
        aten.logit,
        aten.glu,
    ]
    ops = []
    for op in wanted:
        ops.append(op)
    return get_decompositions(ops)


def forward_parameters(source: str) -> tuple[str, list[str], str | None]:
    """Parameter list text of ``Model.forward`` (without self), positional names, and *args name."""
    tree = parse_python(source)
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "Model":
            for sub in node.body:
                if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)) and sub.name == "forward":
                    args = sub.args
                    positional = [a.arg for a in args.posonlyargs + args.args][1:]
                    text = ast.unparse(args)
                    # drop "self" (the first parameter) from the text
                    first = (args.posonlyargs + args.args)[0].arg if (args.posonlyargs + args.args) else None
                    if first is not None:
                        copy = parse_python(f"def f({text}): pass").body[0].args  # type: ignore[attr-defined]
                        if copy.posonlyargs:
                            copy.posonlyargs = copy.posonlyargs[1:]
                        else:
                            copy.args = copy.args[1:]
                            if copy.defaults and len(copy.defaults) > len(copy.args):
                                copy.defaults = copy.defaults[1:]
                        text = ast.unparse(copy)
                    vararg = args.vararg.arg if args.vararg else None
                    return text, positional, vararg
    raise TraceError("no Model.forward found in the program source")


@contextlib.contextmanager
def _no_duck_sizing():
    """Give equal sizes their own symbols, so a view never reads a size from the wrong tensor."""
    try:
        import torch.fx.experimental._config as fx_config
    except ImportError:  # pragma: no cover - older torch
        yield
        return
    old = getattr(fx_config, "use_duck_shape", True)
    fx_config.use_duck_shape = False
    try:
        yield
    finally:
        fx_config.use_duck_shape = old


def trace_program(source: str, filename: str = "<problem>") -> Traced:
    """Trace ``Model.forward`` of a program on meta tensors; raise TraceError when that fails."""
    import torch
    import torch.utils._pytree as pytree
    from torch.func import functional_call, functionalize
    from torch.fx.experimental.proxy_tensor import make_fx

    module = load_program(source, filename)
    forward_args, arg_names, vararg = forward_parameters(source)
    try:
        with torch.device("meta"):
            model = module.Model(*module.get_init_inputs())
            inputs = list(module.get_inputs())
    except Exception as exc:
        raise TraceError(f"building the model on the meta device failed: {type(exc).__name__}: {exc}") from exc

    tensor_pos = [i for i, v in enumerate(inputs) if isinstance(v, torch.Tensor)]
    non_tensor = {i: v for i, v in enumerate(inputs) if not isinstance(v, torch.Tensor)}
    state: dict[str, Any] = {}
    kinds: dict[str, tuple[str, str]] = {}
    for name, p in model.named_parameters():
        state[name] = p
        kinds[name] = ("param", name)
    for name, b in model.named_buffers():
        state[name] = b
        kinds[name] = ("buffer", name)

    def run(params: dict[str, Any], *tensors: Any) -> Any:
        full = list(inputs)
        for pos, t in zip(tensor_pos, tensors):
            full[pos] = t
        return functional_call(model, params, tuple(full))

    tensors = [inputs[i] for i in tensor_pos]
    try:
        with torch.no_grad(), torch.device("meta"):
            result = run(state, *tensors)
        single = isinstance(result, torch.Tensor)
        container = "list" if isinstance(result, list) else "tuple"
    except Exception as exc:
        raise TraceError(f"running the forward on meta tensors failed: {type(exc).__name__}: {str(exc)[:300]}") from exc
    try:
        with _no_duck_sizing(), torch.no_grad(), torch.device("meta"):
            gm = make_fx(functionalize(run), tracing_mode="symbolic", decomposition_table=_decompositions())(
                state, *tensors
            )
    except Exception as exc:
        raise TraceError(f"tracing the forward failed: {type(exc).__name__}: {str(exc)[:300]}") from exc

    gm.graph.eliminate_dead_code()  # keeps mutations (copy_ into buffers), drops unused outputs
    gm.recompile()
    flat, _ = pytree.tree_flatten((state, *tensors))
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    if len(placeholders) != len(flat):
        raise TraceError("traced graph inputs do not match the model's parameters and inputs")
    order = list(state)
    bindings: dict[str, tuple[str, Any]] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    for i, node in enumerate(placeholders):
        if i < len(order):
            bindings[node.name] = kinds[order[i]]
        else:
            bindings[node.name] = ("input", tensor_pos[i - len(order)])
        shapes[node.name] = tuple(int(n) for n in flat[i].shape)
    return Traced(
        gm=gm,
        bindings=bindings,
        forward_args=forward_args,
        arg_names=arg_names,
        vararg=vararg,
        n_inputs=len(inputs),
        non_tensor_inputs=non_tensor,
        single_output=single,
        output_container=container,
        example_shapes=shapes,
        module_numbers=_module_numbers(model),
    )


def _module_numbers(model: Any) -> dict[str, float]:
    """Public int/float attributes of the model and its submodules, as forward expressions."""
    out: dict[str, float] = {}
    for name, mod in model.named_modules():
        owner = "self" if not name else f"self.get_submodule({name!r})"
        for key, value in vars(mod).items():
            if key.startswith("_") or key == "training" or type(value) not in (int, float):
                continue
            out[f"{owner}.{key}"] = value
    return out


def _resolve_literals(a: Traced, b: Traced) -> int:
    """Mark integer literals of ``a`` that changed in ``b`` (traced at other sizes) as run-time sizes.

    A literal that equals the same tensor dimension in both traces (e.g. ``groups`` of a depthwise
    convolution = the input's channels, a view size taken from a module attribute) is replaced by
    a RuntimeInt reading that dimension. Returns how many literals were resolved.
    """
    na, nb = list(a.gm.graph.nodes), list(b.gm.graph.nodes)
    if len(na) != len(nb) or any(x.op != y.op or x.target != y.target for x, y in zip(na, nb)):
        return 0
    cands: list[tuple[str, int, int]] = []
    for x, y in zip(na, nb):
        if x.op != "placeholder" or x.name not in a.example_shapes or y.name not in b.example_shapes:
            continue
        var = placeholder_var(a.bindings[x.name], a)
        sa, sb = a.example_shapes[x.name], b.example_shapes[y.name]
        if len(sa) != len(sb):
            continue
        for d, (va, vb) in enumerate(zip(sa, sb)):
            cands.append((f"{var}.shape[{d}]", va, vb))
    for x, y in zip(na, nb):  # products of adjacent dims (flattening views), after single dims
        if x.op != "placeholder" or x.name not in a.example_shapes or y.name not in b.example_shapes:
            continue
        var = placeholder_var(a.bindings[x.name], a)
        sa, sb = a.example_shapes[x.name], b.example_shapes[y.name]
        if len(sa) != len(sb):
            continue
        for lo in range(len(sa)):
            for hi in range(lo + 2, len(sa) + 1):
                pa = pb = 1
                for d in range(lo, hi):
                    pa, pb = pa * sa[d], pb * sb[d]
                expr = " * ".join(f"{var}.shape[{d}]" for d in range(lo, hi))
                cands.append((f"({expr})", pa, pb))
    for expr, va in a.module_numbers.items():  # module attributes (e.g. self.head_dim), after tensor dims
        vb = b.module_numbers.get(expr)
        if type(va) is int and type(vb) is int:
            cands.append((expr, va, vb))
    count = 0

    def fix(u: Any, v: Any) -> Any:
        nonlocal count
        if type(u) is float and type(v) is float and u != v:
            for expr, va, vb in cands:
                for fa, fb, code in (
                    (float(va), float(vb), f"float({expr})"),
                    (va**0.5, vb**0.5, f"({expr}) ** 0.5"),
                    (va**-0.5, vb**-0.5, f"({expr}) ** -0.5"),
                    (1.0 / va if va else 0.0, 1.0 / vb if vb else 0.0, f"1.0 / ({expr})"),
                ):
                    if math.isclose(u, fa, rel_tol=1e-9) and math.isclose(v, fb, rel_tol=1e-9):
                        count += 1
                        return RuntimeFloat(u, code)
            return u
        if type(u) is int and type(v) is int and u != v:
            for expr, va, vb in cands:
                if (va, vb) == (u, v):
                    count += 1
                    return RuntimeInt(u, expr)
            return u
        if isinstance(u, (list, tuple)) and isinstance(v, (list, tuple)) and len(u) == len(v):
            return type(u)(fix(p, q) for p, q in zip(u, v))
        return u

    for x, y in zip(na, nb):
        if x.op == "call_function":
            x.args = fix(x.args, y.args)
            x.kwargs = {k: fix(val, y.kwargs.get(k)) for k, val in x.kwargs.items()}
    return count


# constants that name an axis, a window or a hyper-parameter rather than a size (kept as they are)
_NOT_A_SIZE = re.compile(
    r"kernel|stride|pad|dilation|group|axis|eps|seed|prob|scale|factor|momentum|head|^dims?$|^p$", re.IGNORECASE
)


def _doubled(source: str, filename: str) -> str | None:
    """The program with every size-like module constant (>= 2) doubled, or None when there is none."""
    from evokernel.programs import size_constants, with_sizes

    sizes = {k: 2 * v for k, v in size_constants(source, filename).items() if v >= 2 and not _NOT_A_SIZE.search(k)}
    return with_sizes(source, sizes, filename) if sizes else None


def trace_for_any_size(source: str, filename: str = "<problem>", *, fitted: bool = False) -> Traced:
    """Trace the program, and once more at other sizes to find literals that are really sizes.

    The second trace uses the sizes the verifier fits the problem to on the CPU
    (:func:`evokernel.verify.sizing.fit_problem`). Integer literals that change with the sizes and
    equal a tensor dimension (or a product of adjacent dimensions) in both traces become
    :class:`RuntimeInt` (read at run time); float literals equal to a dimension, its square root or
    their reciprocals become :class:`RuntimeFloat`. With ``fitted`` the fitted program is the
    primary trace, so literals that stay unresolved hold the values the CPU verifier will use.
    """
    other_src = None
    try:
        from evokernel.verify.sizing import fit_problem

        fit = fit_problem(source, filename=filename, verify=False)
        if fit.changed:
            other_src = fit.source
    except Exception:  # fitting is best effort; a single trace stands on its own
        other_src = None
    if other_src is None:  # nothing to fit: compare with every size constant doubled instead
        fitted = False
        other_src = _doubled(source, filename)
        if other_src is None:
            return trace_program(source, filename)
    first, second = (other_src, source) if fitted else (source, other_src)
    traced = trace_program(first, filename)
    try:
        other = trace_program(second, filename)
        _resolve_literals(traced, other)
    except TraceError:
        pass
    return traced
