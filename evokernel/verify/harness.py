"""The candidate's side of a verification: runs inside the sandboxed worker, never in the parent.

Order matters: records and snapshots are taken before the candidate is imported, so whatever the
candidate does afterwards is measured against the untouched originals. The worker never holds the
reference's outputs; it writes its own outputs for the parent to compare.

Candidate code runs only while it is recorded (import, build, and each forward under the recorders):
a finalizer (``__del__``, a weakref callback) run between forwards or after the last one would compute
unrecorded or rewrite the outputs. So the automatic cyclic collector is off from the first forward on
(each forward ends with a collection inside its recording), objects of the candidate and tensors it
could have hooked are kept alive until the process exits, and the outputs file's digest goes into the
record, so a file changed after the harness wrote it is refused by the parent.
"""

from __future__ import annotations

import gc
import hashlib
import importlib.util
import io
import json
import os
import sys
from pathlib import Path
from typing import Any

from evokernel.verify.cases import pack_plain_outputs
from evokernel.verify.jobfiles import OUTPUTS_DIGEST
from evokernel.verify.messages import describe_exception, trim
from evokernel.verify.recorders import (
    HOST_READ_LIMIT,
    HostReadRecorder,
    LaunchRecorder,
    OpRecorder,
    changed_keys,
    kernel_functions,
    runtime_changes,
    snapshot_clocks,
    snapshot_flags,
    snapshot_runtime,
)
from evokernel.verify.rules import rule_message

__all__ = ["run_candidate_job", "Progress"]

# Objects of the candidate (module, model, exceptions, hooked tensors) kept until the process exits:
# none of their finalizers may run outside a recorded forward.
_KEEP_ALIVE: list[Any] = []


def _keep_if_hooked(value: Any, storage_of: Any) -> None:
    """Keep what forward received or returned alive when freeing it could run the candidate's code outside
    a recorded forward: a tensor with instance attributes or weak references (on it or its storage), and
    anything that is not a plain tensor, scalar, tuple or list. Only exact builtin types are looked into."""
    import weakref

    import torch

    kind = type(value)
    if kind is list or kind is tuple:
        for item in value:
            _keep_if_hooked(item, storage_of)
        return
    if kind in (bool, int, float, str, type(None)):
        return
    hooked = True
    if kind is torch.Tensor:
        try:
            hooked = (bool(vars(value)) or weakref.getweakrefcount(value) > 0
                      or weakref.getweakrefcount(storage_of(value)) > 0)
        except (TypeError, RuntimeError):  # no storage (sparse, nested): keep it
            hooked = True
    if hooked:
        _KEEP_ALIVE.append(value)


