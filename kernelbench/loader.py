"""Load problem sets: the built-in suite, a folder (public KernelBench layout or one's own), a file, or HF.

``load_suite(spec)`` accepts
- ``"builtin"``: the team's suite shipped in ``kernelbench/builtin`` (``level1/...``, ``level2/...``);
- a folder: a checkout of the public KernelBench (the repository root, its ``KernelBench`` folder, or
  any folder holding ``level1/``, ``level2/`` ...), or a folder of one's own problems (every ``*.py``
  below it that defines ``Model``, ``get_inputs`` and ``get_init_inputs``);
- a single ``.py`` file;
- ``"hf"`` or ``"hf:<dataset name>"``: the Hugging Face dataset (see ``kernelbench.hf``).

A problem's id is its path below the suite root without ``.py`` (``level1/19_ReLU``); its level comes
from a ``levelN`` folder in that path (None when there is none).
"""

from __future__ import annotations

import ast
import logging
import re
from pathlib import Path

from evokernel._ast import parse as parse_python
from evokernel.errors import UserError
from evokernel.programs import read_source
from kernelbench.problem import Problem, level_from_parts, make_problem, natural_key, problem_id_for_path

__all__ = ["BUILTIN_ROOT", "load_suite", "load_problem", "problem_files", "compile_filter", "select"]

log = logging.getLogger(__name__)

BUILTIN_ROOT = Path(__file__).resolve().parent / "builtin"
_REQUIRED = ("Model", "get_inputs", "get_init_inputs")
_LEVEL_DIR = re.compile(r"^level_?\d+$", re.IGNORECASE)
_cache: dict[tuple[str, str, int | None, str], Problem] = {}


def compile_filter(pattern: str | re.Pattern[str] | None) -> re.Pattern[str] | None:
    """Compile a problem-id filter, turning a bad regular expression into a one-line UserError."""
    if pattern is None or isinstance(pattern, re.Pattern):
        return pattern
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise UserError(f"--filter {pattern!r} is not a valid regular expression ({exc}); fix the pattern") from exc


def _check_level(level: int | None) -> None:
    if level is not None and (not isinstance(level, int) or isinstance(level, bool) or level < 1):
        raise UserError(f"--level {level!r}: pass a positive integer level such as 1, 2 or 3")


def select(
    problem_ids: list[str], levels: list[int | None], level: int | None, pattern: re.Pattern[str] | None
) -> list[int]:
    """Indices of the ids that pass the level and regex filters (``re.search`` on the id)."""
    keep = []
    for i, (pid, lvl) in enumerate(zip(problem_ids, levels)):
        if level is not None and lvl != level:
            continue
        if pattern is not None and not pattern.search(pid):
            continue
        keep.append(i)
    return keep


def _defines_problem(source: str) -> bool:
    try:
        tree = parse_python(source)
    except SyntaxError:
        return True  # let make_problem report the syntax error with the file name
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return all(n in names for n in _REQUIRED)


def _suite_root(folder: Path) -> Path:
    """The folder whose children are ``levelN`` folders, when there is one (public checkout layout)."""
    if any(p.is_dir() and _LEVEL_DIR.match(p.name) for p in folder.iterdir()):
        return folder
    nested = folder / "KernelBench"
    if nested.is_dir() and any(p.is_dir() and _LEVEL_DIR.match(p.name) for p in nested.iterdir()):
        return nested
    return folder


def _skip(rel: Path) -> bool:
    return any(part.startswith((".", "_")) or part == "__pycache__" for part in rel.parts)


def problem_files(folder: Path) -> tuple[Path, list[Path]]:
    """The suite root below ``folder`` and the candidate problem files under it (naturally sorted)."""
    root = _suite_root(folder)
    level_dirs = [p for p in root.iterdir() if p.is_dir() and _LEVEL_DIR.match(p.name)]
    bases = level_dirs or [root]
    files = [f for base in bases for f in base.rglob("*.py") if f.is_file() and not _skip(f.relative_to(root))]
    files.sort(key=lambda f: natural_key(f.relative_to(root).with_suffix("").as_posix()))
    return root, files


def _problem_for(source: str, problem_id: str, level: int | None, path: Path | None) -> Problem:
    from evokernel.programs import source_hash

    key = (source_hash(source), problem_id, level, str(path))
    if key not in _cache:
        _cache[key] = make_problem(source, problem_id, level=level, path=path)
    return _cache[key]


def load_problem(path: str | Path, root: str | Path | None = None) -> Problem:
    """Load one problem file; its id is the path below ``root`` (default: ``levelN/<stem>`` or ``<stem>``)."""
    p = Path(path)
    source = read_source(p)
    if root is not None:
        try:
            rel = p.resolve().relative_to(Path(root).resolve())
        except ValueError:
            raise UserError(f"{p}: is not inside the suite root {root}") from None
        parts = rel.with_suffix("").parts
    else:
        parts = tuple(problem_id_for_path(p).split("/"))
    return _problem_for(source, "/".join(parts), level_from_parts(parts[:-1]), p)


def _load_folder(folder: Path, level: int | None, pattern: re.Pattern[str] | None) -> list[Problem]:
    root, files = problem_files(folder)
    ids = [f.relative_to(root).with_suffix("").as_posix() for f in files]
    levels = [level_from_parts(tuple(i.split("/")[:-1])) for i in ids]
    problems = []
    found_any = False
    for i in select(ids, levels, level, pattern):
        source = read_source(files[i])
        if not _defines_problem(source):
            log.warning("%s: skipped, it does not define %s", files[i], ", ".join(_REQUIRED))
            continue
        found_any = True
        problems.append(_problem_for(source, ids[i], levels[i], files[i]))
    if not files or (not found_any and level is None and pattern is None):
        raise UserError(
            f"{folder}: no KernelBench problems found (.py files defining Model, get_inputs and "
            "get_init_inputs, optionally in level1/, level2/ ... folders); pass another --suite"
        )
    return problems


def load_suite(
    spec: str | Path = "builtin",
    *,
    level: int | None = None,
    filter: str | re.Pattern[str] | None = None,  # noqa: A002 - the CLI's name for it
) -> list[Problem]:
    """Problems of a suite (``"builtin"``, a folder, a ``.py`` file, ``"hf"``/``"hf:NAME"``), filtered.

    ``level`` keeps one level; ``filter`` is a regular expression searched in each problem id.
    Raises UserError for an unknown suite, a bad filter or a problem file that does not load.
    """
    _check_level(level)
    pattern = compile_filter(filter)
    if isinstance(spec, str) and spec == "builtin":
        return _load_folder(BUILTIN_ROOT, level, pattern)
    if isinstance(spec, str) and (spec == "hf" or spec.startswith("hf:")):
        from kernelbench.hf import DATASET, load_hf

        name = (spec[3:] if spec.startswith("hf:") else "") or DATASET
        return load_hf(name, level=level, filter=pattern)
    path = Path(spec).expanduser()
    if path.is_dir():
        return _load_folder(path, level, pattern)
    if path.is_file():
        if path.suffix != ".py":
            raise UserError(f"{path}: a problem file must be a .py file in KernelBench format")
        problem = load_problem(path)
        keep = select([problem.id], [problem.level], level, pattern)
        return [problem] if keep else []
    raise UserError(
        f"unknown suite {str(spec)!r}: no such file or folder; pass 'builtin', 'hf', a folder of "
        "problems (e.g. a KernelBench checkout) or a .py problem file"
    )
