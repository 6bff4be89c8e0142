"""Hostile nesting: sources that make the parser or the static gate's visitor recurse too deep.

They run in the parent (the gate parses before any worker sees the candidate), so a RecursionError or
MemoryError there would take a whole agent run down. Each must become a compile_error verdict, and
the verifier must go on to the next candidate normally.
"""

from __future__ import annotations

import pytest

from evokernel.verify.static_gate import check_candidate, defines_model_new

KERNEL = "import triton\n\n\n@triton.jit\ndef k(x):\n    y = {expr}\n\n\nclass ModelNew:\n    pass\n"

DEEP = {
    "long_sum": KERNEL.format(expr="+".join(["x"] * 2000)),  # parses; the visitor recurses per operand
    "deep_attribute": KERNEL.format(expr="x" + ".b" * 150_000),  # AST construction recursion
    "unary_chain": KERNEL.format(expr="-" * 200_000 + "x"),  # the parser runs out of memory
    "nested_lambdas": KERNEL.format(expr="lambda: " * 5000 + "x"),
    # the gate parses string annotations as the code they are: nesting hidden in a string
    "annotation_string": KERNEL.format(expr="x").replace("def k(x):", "def k(x: '" + "-" * 200_000 + "1'):"),
}


@pytest.mark.parametrize("name", sorted(DEEP))
def test_the_gate_reports_deep_nesting_as_a_compile_error(name: str) -> None:
    result = check_candidate(DEEP[name])
    assert result is not None and result.status == "compile_error"
    assert "nested too deeply" in result.message and "candidate.py" in result.message
    assert defines_model_new(DEEP[name])  # the CLI's input check leaves the verdict to the gate


def test_the_verifier_survives_deep_nesting(verifier, data) -> None:
    verdict = verifier.evaluate(data.problem("relu"), DEEP["long_sum"])
    assert verdict.status == "compile_error" and "nested too deeply" in verdict.message
    assert verifier.evaluate(data.problem("relu"), data.good("relu")).status == "correct"
