"""The Problem record: one KernelBench-format reference program and what is known about it."""

from __future__ import annotations

import ast
import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evokernel._ast import parse as parse_python
from evokernel.programs import ProblemError, ProgramProfile, profile_program, size_constants, source_hash

__all__ = ["Problem", "make_problem", "level_from_parts", "natural_key", "problem_id_for_path"]

_LEVEL_DIR = re.compile(r"^level_?(\d+)$", re.IGNORECASE)


@dataclass
class Problem:
    """A reference program with its id (path below the suite root without .py), level and categories."""

    id: str  # e.g. "level1/19_ReLU"; used in results, memories and for solution files
    level: int | None
    name: str  # file stem, e.g. "19_ReLU"
    category: str  # primary category (what metrics group by)
    categories: list[str]  # primary first
    source: str
    path: Path | None
    sizes: dict[str, int]  # module-level integer constants at their defaults
    init_signature: str  # e.g. "(in_features: int, out_features: int)"
    forward_signature: str  # e.g. "(x: torch.Tensor) -> torch.Tensor"
    hash: str  # evokernel.programs.source_hash(source)
    profile: ProgramProfile | None = field(default=None, repr=False, compare=False)

    def to_dict(self, *, with_source: bool = False) -> dict[str, Any]:
        """JSON-friendly summary (the source only when asked for)."""
        out: dict[str, Any] = {
            "id": self.id,
            "level": self.level,
            "name": self.name,
            "category": self.category,
            "categories": list(self.categories),
            "path": str(self.path) if self.path is not None else None,
            "sizes": dict(self.sizes),
            "init_signature": self.init_signature,
            "forward_signature": self.forward_signature,
            "hash": self.hash,
        }
        if with_source:
            out["source"] = self.source
        return out

    @property
    def solution_relpath(self) -> Path:
        """Where this problem's solution lives below a solutions folder: ``<id>.py``."""
        return Path(*self.id.split("/")).with_suffix(".py")


def natural_key(problem_id: str) -> tuple:
    """Sort key that orders ``level1/2_X`` before ``level1/10_Y``."""
    return tuple(int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", problem_id))


def level_from_parts(parts: tuple[str, ...] | list[str]) -> int | None:
    """The level named by the first ``levelN`` / ``level_N`` path component, if any."""
    for part in parts:
        m = _LEVEL_DIR.match(part)
        if m:
            return int(m.group(1))
    return None


def problem_id_for_path(path: str | Path) -> str:
    """The id of a problem file loaded on its own: ``levelN/<stem>`` when its folder is a level folder
    (``level1``, ``level_2``), else ``<stem>``. The loader, ``synthesize`` and the memory use this one rule,
    so a problem has the same id (and shares start points and task filters) wherever it was run from."""
    p = Path(path)
    parent = p.resolve().parent.name
    return f"{parent}/{p.stem}" if _LEVEL_DIR.match(parent) else p.stem


def _signature(fn: ast.FunctionDef) -> str:
    args = copy.deepcopy(fn.args)
    if args.posonlyargs:
        args.posonlyargs = args.posonlyargs[1:]
    elif args.args:
        args.args = args.args[1:]  # self
    text = f"({ast.unparse(args)})"
    if fn.returns is not None:
        text += f" -> {ast.unparse(fn.returns)}"
    return text


def _model_signatures(source: str, filename: str) -> tuple[str, str]:
    try:
        tree = parse_python(source, filename=filename)
    except SyntaxError as exc:
        raise ProblemError(
            f"{filename}:{exc.lineno}: syntax error in the problem: {exc.msg}; fix the problem file"
        ) from exc
    init_sig, fwd_sig = "()", "()"
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "Model":
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                    init_sig = _signature(item)
                elif isinstance(item, ast.FunctionDef) and item.name == "forward":
                    fwd_sig = _signature(item)
    return init_sig, fwd_sig


def make_problem(source: str, problem_id: str, *, level: int | None = None, path: Path | None = None) -> Problem:
    """Build a Problem from program text: sizes, signatures, hash, and categories from a meta-tensor profile.

    Raises ProblemError (naming the file) when the program does not load.
    """
    from kernelbench.categories import categorize

    filename = str(path) if path is not None else problem_id
    name = problem_id.rsplit("/", 1)[-1]
    init_sig, fwd_sig = _model_signatures(source, filename)
    profile = profile_program(source, filename)
    categories = categorize(profile, name=name, level=level)
    return Problem(
        id=problem_id,
        level=level,
        name=name,
        category=categories[0],
        categories=categories,
        source=source,
        path=path,
        sizes=size_constants(source, filename),
        init_signature=init_sig,
        forward_signature=fwd_sig,
        hash=source_hash(source),
        profile=profile,
    )
