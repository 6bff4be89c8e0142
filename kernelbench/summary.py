"""Terminal summary tables (rich) of a run's metrics, shared by both `evokernel bench` modes."""

from __future__ import annotations

from typing import Any

from kernelbench.metrics import NOT_MEASURED_TEXT, P_VALUES, fast_key, format_value

__all__ = ["summary_tables", "print_summary", "METRIC_COLUMNS"]

# (metrics key, column title)
METRIC_COLUMNS: tuple[tuple[str, str], ...] = (
    ("compile_rate", "compiled"),
    ("correctness", "correct"),
    *((fast_key(p), f"fast_{p:g}") for p in P_VALUES if p > 0),
    ("speedup_eager", "x eager"),
    ("speedup_compile", "x compile"),
)


_RATE_COLUMNS = METRIC_COLUMNS[:2]


def _row(label: str, block: dict[str, Any], *, measured: bool, with_within: bool) -> list[str]:
    cells = [label, str(block["n"])]
    if measured:
        cells += [format_value(block, key) for key, _ in METRIC_COLUMNS]
    else:  # one cell says it, instead of five
        cells += [format_value(block, key) for key, _ in _RATE_COLUMNS]
        cells.append(NOT_MEASURED_TEXT)
    if with_within:
        cells.append(format_value(block, "within_task_speedup"))
    return cells


def summary_tables(metrics: dict[str, Any], *, title: str = "") -> list[Any]:
    """rich Tables: overall + per level, and per category."""
    from rich import box
    from rich.table import Table

    with_within = metrics["overall"].get("within_task_speedup") is not None
    measured = bool(metrics.get("speed_measured"))
    tables = []
    for heading, groups in (("level", metrics["levels"]), ("category", metrics["categories"])):
        table = Table(
            title=f"{title} by {heading}".strip() if title else f"by {heading}",
            title_justify="left",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
            caption="x eager / x compile: geometric-mean speedup of the correct kernels" if measured else None,
            caption_justify="left",
        )
        table.add_column(heading, no_wrap=True)
        table.add_column("n", justify="right", no_wrap=True)
        for _, col in METRIC_COLUMNS if measured else _RATE_COLUMNS:
            table.add_column(col, justify="right", no_wrap=True)
        if not measured:
            table.add_column("fast_p, speedups")
        if with_within:
            table.add_column("within", justify="right", no_wrap=True)
        for key, block in groups.items():
            table.add_row(*_row(key, block, measured=measured, with_within=with_within))
        table.add_section()
        table.add_row(*_row("all", metrics["overall"], measured=measured, with_within=with_within), style="bold")
        tables.append(table)
    return tables


def print_summary(metrics: dict[str, Any], *, console: Any = None, title: str = "") -> None:
    """Print the summary tables, the statuses and, for an incomplete run, how many problems have results."""
    from rich.console import Console

    if console is None:  # logs and pipes get room for every column; terminals keep their width
        console = Console()
        if not console.is_terminal:
            console = Console(width=max(console.width, 120))
    for table in summary_tables(metrics, title=title):
        console.print(table)
    overall = metrics["overall"]
    statuses = ", ".join(f"{k} {v}" for k, v in overall["statuses"].items())
    console.print(f"statuses: {statuses}")
    note = (metrics.get("coverage") or {}).get("note")
    if note:
        console.print(note, style="bold red", markup=False)
