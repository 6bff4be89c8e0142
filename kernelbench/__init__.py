"""KernelBench-format problem sets (loader, built-in suite), metrics, run records and reports.

Public names are imported lazily so that `import kernelbench` stays cheap (no torch or matplotlib).
"""

from __future__ import annotations

from evokernel._lazy import lazy_getattr

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "Problem": "kernelbench.problem",
    "make_problem": "kernelbench.problem",
    "problem_id_for_path": "kernelbench.problem",
    "BUILTIN_ROOT": "kernelbench.loader",
    "load_suite": "kernelbench.loader",
    "load_problem": "kernelbench.loader",
    "load_hf": "kernelbench.hf",
    "categorize": "kernelbench.categories",
    "compute_metrics": "kernelbench.metrics",
    "RunRecords": "kernelbench.records",
    "RunWriter": "kernelbench.records",
    "read_run": "kernelbench.records",
    "check_new_run_dir": "kernelbench.records",
    "Coverage": "kernelbench.records",
    "BenchRun": "kernelbench.runner",
    "run_solutions": "kernelbench.runner",
    "render_html": "kernelbench.report",
    "write_report": "kernelbench.report",
}

__all__ = list(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)


def __dir__() -> list[str]:
    return sorted(__all__)
