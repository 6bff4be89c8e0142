"""Turn what callers pass as a problem (path, source text, object with .source) into checked source."""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evokernel._ast import parse as parse_python
from evokernel.programs import REQUIRED_NAMES, ProblemError, read_source, size_constants, source_hash

__all__ = ["ProblemSpec", "resolve_problem"]


@dataclass(frozen=True)
class ProblemSpec:
    """A problem's text, the name used in messages, its id and hash."""

    source: str
    filename: str
    id: str | None
    hash: str


def _bound_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for stmt in tree.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(stmt.name)
        elif isinstance(stmt, ast.Assign):
            names.update(t.id for t in stmt.targets if isinstance(t, ast.Name))
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            names.add(stmt.target.id)
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in stmt.names)
    return names


def resolve_problem(problem: Any) -> ProblemSpec:
    """Path -> read it; str -> source text (or a path to an existing .py file); else ``.source``/``.id``.

    Raises ProblemError (a UserError) with the file name for a missing file, a syntax error or a
    problem without Model / get_inputs / get_init_inputs.
    """
    pid = None
    if isinstance(problem, os.PathLike):
        path = Path(problem)
        source, filename, pid = read_source(path), str(path), path.stem
    elif isinstance(problem, str):
        if "\n" not in problem and problem.strip().endswith(".py"):
            path = Path(problem.strip())
            source, filename, pid = read_source(path), str(path), path.stem
        else:
            source, filename = problem, "problem.py"
    elif hasattr(problem, "source"):
        source = str(problem.source)
        pid = getattr(problem, "id", None)
        path = getattr(problem, "path", None)
        filename = str(path) if path else f"{pid or 'problem'}.py"
    else:
        raise ProblemError(
            f"cannot use {type(problem).__name__} as a problem; pass a path, the program text, "
            "or an object with a .source attribute"
        )
    size_constants(source, filename)  # parses: a syntax error becomes a ProblemError naming the line
    missing = [n for n in REQUIRED_NAMES if n not in _bound_names(parse_python(source))]
    if missing:
        raise ProblemError(
            f"{filename}: missing {', '.join(missing)}; a KernelBench problem defines "
            "class Model(nn.Module), get_inputs() and get_init_inputs()"
        )
    return ProblemSpec(source, filename, pid, source_hash(source))
