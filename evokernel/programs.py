"""Load and inspect KernelBench-format reference programs.

A reference program (a "problem") is Python source defining ``class Model(nn.Module)``,
``get_inputs()`` and ``get_init_inputs()``, with sizes as module-level integer constants.
This module is the bottom of the dependency graph: the verifier, the benchmark suite, the
memory's embedder and the offline proposer all read problems through it. Only reference
programs run here, never candidate code.
"""

from __future__ import annotations

import ast
import hashlib
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evokernel._ast import parse as parse_python
from evokernel.errors import UserError

__all__ = [
    "ProblemError",
    "ProgramProfile",
    "read_source",
    "load_program",
    "run_reference",
    "size_constants",
    "with_sizes",
    "profile_program",
    "source_hash",
]

REQUIRED_NAMES = ("Model", "get_inputs", "get_init_inputs")


class ProblemError(UserError):
    """A problem file the user supplied cannot be used; the message names the file and the fix."""


def source_hash(source: str) -> str:
    """Stable short hash of a program's text (sha256, 16 hex digits)."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]


def read_source(path: str | Path) -> str:
    """Read a problem file, raising ProblemError with the path when it is missing or unreadable."""
    p = Path(path)
    if not p.exists():
        raise ProblemError(f"{p}: no such problem file; pass the path of a KernelBench-format .py file")
    if not p.is_file():
        raise ProblemError(f"{p}: is not a file; pass the path of a KernelBench-format .py file")
    try:
        return p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProblemError(f"{p}: cannot be read ({exc}); check its permissions and encoding (UTF-8)") from exc


def _parse(source: str, filename: str) -> ast.Module:
    try:
        return parse_python(source, filename=filename)
    except SyntaxError as exc:
        raise ProblemError(
            f"{filename}:{exc.lineno}: syntax error in the problem: {exc.msg}; fix the problem file"
        ) from exc


def load_program(source: str, filename: str = "<problem>") -> types.ModuleType:
    """Execute a reference program in a fresh module and check it defines Model, get_inputs, get_init_inputs."""
    tree = _parse(source, filename)
    code = compile(tree, filename, "exec")
    name = f"evokernel_problem_{source_hash(source)}"
    module = types.ModuleType(name)
    module.__file__ = filename
    # Registered while executing so that dataclasses/pickling inside the problem can find it.
    sys.modules[name] = module
    try:
        exec(code, module.__dict__)
    except (Exception, SystemExit) as exc:  # the problem's own code failed (or exited): one line
        sys.modules.pop(name, None)
        raise ProblemError(
            f"{filename}: importing the problem failed: {type(exc).__name__}: {exc}; fix the problem file"
        ) from exc
    missing = [n for n in REQUIRED_NAMES if not hasattr(module, n)]
    if missing:
        sys.modules.pop(name, None)
        raise ProblemError(
            f"{filename}: missing {', '.join(missing)}; a KernelBench problem defines "
            "class Model(nn.Module), get_inputs() and get_init_inputs()"
        )
    import torch.nn as nn

    if not (isinstance(module.Model, type) and issubclass(module.Model, nn.Module)):
        raise ProblemError(f"{filename}: Model must be a subclass of torch.nn.Module")
    for fn in ("get_inputs", "get_init_inputs"):
        if not callable(getattr(module, fn)):
            raise ProblemError(f"{filename}: {fn} must be a function returning a list")
    return module


def run_reference(source: str, filename: str = "<problem>", *, seed: int = 0) -> Any:
    """Build the program's Model from get_init_inputs() and run forward once on get_inputs(), on the CPU
    without gradients; returns the output. A step that fails is a ProblemError naming the file and the step.

    Runs the reference program (the user's own file) in this process: call it on sizes that fit
    (``evokernel.verify.sizing.fit_problem``) when the file's own sizes are large."""
    import torch

    module = load_program(source, filename)
    step = "building the reference Model"
    try:
        with torch.random.fork_rng(devices=[]):  # the caller's random state is left as it was
            torch.manual_seed(seed)
            model = module.Model(*module.get_init_inputs())
            step = "get_inputs()"
            inputs = module.get_inputs()
            step = "the reference forward"
            with torch.no_grad():
                return model(*inputs)
    except (Exception, SystemExit) as exc:  # the problem's code failed (or called exit)
        raise ProblemError(
            f"{filename}: {step} failed: {type(exc).__name__}: {str(exc)[:200]}; fix the problem file"
        ) from exc
    finally:
        sys.modules.pop(module.__name__, None)


def _int_literal(node: ast.expr) -> int | None:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    return None


def _size_assignments(tree: ast.Module) -> dict[str, ast.Constant]:
    found: dict[str, ast.Constant] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            target, value = stmt.targets[0].id, stmt.value
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
            target, value = stmt.target.id, stmt.value
        else:
            continue
        if _int_literal(value) is not None:
            found[target] = value  # type: ignore[assignment]
    return found


def size_constants(source: str, filename: str = "<problem>") -> dict[str, int]:
    """Module-level integer constants of a program (``batch_size = 16``), in source order."""
    return {k: v.value for k, v in _size_assignments(_parse(source, filename)).items()}


def with_sizes(source: str, sizes: dict[str, int], filename: str = "<problem>") -> str:
    """Return the program text with the named module-level integer constants replaced."""
    nodes = _size_assignments(_parse(source, filename))
    unknown = set(sizes) - set(nodes)
    if unknown:
        raise ProblemError(f"{filename}: no module-level integer constant named {', '.join(sorted(unknown))}")
    lines = source.splitlines(keepends=True)
    # Replace from the end so earlier offsets stay valid.
    edits = sorted(((nodes[k], int(v)) for k, v in sizes.items()), key=lambda e: (e[0].lineno, e[0].col_offset))
    for node, value in reversed(edits):
        assert node.end_lineno == node.lineno and node.end_col_offset is not None
        line = lines[node.lineno - 1]
        # ast offsets are in UTF-8 bytes
        raw = line.encode("utf-8")
        raw = raw[: node.col_offset] + str(value).encode() + raw[node.end_col_offset :]
        lines[node.lineno - 1] = raw.decode("utf-8")
    return "".join(lines)


@dataclass
class ProgramProfile:
    """What a reference program does, as far as can be seen without real data."""

    ops: list[str] = field(default_factory=list)  # aten overload packets in order of first use, e.g. "aten.relu"
    op_counts: dict[str, int] = field(default_factory=dict)
    module_types: list[str] = field(default_factory=list)  # nn.Module classes inside Model, e.g. "Conv2d"
    input_shapes: list[list[int]] = field(default_factory=list)
    input_dtypes: list[str] = field(default_factory=list)
    output_shapes: list[list[int]] = field(default_factory=list)
    output_dtypes: list[str] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)
    identifiers: list[str] = field(default_factory=list)  # attribute/function names the forward calls
    traced: bool = False
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return dict(self.__dict__)


