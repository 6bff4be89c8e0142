"""Each dynamic check of the verifier, one test each, with focused candidates."""

from __future__ import annotations

import pytest
import torch

from evokernel.verify.cases import PROBES, case_seed, probe_inputs, trial_inputs

RELU_KERNEL = '''
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def relu_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out_ptr + offs, tl.maximum(tl.load(x_ptr + offs, mask=mask), 0.0), mask=mask)


@triton.jit
def copy_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=mask), mask=mask)
'''


def model(forward_body: str, init_body: str = "pass") -> str:
    return RELU_KERNEL + f'''

class ModelNew(nn.Module):
    def __init__(self, *args):
        super().__init__()
        {init_body}

    def forward(self, x):
        {forward_body}
'''


# -- weights aligned --------------------------------------------------------------------------
GEMM_PREFIX = "import torch\nimport torch.nn as nn\n"


def test_weights_aligned_by_name_and_shape(verifier, data) -> None:
    # an extra parameter created first shifts the RNG: only loading the reference's weights saves it
    good = data.good("gemm_bias_relu").replace(
        "        self.linear = nn.Linear(in_features, out_features)",
        "        self.scale = nn.Parameter(torch.randn(7))\n        self.linear = nn.Linear(in_features, out_features)",
    )
    verdict = verifier.evaluate(data.problem("gemm_bias_relu"), good)
    assert verdict.status == "correct", verdict.summary()
    assert verdict.checks["weights_aligned"] == "2/2 reference tensors loaded"
    renamed = good.replace("self.linear", "self.fc")
    verdict = verifier.evaluate(data.problem("gemm_bias_relu"), renamed)
    assert verdict.status == "incorrect"
    assert verdict.checks["weights_aligned"] == "0/2 reference tensors loaded"


# -- trials with fresh seeded inputs -----------------------------------------------------------
class _Problem:
    @staticmethod
    def get_inputs():
        return [torch.rand(4, 8), 3]


def test_trials_have_fresh_seeded_inputs() -> None:
    a = trial_inputs(_Problem, seed=0, trials=3)
    b = trial_inputs(_Problem, seed=0, trials=3)
    assert [c.name for c in a] == ["trial_0", "trial_1", "trial_2"]
    for x, y in zip(a, b):  # reproducible
        assert torch.equal(x.inputs[0], y.inputs[0])
    assert not torch.equal(a[0].inputs[0], a[1].inputs[0])  # fresh per trial
    assert not torch.equal(a[0].inputs[0], trial_inputs(_Problem, seed=1, trials=1)[0].inputs[0])
    assert len({case_seed(0, i) for i in range(100)}) == 100


def test_trial_count_follows_settings(verifier, data, settings) -> None:
    verdict = verifier.evaluate(data.problem("row_sum"), data.good("row_sum"), settings.replace(trials=2))
    assert verdict.status == "correct"
    assert [t["name"] for t in verdict.trials if t["kind"] == "trial"] == ["trial_0", "trial_1"]


# -- adversarial probes ------------------------------------------------------------------------
def test_probes_transform_float_inputs_only() -> None:
    base = trial_inputs(_Problem, seed=0, trials=1)[0]
    probes = probe_inputs(base, seed=0)
    assert [p.name for p in probes] == [f"probe_{n}" for n in PROBES]
    signed, scaled, shifted = (p.inputs for p in probes)
    assert bool((signed[0] < 0).any()) and torch.equal(signed[0].abs(), base.inputs[0])
    assert torch.allclose(scaled[0], base.inputs[0] * 4)
    assert abs(float(shifted[0].mean())) < 1.0
    assert signed[1] == scaled[1] == shifted[1] == 3  # integers untouched


def test_probe_catches_identity_on_degenerate_inputs(verifier, data) -> None:
    src = model("out = torch.empty_like(x)\n        "
                "copy_kernel[(triton.cdiv(x.numel(), 256),)](x, out, x.numel(), BLOCK=256)\n        return out")
    verdict = verifier.evaluate(data.problem("relu"), src)
    assert verdict.status == "incorrect" and verdict.phase.startswith("probe")


def test_probes_can_be_turned_off(verifier, data, settings) -> None:
    verdict = verifier.evaluate(data.problem("relu"), data.good("relu"), settings.replace(probes=False))
    assert verdict.status == "correct" and not [t for t in verdict.trials if t["kind"] == "probe"]


