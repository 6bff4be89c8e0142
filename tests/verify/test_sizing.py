"""fit_problem: shrink size constants until inputs fit the interpreter, proving the result runs."""

from __future__ import annotations

import pytest

from evokernel.programs import ProblemError, size_constants
from evokernel.verify.sizing import fit_problem

TEMPLATE = """
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self{init_args}):
        super().__init__()
{init_body}

    def forward(self, {fwd_args}):
        return {fwd}


{constants}


def get_inputs():
    return [{inputs}]


def get_init_inputs():
    return [{init_inputs}]
"""


def program(fwd_args="x", fwd="torch.relu(x)", constants="", inputs="", init_args="", init_body="        pass",
            init_inputs="") -> str:
    return TEMPLATE.format(fwd_args=fwd_args, fwd=fwd, constants=constants, inputs=inputs, init_args=init_args,
                           init_body=init_body, init_inputs=init_inputs)


def test_relu_is_shrunk_below_the_bound(data) -> None:
    source = data.problem("relu").read_text()
    fit = fit_problem(source, max_elements=65536)
    assert fit.fitted and fit.max_input_elements <= 65536
    assert fit.original_sizes == {"batch_size": 16, "dim": 16384}
    assert size_constants(fit.source) == fit.sizes
    assert fit.input_shapes[0][0] * fit.input_shapes[0][1] == fit.max_input_elements
    # the larger constant gives first
    assert fit.sizes["batch_size"] == 16 and fit.sizes["dim"] == 4096


def test_small_problem_is_unchanged(data) -> None:
    source = data.problem("matmul").read_text()
    fit = fit_problem(source, max_elements=65536)
    assert not fit.fitted and fit.source == source and fit.changed == {}


def test_matmul_shrinks_every_operand() -> None:
    src = program("a, b", "a @ b", "M = 1024\nK = 2048\nN = 512", "torch.randn(M, K), torch.randn(K, N)")
    fit = fit_problem(src, max_elements=4096)
    assert fit.max_input_elements <= 4096
    assert all(v >= 1 for v in fit.sizes.values())


def test_axis_and_window_constants_are_left_alone() -> None:
    src = program(
        "x", "torch.nn.functional.avg_pool1d(x, kernel_size, stride)",
        "batch_size = 64\nchannels = 32\nlength = 4096\nkernel_size = 4\nstride = 2",
        "torch.randn(batch_size, channels, length)",
    )
    fit = fit_problem(src, max_elements=8192)
    assert fit.sizes["kernel_size"] == 4 and fit.sizes["stride"] == 2
    assert fit.max_input_elements <= 8192


def test_constraints_between_sizes_are_respected() -> None:
    # channels must stay divisible by groups: halving that breaks the model is skipped
    src = program(
        "x", "self.conv(x)", "batch_size = 16\nchannels = 48\ngroups = 3\nwidth = 64",
        "torch.randn(batch_size, channels, width)", init_args=", channels, groups",
        init_body="        self.conv = nn.Conv1d(channels, channels, 3, groups=groups)", init_inputs="channels, groups",
    )
    fit = fit_problem(src, max_elements=2048)
    assert fit.sizes["channels"] % fit.sizes["groups"] == 0
    assert fit.max_input_elements <= 2048


def test_hard_coded_sizes_cannot_be_shrunk() -> None:
    src = program(constants="unused = 7", inputs="torch.rand(1024, 1024)")
    with pytest.raises(ProblemError, match="cannot be shrunk"):
        fit_problem(src, max_elements=65536)


def test_shrunk_problem_that_fails_for_real_is_reported() -> None:
    # fine on the meta device, but the real forward rejects small sizes
    src = program(
        "x", "self.check(x)", "batch_size = 8\ndim = 65536", "torch.rand(batch_size, dim)",
        init_body="        pass\n\n    def check(self, x):\n        if not x.is_meta and x.shape[1] < 60000:\n"
                  "            raise ValueError('too small')\n        return x",
    )
    with pytest.raises(ProblemError, match="fails to run"):
        fit_problem(src, max_elements=65536)