class Progress:
    """Where the worker is, in a file the parent reads when the worker times out or dies."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, phase: str) -> None:
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
            fd = os.open(self.path, flags, 0o600)
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


def run_candidate_job(job: dict[str, Any], job_dir: Path, backend: Any,
                      preloaded: dict[str, bytes] | None = None) -> dict[str, Any]:
    """Import, build and run the candidate over every case; returns the worker's record.

    ``preloaded``: the bytes of the inputs and state files, read before the process was confined (the
    confined candidate cannot read the reference's files)."""
    result: dict[str, Any] = {
        "status": "ok", "rule": None, "message": "", "phase": None, "cases": {}, "kernels": [], "ops": [],
        "checks": {}, "timing": None,
    }
    try:
        _run(job, job_dir, backend, result, preloaded or {})
    except _Stop:
        pass
    return result


def _fail(result: dict[str, Any], status: str, message: str, phase: str, rule: str | None = None,
          signal: str | None = None) -> None:
    result.update(status=status, message=trim(message), phase=phase, rule=rule)
    if signal:
        result["signal"] = signal
    raise _Stop


def _run(job: dict[str, Any], job_dir: Path, backend: Any, result: dict[str, Any],
         preloaded: dict[str, bytes]) -> None:
    import torch
    import torch.utils.deterministic

    progress = Progress(job_dir / "progress")
    candidate_path = Path(job["candidate_path"])
    cpath = str(candidate_path)
    device = backend.device()
    checks = result["checks"]

    # Pre-bound originals: the candidate cannot reach these names. Tensor methods are taken from the
    # class: a candidate can set attributes on a tensor instance that shadow its methods.
    tensor_type = torch.Tensor
    t_equal, t_isnan, t_save = torch.equal, torch.isnan, torch.save
    storage_of = torch.Tensor.untyped_storage
    t_numel, t_is_float, t_nan_to_num = torch.Tensor.numel, torch.Tensor.is_floating_point, torch.Tensor.nan_to_num
    t_ops = {name: getattr(torch.Tensor, name) for name in ("detach", "to", "contiguous", "clone")}

    def pack(out: Any) -> dict[str, Any]:
        return pack_plain_outputs(out, t_ops)

    launches = LaunchRecorder()
    launches.install()
    host_reads = HostReadRecorder()
    host_reads.install()
    keep_shapes = {tuple(s) for s in job.get("keep_torch_results") or []}
    op_recorder = OpRecorder(launches, host_reads, keep_shapes)
    if keep_shapes:
        launches.listeners.append(op_recorder.taint)

    progress("load")

    def load(key: str) -> Any:
        data = preloaded.pop(key, None)
        return torch.load(io.BytesIO(data) if data is not None else job[f"{key}_file"], weights_only=True)

    shared = load("inputs")
    ref_state = load("state")
    init_inputs = shared["init"]
    cases = shared["cases"]

    # Uninitialised memory reads as NaN / max-int while the candidate is checked.
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = True
    flags0 = snapshot_flags()
    clocks0 = snapshot_clocks()
    runtime0 = snapshot_runtime()

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
        runtime = runtime_changes(runtime0, snapshot_runtime())
        if runtime:
            shown = ", ".join(runtime[:6]) + (f" (+{len(runtime) - 6} more)" if len(runtime) > 6 else "")
            checks["runtime"] = f"fail: {shown}"
            _fail(result, "rejected", f"{rule_message('patched_runtime', shown)} ({phase})", phase,
                  "patched_runtime")

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
    _KEEP_ALIVE.append(module)
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
    _KEEP_ALIVE.append(model)
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
    # From here on the cyclic collector runs only inside a recorded forward (see the module docstring);
    # what exists now is frozen out of every later collection (cheaper collections).
    gc.collect()
    gc.freeze()
    gc.disable()
    for case in cases:
        name, kind = case["name"], case["kind"]
        ghost = kind == "ghost"
        label = name.replace("_", " ")
        progress(name)
        inputs = [x.to(device) if isinstance(x, tensor_type) else x for x in case["inputs"]]
        pristine = [x.clone() if isinstance(x, tensor_type) else x for x in inputs]
        torch.manual_seed(int(case["seed"]))
        launches.begin(ghost=ghost)
        host_reads.begin()
        try:
            with torch.no_grad(), op_recorder.mode():
                out = model(*inputs)
                gc.collect()  # the candidate's cyclic garbage is finalized here, recorded
            backend.synchronize()
        except BaseException as exc:  # noqa: BLE001
            launches.end()
            host_reads.end()
            _KEEP_ALIVE.append(exc)
            _KEEP_ALIVE.append(inputs)
            if ghost:  # the kernels' absence broke forward: they did the work
                check_globals(label)
                case_records[name] = {"kind": kind, "kernels": [], "ops": [], "error": trim(str(exc), 200)}
                continue
            error(exc, label, "runtime_error", kernels)
        if gc.isenabled():  # the candidate turned the collector back on: finalizers could run unrecorded
            gc.disable()
            checks["runtime"] = "fail: gc enabled"
            _fail(result, "rejected", f"{rule_message('patched_runtime', 'the cyclic garbage collector was enabled')} "
                  f"({label})", name, "patched_runtime")
        launched = launches.end()
        read, read_how = host_reads.end()
        compute = op_recorder.compute_ops()
        check_globals(label)  # first: what follows relies on torch's classes as they were
        _keep_if_hooked(inputs, storage_of)
        _keep_if_hooked(out, storage_of)
        record: dict[str, Any] = {"kind": kind, "kernels": launched, "ops": compute, "host_reads": read}
        case_records[name] = record
        if ghost:
            try:
                outputs[name] = pack(out)
            except TypeError as exc:  # a wrong output without the kernels
                record["error"] = trim(str(exc), 200)
            continue
        if read > HOST_READ_LIMIT:
            checks["host_reads"] = f"fail: {read} elements in {label}"
            _fail(result, "rejected", rule_message(
                "host_compute", f"{read} elements ({', '.join(read_how)}) in {label}; at most {HOST_READ_LIMIT}"),
                name, "host_compute")
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
                    or (t_is_float(now) and t_equal(t_isnan(now), t_isnan(before))
                        and t_equal(t_nan_to_num(now, 0.0), t_nan_to_num(before, 0.0)))
                )
                if not same:
                    checks["inputs_unchanged"] = f"fail: input {i} in {label}"
                    _fail(result, "rejected", rule_message("mutated_inputs", f"input {i} in {label}"),
                          name, "mutated_inputs")
        # Plain outputs only (no subclass runs its code in here), packed before anything else reads them.
        originals: list[Any] = []
        try:
            packed = pack_plain_outputs(out, t_ops, originals)
        except TypeError as exc:
            _fail(result, "incorrect", str(exc), name)
        # No output aliases an input.
        in_ptrs = {storage_of(x).data_ptr(): i for i, x in enumerate(inputs)
                   if isinstance(x, tensor_type) and t_numel(x) > 0}
        for j, leaf in enumerate(originals):
            ptr = storage_of(leaf).data_ptr() if t_numel(leaf) > 0 else None
            if ptr in in_ptrs:
                checks["no_aliasing"] = f"fail: output {j} shares memory with input {in_ptrs[ptr]}"
                _fail(result, "rejected",
                      rule_message("output_aliases_input", f"output {j} is input {in_ptrs[ptr]} (or a view of it)"),
                      name, "output_aliases_input")
        if keep_shapes:  # policy mixed: what torch computed by itself, for the parent to compare
            packed["torch_results"] = [[op, t] for op, t in op_recorder.kept]
        outputs[name] = packed
        del originals

    # No candidate code from here on: nothing of it is freed, no cyclic garbage is collected.
    checks.setdefault("inputs_unchanged", "pass")
    checks.setdefault("no_aliasing", "pass")
    checks.setdefault("global_flags", "pass")
    checks.setdefault("clocks", "pass")
    checks.setdefault("runtime", "pass")
    checks.setdefault("host_reads", "pass")
    result["kernels"] = all_kernels
    result["ops"] = all_ops
    progress("save")
    buffer = io.BytesIO()
    t_save(outputs, buffer)
    data = buffer.getvalue()
    result[OUTPUTS_DIGEST] = hashlib.sha256(data).hexdigest()
    _write_new(job_dir / "outputs.pt", data)

    # --- timing (device backends; only when the parent found every case correct) -----------------
    if job.get("timing") and backend.times_kernels:
        _timing(job, job_dir, backend, model, cases, result, progress, check_globals, t_save, tensor_type)


