"""The candidate's side of a verification: runs inside the sandboxed worker, never in the parent.

Order matters: records and snapshots are taken before the candidate is imported, so whatever the
candidate does afterwards is measured against the untouched originals. The worker never holds the
reference's outputs; it writes its own outputs for the parent to compare.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

from evokernel.verify.cases import pack_outputs
from evokernel.verify.messages import describe_exception, trim
from evokernel.verify.recorders import (
    LaunchRecorder,
    OpRecorder,
    changed_keys,
    kernel_functions,
    snapshot_clocks,
    snapshot_flags,
)
from evokernel.verify.rules import rule_message

__all__ = ["run_candidate_job", "Progress"]


class Progress:
    """Where the worker is, in a file the parent reads when the worker times out or dies."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, phase: str) -> None:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, phase.encode())
            finally:
                os.close(fd)
        except OSError:
            pass


class _Stop(Exception):
    """Ends the job early with a status already written into the result."""


def _import_candidate(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location("candidate", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["candidate"] = module
    spec.loader.exec_module(module)
    return module


def run_candidate_job(job: dict[str, Any], job_dir: Path, backend: Any) -> dict[str, Any]:
    """Import, build and run the candidate over every case; returns the worker's record."""
    result: dict[str, Any] = {
        "status": "ok", "rule": None, "message": "", "phase": None, "cases": {}, "kernels": [], "ops": [],
        "checks": {}, "timing": None,
    }
    try:
        _run(job, job_dir, backend, result)
    except _Stop:
        pass
    return result


def _fail(result: dict[str, Any], status: str, message: str, phase: str, rule: str | None = None,
          signal: str | None = None) -> None:
    result.update(status=status, message=trim(message), phase=phase, rule=rule)
    if signal:
        result["signal"] = signal
    raise _Stop


def _run(job: dict[str, Any], job_dir: Path, backend: Any, result: dict[str, Any]) -> None:
    import torch
    import torch.utils.deterministic

    progress = Progress(job_dir / "progress")
    candidate_path = Path(job["candidate_path"])
    cpath = str(candidate_path)
    device = backend.device()
    checks = result["checks"]

    # Pre-bound originals: the candidate cannot reach these names.
    tensor_type = torch.Tensor
    t_equal, t_isnan, t_save = torch.equal, torch.isnan, torch.save
    storage_of = torch.Tensor.untyped_storage

    launches = LaunchRecorder()
    launches.install()
    op_recorder = OpRecorder(launches)

    progress("load")
    shared = torch.load(job["inputs_file"], weights_only=True)
    ref_state = torch.load(job["state_file"], weights_only=True)
    init_inputs = shared["init"]
    cases = shared["cases"]

    # Uninitialised memory reads as NaN / max-int while the candidate is checked.
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = True
    flags0 = snapshot_flags()
    clocks0 = snapshot_clocks()

    def check_globals(phase: str) -> None:
        flags = changed_keys(flags0, snapshot_flags())
        if flags:
            checks["global_flags"] = f"fail: {', '.join(flags)}"
            _fail(result, "rejected", f"{rule_message('global_flags_changed', ', '.join(flags))} ({phase})",
                  phase, "global_flags_changed")
        clocks = changed_keys(clocks0, snapshot_clocks(), identity=True)
        if clocks:
            checks["clocks"] = f"fail: {', '.join(clocks)}"
            _fail(result, "rejected", f"{rule_message('patched_clock', ', '.join(clocks))} ({phase})", phase,
                  "patched_clock")

    def error(exc: BaseException, phase: str, default: str, kernels: frozenset[str] = frozenset()) -> None:
        fault = backend.classify_error(exc)
        info = describe_exception(exc, cpath, kernels)
        where = phase if phase in ("import", "build") else f"{phase} forward"
        if fault is not None:
            _fail(result, fault.status, info.message(prefix=f"{where}: "), phase, signal=fault.signal)
        status = default
        if info.compile_like and (info.in_kernel or phase == "import"):
            status = "compile_error"
        if type(exc).__name__ == "CompilationError" or type(exc).__module__.startswith("triton.compiler"):
            status = "compile_error"
        _fail(result, status, info.message(), phase)

    # --- import -------------------------------------------------------------------------------
    progress("import")
    try:
        module = _import_candidate(candidate_path)
    except BaseException as exc:  # noqa: BLE001 - the candidate's own failure
        error(exc, "import", "compile_error")
    check_globals("import")
    kernels = kernel_functions(module)
    model_cls = getattr(module, "ModelNew", None)
    if model_cls is None:
        _fail(result, "compile_error", "candidate.py: no ModelNew after import; define class ModelNew(nn.Module)",
              "import")

    # --- build --------------------------------------------------------------------------------
    progress("build")
    try:
        torch.manual_seed(int(job["seed"]))
        model = model_cls(*init_inputs)
        if isinstance(model, torch.nn.Module):
            model = model.to(device)
    except BaseException as exc:  # noqa: BLE001
        error(exc, "build", "runtime_error", kernels)
    if not isinstance(model, torch.nn.Module):
        _fail(result, "compile_error", "candidate.py: ModelNew(...) is not a torch.nn.Module", "build")
    check_globals("build")

    # Weights identical by construction: load the reference's where names and shapes match.
    matched = 0
    own = model.state_dict()
    with torch.no_grad():
        for name, value in ref_state.items():
            target = own.get(name)
            if isinstance(target, tensor_type) and tuple(target.shape) == tuple(value.shape):
                target.copy_(value.to(device=target.device, dtype=target.dtype))
                matched += 1
    checks["weights_aligned"] = f"{matched}/{len(ref_state)} reference tensors loaded"

    # --- cases --------------------------------------------------------------------------------
    outputs: dict[str, Any] = {}
    all_kernels: list[str] = []
    all_ops: list[str] = []
    case_records: dict[str, Any] = result["cases"]
    for case in cases:
        name, kind = case["name"], case["kind"]
        ghost = kind == "ghost"
        label = name.replace("_", " ")
        progress(name)
        inputs = [x.to(device) if isinstance(x, tensor_type) else x for x in case["inputs"]]
        pristine = [x.clone() if isinstance(x, tensor_type) else x for x in inputs]
        torch.manual_seed(int(case["seed"]))
        launches.begin(ghost=ghost)
        try:
            with torch.no_grad(), op_recorder.mode():
                out = model(*inputs)
            backend.synchronize()
        except BaseException as exc:  # noqa: BLE001
            launches.end()
            if ghost:  # the kernels' absence broke forward: they did the work
                case_records[name] = {"kind": kind, "kernels": [], "ops": [], "error": trim(str(exc), 200)}
                continue
            error(exc, label, "runtime_error", kernels)
        launched = launches.end()
        compute = op_recorder.compute_ops()
        check_globals(label)
        record: dict[str, Any] = {"kind": kind, "kernels": launched, "ops": compute}
        case_records[name] = record
        if ghost:
            outputs[name] = pack_outputs(out)
            continue
        for k in launched:
            if k not in all_kernels:
                all_kernels.append(k)
        for op in compute:
            if op not in all_ops:
                all_ops.append(op)

        # Inputs unchanged (bit for bit, NaN-aware).
        for i, (now, before) in enumerate(zip(inputs, pristine)):
            if isinstance(before, tensor_type):
                same = now.shape == before.shape and (
                    t_equal(now, before)
                    or (now.is_floating_point() and t_equal(t_isnan(now), t_isnan(before))
                        and t_equal(now.nan_to_num(0.0), before.nan_to_num(0.0)))
                )
                if not same:
                    checks["inputs_unchanged"] = f"fail: input {i} in {label}"
                    _fail(result, "rejected", rule_message("mutated_inputs", f"input {i} in {label}"),
                          name, "mutated_inputs")
        # No output aliases an input.
        leaves = out if isinstance(out, (list, tuple)) else [out]
        in_ptrs = {storage_of(x).data_ptr(): i for i, x in enumerate(inputs)
                   if isinstance(x, tensor_type) and x.numel() > 0}
        for j, leaf in enumerate(leaves):
            if isinstance(leaf, tensor_type):
                if type(leaf) is not tensor_type:
                    _fail(result, "incorrect", f"output {j} is a {type(leaf).__name__}, not a plain torch.Tensor",
                          name)
                ptr = storage_of(leaf).data_ptr() if leaf.numel() > 0 else None
                if ptr in in_ptrs:
                    checks["no_aliasing"] = f"fail: output {j} shares memory with input {in_ptrs[ptr]}"
                    _fail(result, "rejected",
                          rule_message("output_aliases_input", f"output {j} is input {in_ptrs[ptr]} (or a view of it)"),
                          name, "output_aliases_input")
        outputs[name] = pack_outputs(out)
        del out

    checks.setdefault("inputs_unchanged", "pass")
    checks.setdefault("no_aliasing", "pass")
    checks.setdefault("global_flags", "pass")
    checks.setdefault("clocks", "pass")
    result["kernels"] = all_kernels
    result["ops"] = all_ops
    progress("save")
    t_save(outputs, job_dir / "outputs.pt")

    # --- timing (device backends; only when the parent found every case correct) -----------------
    if job.get("timing") and backend.times_kernels:
        _timing(job, job_dir, backend, model, cases, result, progress, check_globals, t_save, tensor_type)


def _timing(job: dict[str, Any], job_dir: Path, backend: Any, model: Any, cases: list[dict[str, Any]],
            result: dict[str, Any], progress: Progress, check_globals: Any, t_save: Any, tensor_type: type) -> None:
    import torch
    import torch.utils.deterministic

    (job_dir / "cases.json").write_text(json.dumps(result["cases"]))
    progress("awaiting parent")
    with open(job_dir / "control", encoding="utf-8") as control:  # FIFO: blocks until the parent answers
        answer = control.readline().strip()
    if answer != "time":
        return
    progress("timing")
    torch.utils.deterministic.fill_uninitialized_memory = False
    torch.use_deterministic_algorithms(False)
    device = backend.device()
    trials = [c for c in cases if c["kind"] == "trial"]
    input_sets = [[x.to(device) if isinstance(x, tensor_type) else x for x in c["inputs"]] for c in trials]

    def call(inputs: list[Any]) -> Any:
        with torch.no_grad():
            return model(*inputs)

    try:
        stats = backend.time_runs(call, input_sets, int(job["timing_runs"]), int(job["warmup_runs"]))
    except BaseException as exc:  # noqa: BLE001
        fault = backend.classify_error(exc)
        result.update(status=fault.status if fault else "runtime_error", phase="timing",
                      message=trim(f"during timing: {type(exc).__name__}: {exc}"))
        return
    result["timing"] = stats.to_dict()
    # Correctness re-check after timing, on the first trial's inputs.
    progress("recheck")
    torch.manual_seed(int(trials[0]["seed"]))
    with torch.no_grad():
        out = model(*input_sets[0])
    backend.synchronize()
    t_save({"recheck": pack_outputs(out)}, job_dir / "recheck.pt")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = True
    check_globals("timing")
