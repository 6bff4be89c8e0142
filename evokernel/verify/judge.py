"""The parent's decision for a candidate whose worker finished: compare every case, apply the rules
that need the reference (caching, ghost replay), and write the feedback line.

Order of decisions (the first that fires is the verdict): strict policy and torch compute ops ->
caching (a stale answer) -> a forward that launched no kernel -> correctness on every trial and
probe -> ghost replay -> (policy mixed) a torch op that computed the answer by itself -> correct.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from evokernel.verify.compare import CaseReport, compare_case, passes
from evokernel.verify.messages import trim
from evokernel.verify.rules import rule_message

__all__ = ["judge", "mismatch_message"]

# policy mixed: a torch result is compared with the answer in every order of the answer's dimensions
# up to this rank (4! = 24 orders)
MAX_PERMUTED_DIMS = 4


def judge(
    cases: Sequence[dict[str, Any]],
    expected: dict[str, Any],
    inputs: dict[str, list[Any]],
    outputs: dict[str, Any],
    records: dict[str, Any],
    policy: str,
    atol: float | None,
    rtol: float | None,
    checks: dict[str, str],
) -> dict[str, Any]:
    """Verdict fields (status, rule, message, phase, trials) from the worker's outputs and records."""
    reports: list[tuple[dict[str, Any], CaseReport, dict[str, Any]]] = []
    for case in cases:
        name = case["name"]
        report = compare_case(name, case["kind"], outputs.get(name), expected[name], inputs[name], atol, rtol)
        entry = report.to_dict()
        entry["description"] = case["description"]
        rec = records.get(name, {})
        entry["kernels"], entry["torch_ops"] = rec.get("kernels", []), rec.get("ops", [])
        if rec.get("error"):
            entry["error"] = rec["error"]
        reports.append((case, report, entry))
    decided: dict[str, Any] = {"trials": [entry for _, _, entry in reports]}
    regular = [(c, r, e) for c, r, e in reports if c["kind"] != "ghost"]

    # 1. torch compute in forward
    ops = sorted({op for _, _, e in regular for op in e["torch_ops"]})
    if ops:
        checks["torch_ops"] = ("fail: " if policy == "strict" else "listed (mixed): ") + ", ".join(ops)
    else:
        checks["torch_ops"] = "pass: none"
    if ops and policy == "strict":
        decided.update(status="rejected", rule="torch_compute", phase="torch_ops",
                       message=trim(rule_message("torch_compute", ", ".join(ops))))
        return decided

    # 2. caching: a failed case whose output is the answer to an earlier case
    for i, (case, report, _) in enumerate(regular):
        if report.ok:
            continue
        got = outputs.get(case["name"])
        for earlier, _, _ in regular[:i]:
            if got and _same_answer(got, expected[earlier["name"]], report):
                checks["fresh_answers"] = f"fail: {case['name']} returned {earlier['name']}'s answer"
                decided.update(status="rejected", rule="caching", phase=case["name"], message=trim(rule_message(
                    "caching", f"{case['description']} returned the answer to {earlier['description']}")))
                return decided
    checks["fresh_answers"] = "pass"

    # 3. every forward launched a Triton kernel
    silent = [c["description"] for c, _, e in regular if not e["kernels"]]
    if silent:
        checks["kernels_launched"] = f"fail: none in {', '.join(silent)}"
        decided.update(status="rejected", rule="no_kernel_launched", phase="kernels",
                       message=trim(rule_message("no_kernel_launched", ", ".join(silent))))
        return decided
    checks["kernels_launched"] = "pass"

    # 4. correctness on every trial and probe
    failed = next(((c, r) for c, r, _ in regular if not r.ok), None)
    if failed is not None:
        checks["correctness"] = f"fail: {failed[0]['name']}"
        decided.update(status="incorrect", phase=failed[0]["name"], message=mismatch_message(*failed))
        return decided
    n_trials = sum(1 for c, _, _ in regular if c["kind"] == "trial")
    n_probes = sum(1 for c, _, _ in regular if c["kind"] == "probe")
    checks["correctness"] = f"pass: {n_trials} trials, {n_probes} probes"
    if any(r.informative for _, r, _ in regular):
        checks["trivial_outputs"] = "pass"
    else:
        checks["trivial_outputs"] = ("warn: on every case the reference equals a trivial output; nothing could "
                                     "tell a correct kernel from a trivial one")
    if any(o.tightened for _, r, _ in regular for o in r.outputs):
        checks["trivial_outputs"] += " (tolerance tightened where a trivial output would have passed)"

    # 5. ghost replay: with every launch skipped the output must be wrong
    ghost = next(((c, r, e) for c, r, e in reports if c["kind"] == "ghost"), None)
    if ghost is None:
        checks["ghost_replay"] = "skipped"
    elif ghost[2].get("error"):
        checks["ghost_replay"] = "pass: forward fails without its kernels"
    elif ghost[1].ok and ghost[1].informative:
        checks["ghost_replay"] = "fail: correct with every launch skipped"
        skipped = ", ".join(ghost[2]["kernels"]) or "no launch"
        decided.update(status="rejected", rule="ghost_replay", phase="ghost",
                       message=trim(rule_message("ghost_replay", f"skipped {skipped}")))
        return decided
    else:
        checks["ghost_replay"] = "pass"

    # 6. policy mixed: a torch op whose result already is the answer did all the work (a kernel that copies
    #    torch's result passes the ghost replay: without the copy the output is wrong)
    if policy == "mixed":
        done_by = _torch_answer(regular, outputs, expected)
        if done_by:
            checks["torch_did_the_work"] = f"fail: {done_by}"
            decided.update(status="rejected", rule="torch_did_the_work", phase="torch_ops",
                           message=trim(rule_message("torch_did_the_work", done_by)))
            return decided
        checks["torch_did_the_work"] = "pass"

    kernels: list[str] = []
    for _, _, e in regular:
        kernels += [k for k in e["kernels"] if k not in kernels]
    parts = [f"{n_trials} trials", f"{n_probes} probes"] + (["ghost replay"] if ghost else [])
    extra = f"; torch ops (mixed): {', '.join(ops)}" if ops else ""
    decided.update(status="correct", phase=None,
                   message=trim(f"correct on {', '.join(parts)}; kernels: {', '.join(kernels)}{extra}"))
    return decided