def _timing(job: dict[str, Any], job_dir: Path, backend: Any, model: Any, cases: list[dict[str, Any]],
            result: dict[str, Any], progress: Progress, check_globals: Any, t_save: Any, tensor_type: type) -> None:
    import torch
    import torch.utils.deterministic

    _write_new(job_dir / "cases.json",
               json.dumps({"cases": result["cases"], OUTPUTS_DIGEST: result.get(OUTPUTS_DIGEST)}).encode())
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
    try:  # where the device time goes, for the refining prompt; optional, so a failure only loses it
        result["profile"] = backend.profile_kernels(call, input_sets[0])
    except Exception as exc:  # noqa: BLE001
        result["profile_error"] = trim(f"{type(exc).__name__}: {exc}")
    # Correctness re-check after timing, on the first trial's inputs.
    progress("recheck")
    torch.manual_seed(int(trials[0]["seed"]))
    with torch.no_grad():
        out = model(*input_sets[0])
    backend.synchronize()
    _KEEP_ALIVE.append(out)
    try:
        packed = pack_plain_outputs(out)
    except TypeError as exc:
        packed = {"structure": "", "leaves": [], "error": str(exc)}
    buffer = io.BytesIO()
    t_save({"recheck": packed}, buffer)
    result["recheck_sha256"] = hashlib.sha256(buffer.getvalue()).hexdigest()
    _write_new(job_dir / "recheck.pt", buffer.getvalue())
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = True
    check_globals("timing")


def _write_new(path: Path, data: bytes) -> None:
    """Write ``data`` to a fresh file at ``path`` (whatever the candidate left there is removed first:
    a link or a FIFO must not redirect or block the harness)."""
    try:
        if path.is_dir() and not path.is_symlink():
            import shutil

            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        pass
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
    finally:
        os.close(fd)