# -- inputs unchanged / no aliasing ------------------------------------------------------------
def test_inputs_must_be_unchanged(verifier, data) -> None:
    src = model("out = torch.empty_like(x)\n        n = x.numel()\n        "
                "relu_kernel[(triton.cdiv(n, 256),)](x, out, n, BLOCK=256)\n        "
                "z = torch.zeros(2, device=x.device)\n        copy_kernel[(1,)](z, x, 1, BLOCK=2)\n        return out")
    verdict = verifier.evaluate(data.problem("relu"), src)
    assert verdict.status == "rejected" and verdict.rule == "mutated_inputs"
    assert verdict.checks["inputs_unchanged"].startswith("fail: input 0")


def test_outputs_must_not_alias_inputs(verifier, data) -> None:
    verdict = verifier.evaluate(data.problem("relu"), data.hostile("output_aliases_input"))
    assert (verdict.status, verdict.rule) == ("rejected", "output_aliases_input")


# -- fresh answers -----------------------------------------------------------------------------
def test_cached_answers_are_rejected(verifier, data) -> None:
    verdict = verifier.evaluate(data.problem("relu"), data.hostile("cached_result"))
    assert (verdict.status, verdict.rule) == ("rejected", "caching")
    assert "trial 1 returned the answer to trial 0" in verdict.message


# -- global flags and clocks -------------------------------------------------------------------
def test_global_flags_must_not_change(verifier, data, settings) -> None:
    src = model("torch.use_deterministic_algorithms(False)\n        out = torch.empty_like(x)\n        "
                "relu_kernel[(triton.cdiv(x.numel(), 256),)](x, out, x.numel(), BLOCK=256)\n        return out")
    verdict = verifier.evaluate(data.problem("relu"), src, settings.replace(static_gate=False))
    assert (verdict.status, verdict.rule) == ("rejected", "global_flags_changed")
    assert "deterministic_algorithms" in verdict.message


def test_clocks_must_not_be_patched(verifier, data, settings) -> None:
    src = model("import time\n        time.monotonic = lambda: 0.0\n        out = torch.empty_like(x)\n        "
                "relu_kernel[(triton.cdiv(x.numel(), 256),)](x, out, x.numel(), BLOCK=256)\n        return out")
    verdict = verifier.evaluate(data.problem("relu"), src, settings.replace(static_gate=False))
    assert (verdict.status, verdict.rule) == ("rejected", "patched_clock")
    assert "time.monotonic" in verdict.message


# -- launch record, torch-op record and policy -------------------------------------------------
MIXED = model("out = torch.empty_like(x)\n        n = x.numel()\n        "
              "copy_kernel[(triton.cdiv(n, 256),)](x, out, n, BLOCK=256)\n        return torch.relu(out)")


def test_launches_are_recorded_per_case(verifier, data) -> None:
    verdict = verifier.evaluate(data.problem("relu"), data.good("relu"))
    assert verdict.kernels_launched == ["relu_kernel"]
    assert all(t["kernels"] == ["relu_kernel"] for t in verdict.trials)
    assert verdict.checks["kernels_launched"] == "pass"


def test_strict_policy_rejects_torch_compute(verifier, data) -> None:
    verdict = verifier.evaluate(data.problem("relu"), MIXED)
    assert (verdict.status, verdict.rule) == ("rejected", "torch_compute")
    assert verdict.torch_ops == ["aten.relu"]


def test_mixed_policy_lists_torch_compute(verifier, data, settings) -> None:
    verdict = verifier.evaluate(data.problem("relu"), MIXED, settings.replace(policy="mixed"))
    assert verdict.status == "correct", verdict.summary()
    assert verdict.torch_ops == ["aten.relu"] and "aten.relu" in verdict.message
    assert verdict.checks["torch_ops"].startswith("listed (mixed)")


def test_allocation_and_views_are_not_compute(verifier, data) -> None:
    src = model("y = x.contiguous().view(-1)\n        out = torch.zeros_like(y)\n        "
                "relu_kernel[(triton.cdiv(y.numel(), 256),)](y, out, y.numel(), BLOCK=256)\n        "
                "return out.reshape(x.shape).clone()")
    verdict = verifier.evaluate(data.problem("relu"), src)
    assert verdict.status == "correct" and verdict.torch_ops == []


# -- ghost replay ------------------------------------------------------------------------------
def test_ghost_replay_catches_kernels_that_do_no_work(verifier, data, settings) -> None:
    verdict = verifier.evaluate(data.problem("relu"), data.hostile("decoy_kernel"), settings.replace(policy="mixed"))
    assert (verdict.status, verdict.rule) == ("rejected", "ghost_replay")
    assert "decoy_kernel" in verdict.message
    ghost = [t for t in verdict.trials if t["kind"] == "ghost"][0]
    assert ghost["ok"] and ghost["kernels"] == ["decoy_kernel"]


