"""The public KernelBench from the Hugging Face hub (``ScalingIntelligence/KernelBench``).

The dataset has one split per level (``level_1`` ... ``level_4``) with the columns ``code``,
``level``, ``name`` and ``problem_id``. Problems get the same ids as a local checkout of the public
repository (``level1/19_ReLU``), so results, memories and solution folders agree between the two.
``datasets`` is imported only here, only when needed (``pip install evokernel[hf]``).

Without a network the Hugging Face libraries retry for half a minute, warning at each try, before
they fall back to their local cache. So before ``datasets`` is first imported, a quick probe (one
TCP connection to the hub) decides: when the hub cannot be reached, ``HF_HUB_OFFLINE=1`` is set for
this process and the dataset comes from the local cache at once, or the load fails with one line.
A mode the user chose (``HF_HUB_OFFLINE``/``HF_DATASETS_OFFLINE`` set) or a proxy skips the probe.
"""

from __future__ import annotations

import os
import re
import socket
import sys
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from evokernel.errors import UserError
from kernelbench.loader import compile_filter
from kernelbench.problem import Problem, make_problem, natural_key

__all__ = ["DATASET", "load_hf", "problems_from_rows"]

DATASET = "ScalingIntelligence/KernelBench"
COLUMNS = ("code", "level", "name", "problem_id")
_SPLIT = re.compile(r"^level_?(\d+)$")
_OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
_PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
PROBE_TIMEOUT_S = 3.0


def _hub_address() -> tuple[str, int]:
    """(host, port) of the hub: ``HF_ENDPOINT`` or https://huggingface.co."""
    url = urlsplit(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    return url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)


def _hub_reachable(timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    """Whether the hub's host accepts a TCP connection within ``timeout_s`` (name lookup included)."""
    try:
        with socket.create_connection(_hub_address(), timeout=timeout_s):
            return True
    except OSError:
        return False


def _offline_unless_reachable() -> bool:
    """Set ``HF_HUB_OFFLINE=1`` in this process when the hub cannot be reached; returns whether it did.

    Only before ``datasets`` and ``huggingface_hub`` are imported (they read the mode at import), and
    only when the user chose no mode and no proxy is configured (a direct probe would not tell)."""
    if any(m in sys.modules for m in ("datasets", "huggingface_hub")):
        return False
    if any(v in os.environ for v in _OFFLINE_VARS) or any(os.environ.get(v) for v in _PROXY_VARS):
        return False
    if _hub_reachable():
        return False
    os.environ["HF_HUB_OFFLINE"] = "1"
    return True


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
        offline = _offline_unless_reachable()
        datasets = _import_datasets()
        try:
            dataset = datasets.load_dataset(name, revision=revision)
        except Exception as exc:  # network, authentication, unknown dataset: one line for the user
            if offline:
                host, port = _hub_address()
                raise UserError(
                    f"cannot load the Hugging Face dataset {name!r}: {host}:{port} cannot be reached and the "
                    "dataset is not in the local Hugging Face cache; connect to the network or pass a local "
                    "KernelBench checkout with --suite PATH"
                ) from exc
            raise UserError(
                f"cannot load the Hugging Face dataset {name!r} ({type(exc).__name__}: {str(exc)[:200]}); "
                "check the network or pass a local KernelBench checkout with --suite PATH"
            ) from exc
    return problems_from_rows(dataset, level=level, filter=filter)
