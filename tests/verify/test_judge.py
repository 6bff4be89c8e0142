"""The parent's decision rules on hand-made outputs (no worker): caching must not fire on honest bugs."""

from __future__ import annotations

from typing import Any

import torch

from evokernel.verify.cases import pack_outputs
from evokernel.verify.judge import judge


def _cases(n: int) -> list[dict[str, Any]]:
    return [{"name": f"trial{i}", "kind": "trial", "description": f"trial {i}"} for i in range(n)]


def _judge(expected: list[torch.Tensor], got: list[torch.Tensor]) -> dict[str, Any]:
    cases = _cases(len(expected))
    names = [c["name"] for c in cases]
    inputs = {n: [torch.randn(4, 8)] for n in names}
    records = {n: {"kernels": ["k"], "ops": []} for n in names}
    return judge(cases, {n: pack_outputs(e) for n, e in zip(names, expected)},
                 inputs, {n: pack_outputs(g) for n, g in zip(names, got)}, records, "strict", None, None, {})


def test_a_stale_answer_is_rejected_as_caching() -> None:
    a, b = torch.tensor(0.75), torch.tensor(3.1)
    verdict = _judge([a, b], [a.clone(), a.clone()])  # the second call returns the first call's answer
    assert (verdict["status"], verdict["rule"]) == ("rejected", "caching")


def test_a_wrong_small_scalar_near_an_earlier_small_answer_is_incorrect_not_caching() -> None:
    # a loss kernel that sums only part of its input returns tiny values; an earlier answer that is
    # itself within tolerance of zero is no evidence of a stale answer (found by bench_offline)
    expected = [torch.tensor(0.48), torch.tensor(0.006), torch.tensor(0.09)]
    got = [torch.tensor(0.0075), torch.tensor(0.0001), torch.tensor(0.0014)]
    verdict = _judge(expected, got)
    assert verdict["status"] == "incorrect", verdict



def test_a_torch_result_is_the_answer_only_in_some_order_of_its_dimensions() -> None:
    import torch

    from evokernel.verify.judge import _same_values

    x = torch.randn(6, 5, 4)
    answer = torch.relu(x)
    assert _same_values(torch.relu(x.reshape(-1)), answer, 1e-2, 1e-2)  # computed flattened
    assert _same_values(torch.relu(x.permute(2, 0, 1).contiguous()), answer, 1e-2, 1e-2)  # computed permuted
    # values from the same distribution are not the answer: a legitimate intermediate of the output's size
    other = torch.relu(torch.randn(6, 5, 4))
    assert not _same_values(other, answer, 1e-2, 1e-2)
    assert not _same_values(torch.sigmoid(torch.rand(64, 64)), torch.sigmoid(torch.rand(64, 64)), 1e-2, 1e-2)