def _torch_answer(regular: Sequence[tuple[dict[str, Any], CaseReport, dict[str, Any]]], outputs: dict[str, Any],
                  expected: dict[str, Any]) -> str:
    """"OP on CASE" where a kept torch result passes as an expected output of an informative case, else ""."""
    import torch

    for case, report, _ in regular:
        got = outputs.get(case["name"]) or {}
        kept = got.get("torch_results") if isinstance(got, dict) else None
        if not kept or not report.informative:
            continue
        leaves = expected[case["name"]]["leaves"]
        for entry in kept:
            if not (isinstance(entry, (list, tuple)) and len(entry) == 2 and isinstance(entry[1], torch.Tensor)):
                continue
            op, value = entry
            for leaf, out in zip(leaves, report.outputs):
                if not (isinstance(leaf, torch.Tensor) and out.informative and value.numel() == leaf.numel()):
                    continue
                if _same_values(value, leaf, out.atol, out.rtol):
                    return f"{op} on {case['description']}"
    return ""


def _same_values(value: Any, leaf: Any, atol: float, rtol: float) -> bool:
    """Whether ``value`` holds the answer ``leaf``: as it is, reshaped (computed flattened or in another
    shape), or with its dimensions in another order (computed transposed or permuted)."""
    if passes(value.reshape(leaf.shape), leaf, atol, rtol):
        return True
    if leaf.dim() > MAX_PERMUTED_DIMS:
        return False
    for order in itertools.permutations(range(leaf.dim())):
        if list(order) == sorted(order):
            continue  # the identity: checked above
        permuted = leaf.permute(order)
        if passes(value.reshape(permuted.shape), permuted, atol, rtol):
            return True
    return False


def _same_answer(got: dict[str, Any], expected: dict[str, Any], report: CaseReport) -> bool:
    """True when ``got`` passes as ``expected`` (another case's answer) at the report's tolerances,
    and that answer is distinguishable from zeros there: an answer within tolerance of zero is matched
    by any wrong output that is small (a loss summed over part of its input), which proves nothing."""
    import torch

    if got.get("structure") != expected.get("structure"):
        return False
    pairs = list(zip(got["leaves"], expected["leaves"]))
    if not pairs or len(report.outputs) != len(pairs):
        return False
    for (g, e), out in zip(pairs, report.outputs):
        if not (isinstance(g, torch.Tensor) and isinstance(e, torch.Tensor)):
            return False
        atol, rtol = out.atol or 1e-6, out.rtol or 1e-6
        if g.shape != e.shape or g.dtype != e.dtype or not passes(g, e, atol, rtol):
            return False
        if e.is_floating_point() and passes(torch.zeros_like(e), e, atol, rtol):
            return False
    return True


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def mismatch_message(case: dict[str, Any], report: CaseReport) -> str:
    """One line: which case, which output, how wrong and where the errors cluster."""
    where = case.get("description", case.get("name", ""))
    shapes = ", ".join(str(tuple(s)) for s in report.input_shapes)
    head = f"{where}" + (f" (inputs {shapes})" if shapes else "")
    if report.problem:
        return trim(f"{head}: {report.problem}")
    out = report.first_failure()
    if out is None:
        return trim(f"{head}: mismatch")
    label = f"output {out.index}" if len(report.outputs) > 1 else "output"
    if out.problem and not out.location:
        return trim(f"{head}: {label} {out.problem}")
    text = f"{head}: {label} {tuple(out.shape)} wrong in {out.location}"
    if out.problem:
        text += f"; {out.problem}"
    if out.max_abs > 0 or not out.problem:
        text += f"; max abs err {_fmt(out.max_abs)}, mean {_fmt(out.mean_abs)} (atol {_fmt(out.atol)}, "
        text += f"rtol {_fmt(out.rtol)}" + (", tightened: a trivial output would pass the default)"
                                             if out.tightened else ")")
    if out.worst and not (out.problem and out.max_abs == 0):
        text += f"; worst at {tuple(out.worst['index'])}: got {_fmt(out.worst['got'])}, " \
                f"expected {_fmt(out.worst['expected'])}"
    if out.trivial:
        text += f"; the output equals {out.trivial}"
    return trim(text, 600)
