"""The package root: cheap to import, and every public name resolves to a documented object."""

from __future__ import annotations

import subprocess
import sys

import evokernel


def test_every_public_name_resolves_and_is_documented() -> None:
    for name in evokernel.__all__:
        value = getattr(evokernel, name)
        if name != "__version__":
            assert (value.__doc__ or "").strip(), f"{name} has no docstring"


def test_import_is_light() -> None:
    code = "import sys, evokernel; print(sorted(m for m in ('torch', 'triton', 'litellm', 'matplotlib') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_cli_help_lists_every_command() -> None:
    out = subprocess.run([sys.executable, "-m", "evokernel.cli", "--help"], capture_output=True, text=True, check=True)
    for command in ("synthesize", "eval", "bench", "report", "memory"):
        assert command in out.stdout
    # building the parser imports no heavy module: `evokernel --help` answers at once
    code = "import sys; from evokernel.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_kernelbench_public_names_resolve_and_are_documented() -> None:
    import kernelbench

    # the documented helpers are exported beside their siblings (load_problem, RunRecords, read_run)
    for name in ("problem_id_for_path", "check_new_run_dir", "Coverage"):
        assert name in kernelbench.__all__ and name in dir(kernelbench), name
    for name in kernelbench.__all__:
        value = getattr(kernelbench, name)
        if not isinstance(value, (str, type(kernelbench.BUILTIN_ROOT))):
            assert (value.__doc__ or "").strip(), f"kernelbench.{name} has no docstring"
    from kernelbench.problem import problem_id_for_path
    from kernelbench.records import Coverage, check_new_run_dir

    assert kernelbench.problem_id_for_path is problem_id_for_path
    assert kernelbench.check_new_run_dir is check_new_run_dir and kernelbench.Coverage is Coverage
    code = "import sys, kernelbench; print(sorted(m for m in ('torch', 'triton', 'matplotlib') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