def test_ghost_replay_passes_real_kernels(verifier, data) -> None:
    verdict = verifier.evaluate(data.problem("matmul"), data.good("matmul"))
    assert verdict.checks["ghost_replay"].startswith("pass")
    assert not [t for t in verdict.trials if t["kind"] == "ghost"][0]["ok"]


def test_ghost_replay_can_be_turned_off(verifier, data, settings) -> None:
    verdict = verifier.evaluate(data.problem("relu"), data.hostile("decoy_kernel"),
                                settings.replace(policy="mixed", ghost_replay=False))
    assert verdict.status == "correct" and verdict.checks["ghost_replay"] == "skipped"


# -- feedback ----------------------------------------------------------------------------------
def test_runtime_error_points_at_the_candidate_line(verifier, data) -> None:
    src = model("out = torch.empty_like(x)\n        return out[x.shape[0] + 5]")
    verdict = verifier.evaluate(data.problem("relu"), src)
    line = src.splitlines().index("        return out[x.shape[0] + 5]") + 1
    assert verdict.status == "runtime_error" and verdict.phase == "trial 0"
    assert verdict.message.startswith(f"candidate.py:{line} in forward: IndexError")


def test_kernel_api_error_is_a_compile_error(verifier, data) -> None:
    src = model("out = torch.empty_like(x)\n        "
                "relu_kernel[(triton.cdiv(x.numel(), 256),)](x, out, x.numel(), BLOCK=256)\n        return out")
    src = src.replace("tl.maximum(tl.load", "tl.maximum_of_everything(tl.load", 1)
    verdict = verifier.evaluate(data.problem("relu"), src)
    assert verdict.status == "compile_error", verdict.summary()
    assert "in relu_kernel" in verdict.message and "maximum_of_everything" in verdict.message


def test_partial_coverage_says_where_errors_cluster(verifier, data) -> None:
    # only the first block is written; the rest stays -1, wrong for every input (zeros would match
    # the few inputs that the secret seed happens to draw within tolerance of 0)
    src = model("out = torch.full_like(x, -1.0)\n        n = x.numel()\n        "
                "relu_kernel[(1,)](x, out, n, BLOCK=256)\n        return out")
    verdict = verifier.evaluate(data.problem("relu"), src)
    assert verdict.status == "incorrect"
    assert "3840/4096 elements" in verdict.message and "elements with flat index >= 256" in verdict.message


@pytest.mark.parametrize("shape_bug", ["return out[:, :-1]", "return out.double()"])
def test_shape_and_dtype_errors_are_named(verifier, data, shape_bug: str) -> None:
    src = model("out = torch.empty_like(x)\n        "
                "relu_kernel[(triton.cdiv(x.numel(), 256),)](x, out, x.numel(), BLOCK=256)\n        " + shape_bug)
    verdict = verifier.evaluate(data.problem("relu"), src)
    assert verdict.status in ("incorrect", "rejected"), verdict.summary()
    assert ("shape" in verdict.message) or ("dtype" in verdict.message) or verdict.rule == "torch_compute"


def test_syntax_error_is_a_compile_error(verifier, data) -> None:
    src = data.good("relu").replace("x = x.contiguous()", "x = x.contiguous(")
    verdict = verifier.evaluate(data.problem("relu"), src)
    assert verdict.status == "compile_error" and verdict.message.startswith("candidate.py:")
    assert "SyntaxError" in verdict.message


def test_import_error_is_a_compile_error(verifier, data) -> None:
    src = data.good("relu").replace("import triton.language as tl", "import triton.language as tl\n"
                                    "from triton.language import no_such_thing")
    verdict = verifier.evaluate(data.problem("relu"), src)
    assert verdict.status == "compile_error" and verdict.phase == "import"
    assert verdict.message.startswith("candidate.py:5") and "ImportError" in verdict.message


def test_constructor_error_is_a_runtime_error(verifier, data) -> None:
    src = data.good("relu").replace("        super().__init__()", "        super().__init__()\n        1 / 0", 1)
    verdict = verifier.evaluate(data.problem("relu"), src)
    assert verdict.status == "runtime_error" and verdict.phase == "build"
    assert "ZeroDivisionError" in verdict.message and "in __init__" in verdict.message
