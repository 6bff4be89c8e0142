"""Real Triton kernels for six kinds of op are accepted, with a complete verdict record."""

from __future__ import annotations

import json

import pytest

GOOD = ["relu", "row_sum", "softmax", "layernorm", "matmul", "gemm_bias_relu"]


@pytest.mark.parametrize("name", GOOD)
def test_good_candidate_is_correct(verifier, data, name: str) -> None:
    verdict = verifier.evaluate(data.problem(name), data.good(name))
    assert verdict.status == "correct", verdict.summary()
    assert verdict.feasible and verdict.rule is None and verdict.signal is None
    assert verdict.backend == "cpu" and "interpreter" in verdict.device
    assert verdict.kernels_launched and verdict.torch_ops == []
    kinds = [t["kind"] for t in verdict.trials]
    assert kinds.count("trial") == 5 and kinds.count("probe") >= 1 and kinds.count("ghost") == 1
    for case in verdict.trials:
        if case["kind"] != "ghost":
            assert case["ok"] and case["kernels"], case
    assert verdict.timing is None and verdict.latency_ms is None and verdict.speedup_eager is None  # CPU: no timings
    assert verdict.checks["ghost_replay"].startswith("pass")
    json.dumps(verdict.to_dict())  # the full record is JSON


def test_sizes_are_fitted_for_the_interpreter(verifier, data) -> None:
    verdict = verifier.evaluate(data.problem("relu"), data.good("relu"))
    assert verdict.sizes["batch_size"] * verdict.sizes["dim"] <= 4096
    assert verdict.trials[0]["input_shapes"] == [[verdict.sizes["batch_size"], verdict.sizes["dim"]]]


def test_weights_are_loaded_from_the_reference(verifier, data) -> None:
    verdict = verifier.evaluate(data.problem("layernorm"), data.good("layernorm"))
    assert verdict.status == "correct"
    assert verdict.checks["weights_aligned"] == "2/2 reference tensors loaded"


def test_degenerate_softmax_tolerance_is_tightened(verifier, data) -> None:
    verdict = verifier.evaluate(data.problem("softmax"), data.good("softmax"))
    assert verdict.status == "correct"
    trial = verdict.trials[0]["outputs"][0]
    assert trial["tightened"] and trial["atol"] < 1e-2