def _forward_identifiers(tree: ast.Module) -> list[str]:
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "Model":
            for sub in ast.walk(node):
                if isinstance(sub, ast.Call):
                    fn = sub.func
                    if isinstance(fn, ast.Attribute):
                        names.append(fn.attr)
                    elif isinstance(fn, ast.Name):
                        names.append(fn.id)
    seen: dict[str, None] = {}
    for n in names:
        seen.setdefault(n, None)
    return list(seen)


def _flat_tensors(obj: Any) -> list[Any]:
    import torch

    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [t for o in obj for t in _flat_tensors(o)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in _flat_tensors(o)]
    return []


def profile_program(source: str, filename: str = "<problem>") -> ProgramProfile:
    """Trace a program on meta tensors (no real compute) and record its aten ops, shapes and dtypes.

    Never raises for a program that loads: where meta tracing fails, the profile still holds the
    sizes and the identifiers read from the source, with ``traced=False`` and the error text.
    """
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    tree = _parse(source, filename)
    profile = ProgramProfile(sizes=size_constants(source, filename), identifiers=_forward_identifiers(tree))
    module = load_program(source, filename)

    class _Recorder(TorchDispatchMode):
        def __torch_dispatch__(self, func, types_, args=(), kwargs=None):  # noqa: ANN001
            name = str(func.overloadpacket)
            profile.op_counts[name] = profile.op_counts.get(name, 0) + 1
            if name not in profile.ops:
                profile.ops.append(name)
            return func(*args, **(kwargs or {}))

    try:
        with torch.device("meta"):
            init_inputs = module.get_init_inputs()
            model = module.Model(*init_inputs)
            inputs = module.get_inputs()
        profile.module_types = sorted({type(m).__name__ for m in model.modules() if m is not model})
        tensors = _flat_tensors(inputs)
        profile.input_shapes = [list(t.shape) for t in tensors]
        profile.input_dtypes = [str(t.dtype).removeprefix("torch.") for t in tensors]
        with torch.no_grad(), _Recorder():
            out = model(*inputs)
        outs = _flat_tensors(out)
        profile.output_shapes = [list(t.shape) for t in outs]
        profile.output_dtypes = [str(t.dtype).removeprefix("torch.") for t in outs]
        profile.traced = True
    except Exception as exc:  # data-dependent ops, ops without meta kernels: keep what we have
        profile.error = f"{type(exc).__name__}: {exc}"[:500]
    return profile
