"""The public KernelBench from the Hugging Face hub (``ScalingIntelligence/KernelBench``).

The dataset has one split per level (``level_1`` ... ``level_4``) with the columns ``code``,
``level``, ``name`` and ``problem_id``. Problems get the same ids as a local checkout of the public
repository (``level1/19_ReLU``), so results, memories and solution folders agree between the two.
``datasets`` is imported only here, only when needed (``pip install evokernel[hf]``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from evokernel.errors import UserError
from kernelbench.loader import compile_filter
from kernelbench.problem import Problem, make_problem, natural_key

__all__ = ["DATASET", "load_hf", "problems_from_rows"]

DATASET = "ScalingIntelligence/KernelBench"
COLUMNS = ("code", "level", "name", "problem_id")
_SPLIT = re.compile(r"^level_?(\d+)$")


def _import_datasets() -> Any:
    try:
        import datasets
    except ImportError as exc:
        raise UserError(
            "loading KernelBench from Hugging Face needs the `datasets` package; install it with "
            "`pip install evokernel[hf]` (or pass a local KernelBench checkout with --suite PATH)"
        ) from exc
    return datasets


def _splits(dataset: Any) -> list[tuple[int | None, Iterable[Mapping[str, Any]]]]:
    """(level of the split or None, rows) for a DatasetDict/dict of splits or a single table of rows."""
    if isinstance(dataset, Mapping) and all(c in dataset for c in COLUMNS):  # columns -> rows
        columns = {c: list(dataset[c]) for c in COLUMNS}
        return [(None, [dict(zip(columns, values)) for values in zip(*columns.values())])]
    if isinstance(dataset, Mapping) or (
        hasattr(dataset, "keys") and hasattr(dataset, "__getitem__") and not hasattr(dataset, "column_names")
    ):
        out = []
        for key in sorted(dataset.keys(), key=str):
            m = _SPLIT.match(str(key))
            out.append((int(m.group(1)) if m else None, dataset[key]))
        return out
    return [(None, dataset)]


def _problem_name(row: Mapping[str, Any]) -> str:
    name = str(row["name"]).strip()
    name = name.rsplit("/", 1)[-1].removesuffix(".py")
    pid = str(row["problem_id"]).strip()
    if pid and not re.match(rf"^{re.escape(pid)}_", name):
        name = f"{pid}_{name}"
    return name


def problems_from_rows(
    dataset: Any,
    *,
    level: int | None = None,
    filter: str | re.Pattern[str] | None = None,  # noqa: A002
) -> list[Problem]:
    """Problems from a datasets.Dataset / DatasetDict, a dict of splits, or any iterable of row dicts."""
    pattern = compile_filter(filter)
    problems: list[Problem] = []
    seen: set[str] = set()
    for split_level, rows in _splits(dataset):
        if level is not None and split_level is not None and split_level != level:
            continue
        for row in rows:
            missing = [c for c in COLUMNS if c not in row]
            if missing:
                raise UserError(
                    f"Hugging Face KernelBench rows need the columns {', '.join(COLUMNS)}; missing {', '.join(missing)}"
                )
            row_level = int(row["level"])
            if level is not None and row_level != level:
                continue
            pid = f"level{row_level}/{_problem_name(row)}"
            if pid in seen or (pattern is not None and not pattern.search(pid)):
                continue
            seen.add(pid)
            problems.append(make_problem(str(row["code"]), pid, level=row_level, path=None))
    problems.sort(key=lambda p: natural_key(p.id))
    return problems


def load_hf(
    name: str = DATASET,
    *,
    dataset: Any = None,
    level: int | None = None,
    filter: str | re.Pattern[str] | None = None,  # noqa: A002
    revision: str | None = None,
) -> list[Problem]:
    """Problems of the Hugging Face KernelBench (or of ``dataset`` when one is passed, e.g. in tests)."""
    if dataset is None:
        datasets = _import_datasets()
        try:
            dataset = datasets.load_dataset(name, revision=revision)
        except Exception as exc:  # network, authentication, unknown dataset: one line for the user
            raise UserError(
                f"cannot load the Hugging Face dataset {name!r} ({type(exc).__name__}: {str(exc)[:200]}); "
                "check the network or pass a local KernelBench checkout with --suite PATH"
            ) from exc
    return problems_from_rows(dataset, level=level, filter=filter)
