"""The AST gate: every rule fires on a minimal snippet, and ordinary kernels pass."""

from __future__ import annotations

import textwrap

import pytest

from evokernel.verify.rules import RULES
from evokernel.verify.static_gate import check_candidate, defines_model_new

HEADER = """
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def k(x_ptr, BLOCK: tl.constexpr):
    pass
"""

MODEL = """

class ModelNew(nn.Module):
    def forward(self, x):
        {body}
        return x
"""


def candidate(body: str = "pass", top: str = "", header: str = HEADER) -> str:
    return header + textwrap.dedent(top) + MODEL.format(body=body)


@pytest.mark.parametrize(
    ("top", "body", "rule"),
    [
        ("import numpy as np", "pass", "forbidden_import"),
        ("from evokernel.verify import harness", "pass", "harness_access"),
        ("torch.relu = lambda x: x", "pass", "monkey_patch"),
        ("", "torch.Tensor.add = None", "monkey_patch"),
        ("", "setattr(torch, 'relu', None)", "monkey_patch"),
        ("import time\ntime.perf_counter = lambda: 0.0", "pass", "monkey_patch"),
        ("", "torch.backends.cuda.matmul.allow_tf32 = True", "global_flags"),
        ("", "torch.set_float32_matmul_precision('medium')", "global_flags"),
        ("", "torch.use_deterministic_algorithms(False)", "global_flags"),
        ("import gc", "pass", "introspection"),
        ("import sys", "pass", "introspection"),
        ("import inspect", "pass", "introspection"),
        ("", "f = x.__class__.__subclasses__", "introspection"),
        ("", "y = globals()", "introspection"),
        ("", "y = (lambda: 0).__code__", "introspection"),
        ("", "eval('1')", "dynamic_code"),
        ("", "exec('1')", "dynamic_code"),
        ("", "y = __import__('os')", "dynamic_code"),
        ("", "y = getattr(torch, name)", "dynamic_code"),
        ("import importlib", "pass", "dynamic_code"),
        ("import threading", "pass", "threads"),
        ("from concurrent.futures import ThreadPoolExecutor", "pass", "threads"),
        ("import subprocess", "pass", "subprocess"),
        ("import os", "os.system('ls')", "subprocess"),
        ("import socket", "pass", "network"),
        ("import urllib.request", "pass", "network"),
        ("", "open('/tmp/x', 'w')", "filesystem"),
        ("import pathlib", "pass", "filesystem"),
        ("", "torch.save(x, 'x.pt')", "filesystem"),
        ("import os", "y = os.environ['OPENAI_API_KEY']", "environment"),
        ("from os import getenv", "y = getenv('HOME')", "environment"),
        ("import os", "pass", "os_access"),
        ("import ctypes", "pass", "native_code"),
        ("from torch.utils.cpp_extension import load_inline", "pass", "native_code"),
        ("", "f = torch.compile(torch.relu)", "torch_compile"),
        ("", "y = torch.jit.script(x)", "torch_compile"),
        ("", "y = torch._C._get_tracing_state()", "private_api"),
        ("from torch._dynamo import optimize", "pass", "private_api"),
        ("", "h = k._init_handles()", "low_level_launch"),
        ("", "c = k.warmup(x, grid=(1,))", "low_level_launch"),
        ("", "c = triton.compile(k)", "low_level_launch"),
        ("", "s = torch.cuda.Stream()", "side_stream"),
        ("", "torch.cuda.set_stream(None)", "side_stream"),
        ("", "try:\n            k[(1,)](x)\n        except Exception:\n            pass", "try_fallback"),
        ("", "y = torch.library.Library('aten', 'IMPL')", "monkey_patch"),
        # modules an allowed module imported, reached as its attributes, break their own rules
        ("", "torch.serialization.save(x, '../outputs.pt')", "filesystem"),
        ("", "y = torch.types.os.environ", "environment"),
        ("import typing", "typing.sys.settrace(None)", "introspection"),
        ("import enum", "y = enum.bltns.open('/etc/hostname')", "introspection"),
        ("", "y = torch.storage.np", "forbidden_import"),
        ("", "y = x.untyped_storage().os", "os_access"),
        ("", "t = torch\n        y = t.serialization.load('f')", "filesystem"),
        ("import typing", "y = getattr(typing, 'sys')", "introspection"),
        ("", "y = getattr(obj, 'sys')", "introspection"),
        ("", "y = torch.__getattr__('serialization')", "introspection"),
        ("", "y = type(x).mro()", "introspection"),
        ("", "y = super(torch.Tensor, x).tolist()", "introspection"),
        # getattr as a value, attrgetter: computed attribute access
        ("", "g = getattr\n        y = g(torch, 'relu')", "dynamic_code"),
        ("import operator", "y = operator.attrgetter('serialization')(torch)", "dynamic_code"),
        # patching a class through an instance
        ("", "type(x).clone = None", "monkey_patch"),
        ("", "x.__class__.clone = None", "monkey_patch"),
        ("", "T = torch.Tensor\n        T.clone = None", "monkey_patch"),
        # tensor data to the host
        ("", "y = x.numpy()", "host_data"),
        ("", "y = torch.from_numpy(x)", "host_data"),
        ("", "y = torch.utils.dlpack.to_dlpack(x)", "host_data"),
        ("", "y = torch.UntypedStorage.from_file('f', False, 8)", "host_data"),
        ("", "y = x.__array__()", "host_data"),
        # a Python callable over every element, outside aten
        ("", "x.apply_(abs)", "host_data"),
        ("", "x.map_(x, max)", "host_data"),
        # typing evaluates strings: string annotations are code, and the evaluators are dynamic code
        ("def f(x: 'torch._C._DisableTorchDispatch'):\n    pass", "pass", "private_api"),
        ("def f(x) -> 'torch._C._DisableTorchDispatch':\n    pass", "pass", "private_api"),
        ("def f(*a: '__import__(\"os\")'):\n    pass", "pass", "dynamic_code"),
        ("v: 'torch._C._DisableTorchDispatch' = None", "pass", "private_api"),
        ("from __future__ import annotations\ndef f(x: torch._C._DisableTorchDispatch):\n    pass", "pass",
         "private_api"),
        ("import typing", "y = typing.get_type_hints(forward)", "dynamic_code"),
        ("from typing import get_type_hints", "pass", "dynamic_code"),
        ("import typing", "y = typing.ForwardRef('torch.relu')", "dynamic_code"),
        ("import typing_extensions", "y = typing_extensions.evaluate_forward_ref(r)", "dynamic_code"),
        ("", "y = self.forward.__annotations__", "introspection"),
    ],
)
def test_each_rule_fires(top: str, body: str, rule: str) -> None:
    result = check_candidate(candidate(body, top))
    assert result is not None, f"{rule} did not fire"
    assert result.status == "rejected"
    assert result.rule == rule, result.message
    assert result.rule in RULES and RULES[result.rule].stage == "static"
    assert result.message.startswith("candidate.py:")
    assert RULES[rule].message in result.message


