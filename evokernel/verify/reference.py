"""The reference's side: fit sizes, generate every case's inputs, compute the expected outputs.

Runs in its own worker process (never the candidate's). Writes inputs and the reference's weights
for candidate workers to read, and the expected outputs for the parent only (the parent loads and
deletes that file before any candidate of the problem starts). Also times the eager and
torch.compile baselines on device backends.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from evokernel.programs import ProblemError, load_program
from evokernel.verify.cases import Case, ghost_inputs, pack_outputs, probe_inputs, trial_inputs
from evokernel.verify.messages import trim
from evokernel.verify.sizing import fit_problem

__all__ = ["run_reference_job", "run_baseline_job"]


def _to(x: Any, device: str) -> Any:
    return x.to(device) if hasattr(x, "to") and hasattr(x, "shape") else x


def _finite(packed: dict[str, Any]) -> bool:
    import torch

    for leaf in packed["leaves"]:
        if isinstance(leaf, torch.Tensor) and (leaf.is_floating_point() or leaf.is_complex()):
            if not bool(torch.isfinite(leaf).all()):
                return False
        elif isinstance(leaf, float) and not math.isfinite(leaf):
            return False
    return True


def _degenerate(packed: dict[str, Any]) -> str:
    """Why a reference answer cannot check anything ("has no elements", "is NaN everywhere"), else ""."""
    import torch

    tensors = [leaf for leaf in packed["leaves"] if isinstance(leaf, torch.Tensor)]
    if not tensors or any(not isinstance(leaf, torch.Tensor) for leaf in packed["leaves"]):
        return ""  # Python scalars among the outputs: compared as they are
    if all(t.numel() == 0 for t in tensors):
        return "has no elements"
    floats = [t for t in tensors if t.is_floating_point() or t.is_complex()]
    if floats and len(floats) == len(tensors) and all(bool(torch.isnan(t).all()) for t in floats):
        return "is NaN everywhere"
    return ""


def run_reference_job(job: dict[str, Any], job_dir: Path, backend: Any) -> dict[str, Any]:
    """Fit, build the reference, run every case; files: inputs.pt, state.pt, expected.pt."""
    import torch

    source, filename = job["source"], job["filename"]
    seed = int(job["seed"])
    result: dict[str, Any] = {"status": "ok", "notes": []}
    try:
        if job["fit"] == "cpu":
            fit = fit_problem(source, max_elements=int(job["max_elements"]), filename=filename, seed=seed)
            source = fit.source
            result["sizes"] = fit.sizes
            result["changed"] = fit.changed
            if fit.note:
                result["notes"].append(fit.note)
        else:
            from evokernel.programs import size_constants

            result["sizes"] = size_constants(source, filename)
            result["changed"] = {}
        module = load_program(source, filename)
    except ProblemError as exc:
        return {"status": "user_error", "message": str(exc)}
    except Exception as exc:  # the problem's code failed while its sizes were measured or fitted
        return {"status": "user_error", "message": trim(
            f"{filename}: fitting the sizes failed: {type(exc).__name__}: {exc}; fix the problem file "
            "(if it fails only on the meta device, --fit none skips the fitting)", 400)}

    device = backend.device()

    def user_error(what: str, exc: BaseException) -> dict[str, Any]:
        return {"status": "user_error",
                "message": trim(f"{filename}: {what}: {type(exc).__name__}: {exc}; fix the problem file", 400)}

    try:
        torch.manual_seed(seed)
        init_inputs = list(module.get_init_inputs())
        model = module.Model(*init_inputs)
        model = model.to(device)
    except Exception as exc:
        return user_error("building the reference Model failed", exc)
    state = {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()}
    try:
        key = str(job.get("input_key") or "")  # the verifier's secret: candidates cannot predict the inputs
        trials = trial_inputs(module, seed, int(job["trials"]), key)
        probes = probe_inputs(trials[0], seed, key) if job["probes"] else []
        ghost = [ghost_inputs(module, seed, key)] if job["ghost_replay"] else []
    except Exception as exc:
        return user_error("get_inputs failed", exc)

    expected: dict[str, Any] = {}
    kept: list[Case] = []
    dropped: list[str] = []
    for case in [*trials, *probes, *ghost]:
        try:
            torch.manual_seed(case.seed)
            with torch.no_grad():
                out = model(*[_to(x, device) for x in case.inputs])
            packed = pack_outputs(out)
        except Exception as exc:
            if case.kind == "trial":
                return user_error(f"the reference forward failed on {case.name}", exc)
            dropped.append(f"{case.name}: reference raises {type(exc).__name__}")
            continue
        if case.kind != "trial" and not _finite(packed) and _finite(expected[trials[0].name]):
            dropped.append(f"{case.name}: reference output not finite")
            continue
        if case is trials[0] and (why := _degenerate(packed)):
            return {"status": "user_error", "message": trim(
                f"{filename}: the reference output {why}, so no kernel can be told from a wrong one; "
                "fix the problem file (sizes, input distribution)", 400)}
        expected[case.name] = packed
        kept.append(case)
    if dropped:
        result["notes"].append("cases dropped: " + "; ".join(dropped))

    inputs_file = Path(job["inputs_file"])
    torch.save(
        {"init": init_inputs, "cases": [{"name": c.name, "kind": c.kind, "seed": c.seed, "inputs": c.inputs}
                                        for c in kept]},
        inputs_file,
    )
    torch.save(state, Path(job["state_file"]))
    torch.save(expected, job_dir / "expected.pt")
    result["cases"] = [{"name": c.name, "kind": c.kind, "seed": c.seed, "description": c.describe()} for c in kept]
    first = expected[trials[0].name]
    result["output_shapes"] = [list(x.shape) if isinstance(x, torch.Tensor) else [] for x in first["leaves"]]
    result["input_shapes"] = [list(x.shape) for x in trials[0].inputs if isinstance(x, torch.Tensor)]
    return result


def run_baseline_job(job: dict[str, Any], job_dir: Path, backend: Any) -> dict[str, Any]:
    """Time the reference eagerly and under torch.compile, exactly as candidates are timed."""
    import torch

    source, filename = job["source"], job["filename"]
    module = load_program(source, filename)
    device = backend.device()
    torch.manual_seed(int(job["seed"]))
    model = module.Model(*module.get_init_inputs()).to(device)
    shared = torch.load(job["inputs_file"], weights_only=True)
    input_sets = [[_to(x, device) for x in c["inputs"]] for c in shared["cases"] if c["kind"] == "trial"]
    runs, warmup = int(job["timing_runs"]), int(job["warmup_runs"])
    out: dict[str, Any] = {"status": "ok"}

    def eager(inputs: list[Any]) -> Any:
        with torch.no_grad():
            return model(*inputs)

    out["eager"] = backend.time_runs(eager, input_sets, runs, warmup).to_dict()
    if job.get("time_compile"):
        try:
            compiled = torch.compile(model)

            def run_compiled(inputs: list[Any]) -> Any:
                with torch.no_grad():
                    return compiled(*inputs)

            out["compile"] = backend.time_runs(run_compiled, input_sets, runs, max(warmup, 3)).to_dict()
        except Exception as exc:  # torch.compile cannot handle every model: eager still counts
            out["compile"] = None
            out["compile_error"] = trim(f"{type(exc).__name__}: {exc}", 300)
    return out