def test_message_names_line_and_code() -> None:
    src = candidate("pass", "import socket")
    result = check_candidate(src)
    line = src.splitlines().index("import socket") + 1
    assert result is not None and result.line == line
    assert result.message.startswith(f"candidate.py:{line}: ")
    assert "`import socket`" in result.message


def test_all_findings_are_kept_and_counted() -> None:
    result = check_candidate(candidate("eval('1')", "import socket\nimport threading"))
    assert result is not None
    assert [f.rule for f in result.findings] == ["network", "threads", "dynamic_code"]
    assert "(+2 more)" in result.message


def test_missing_kernel_is_rejected() -> None:
    src = "import torch\nimport torch.nn as nn\n" + MODEL.format(body="x = torch.relu(x)")
    result = check_candidate(src)
    assert result is not None and (result.status, result.rule) == ("rejected", "no_triton_kernel")


def test_missing_model_new_is_a_compile_error() -> None:
    result = check_candidate(HEADER)
    assert result is not None and result.status == "compile_error" and result.rule is None
    assert "ModelNew" in result.message
    assert not defines_model_new(HEADER)
    assert defines_model_new(candidate())


def test_a_huge_candidate_is_refused_before_it_is_parsed() -> None:
    from evokernel.verify.static_gate import MAX_SOURCE_CHARS

    table = "TABLE = [" + ", ".join(["1.5"] * (MAX_SOURCE_CHARS // 5)) + "]\n"
    result = check_candidate(candidate("pass", table))
    assert result is not None and result.status == "compile_error"
    assert f"{MAX_SOURCE_CHARS:,}" in result.message and "characters" in result.message
    assert defines_model_new(candidate("pass", table))  # left to the gate, which says why


def test_plain_annotations_pass() -> None:
    top = "from typing import Optional\ndef f(x: 'torch.Tensor', n: Optional[int] = None) -> 'torch.Tensor':\n    return x"
    assert check_candidate(candidate("v: int = 3", top)) is None


def test_syntax_error_is_a_compile_error_with_line() -> None:
    result = check_candidate(candidate("x = (1 +"))
    assert result is not None and result.status == "compile_error"
    assert result.message.startswith("candidate.py:") and "SyntaxError" in result.message


@pytest.mark.parametrize(
    "body",
    [
        "y = torch.empty_like(x)\n        k[(triton.cdiv(x.numel(), 128),)](x, BLOCK=128)",
        "super().__init__()",
        "y = self._cache",  # private attributes of the candidate's own module are fine
        "y = getattr(self, 'weight_' + str(1), None)",
        "y = x.to(torch.float16).float()",
        "y = torch.cuda.is_available()",
        "y = [i for i in range(3)]",
        "y = tl.constexpr(4)",
        "y = torch.__version__",
        "import math\n        y = math.sqrt(2.0)",
    ],
)
def test_ordinary_code_passes(body: str) -> None:
    assert check_candidate(candidate(body)) is None


def test_builtin_names_used_as_parameters_are_fine() -> None:
    src = HEADER + textwrap.dedent(
        """
        class ModelNew(nn.Module):
            def forward(self, input, open=None):
                return input
        """
    )
    assert check_candidate(src) is None


def test_builtin_default_is_still_checked() -> None:
    src = HEADER + "\n\ndef helper(f=open):\n    return f\n" + MODEL.format(body="pass")
    result = check_candidate(src)
    assert result is not None and result.rule == "filesystem"


def test_import_guard_try_is_allowed() -> None:
    guard = "try:\n    import triton.language.extra.libdevice as libdevice\nexcept ImportError:\n    libdevice = None\n"
    src = candidate("pass", guard)
    assert check_candidate(src) is None


def test_kernel_decorated_with_autotune_and_call_form_counts() -> None:
    src = textwrap.dedent(
        """
        import torch.nn as nn
        from triton import jit
        import triton


        @triton.autotune(configs=[triton.Config({"BLOCK": 128})], key=["n"])
        @jit
        def k(x_ptr, n, BLOCK):
            pass


        class ModelNew(nn.Module):
            pass
        """
    )
    assert check_candidate(src) is None


def test_every_rule_has_a_message() -> None:
    for name, rule in RULES.items():
        assert rule.name == name and rule.message and rule.stage in ("static", "worker", "parent")


KERNEL_HEADER = """
import torch
import torch.nn as nn
import triton
import triton.language as tl
"""


@pytest.mark.parametrize(
    ("kernel", "ok"),
    [
        ("v = helper(v)", False),  # a plain Python function
        ("v = (lambda a: a)(v)", False),
        ("d = v.handle.data", False),  # interpreter internals
        ("v = torch.relu(v)", False),
        ("v = act(v)", True),  # another @triton.jit function
        ("v = ACT(v)", True),  # a constexpr argument (a jit function passed in)
        ("v = tl.math.exp(v) + tl.maximum(v, 0.0)", True),
        ("v = v.to(tl.float32) * max(1, 2)", True),
        ("v = libdevice.tanh(v)", True),
    ],
)
def test_kernels_call_only_triton(kernel: str, ok: bool) -> None:
    src = KERNEL_HEADER + textwrap.dedent(
        f"""
        from triton.language.extra import libdevice


        def helper(v):
            return v


        @triton.jit
        def act(v):
            return tl.maximum(v, 0.0)


        @triton.jit
        def k(x_ptr, ACT: tl.constexpr, BLOCK: tl.constexpr):
            offs = tl.arange(0, BLOCK)
            v = tl.load(x_ptr + offs)
            {kernel}
            tl.store(x_ptr + offs, v)
        """
    ) + MODEL.format(body="pass")
    result = check_candidate(src)
    if ok:
        assert result is None, result.message
    else:
        assert result is not None and result.rule == "kernel_python", result


def test_nested_definitions_in_a_kernel_are_rejected() -> None:
    src = HEADER + "\n\n@triton.jit\ndef k2(x_ptr):\n    def inner():\n        return 0\n    inner()\n" + MODEL.format(
        body="pass")
    result = check_candidate(src)
    assert result is not None and result.rule == "kernel_python"


def test_allowed_modules_resolve_to_what_they_are() -> None:
    """Resolution follows the real objects: an allowed module's own functions stay allowed."""
    for body in ("y = triton.cdiv(4, 2)", "y = torch.nn.functional.relu", "y = math.pi",
                 "y = tl.extra.cuda.libdevice", "y = functools.partial(max, 1)", "y = torch.float32"):
        top = "import math\nimport functools"
        assert check_candidate(candidate(body, top)) is None, body
