"""Generated kernels compile with the real Triton compiler for a GPU target (no GPU needed).

The interpreter is lenient where the compiler is not (constexpr specialization of arguments
equal to 1, types of loop-carried values, ...). Launches are recorded under the interpreter,
then every kernel is compiled for sm_90 in a subprocess without ``TRITON_INTERPRET``.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys

import pytest
import torch

from evokernel.agent.offline.codegen import generate

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::RuntimeWarning")]

PROGRAMS = {
    "elementwise": ("torch.relu(x) * y + 1.0", "[torch.randn(3, 50), torch.randn(50)]", "x, y", ""),
    "rows": ("torch.softmax(x, -1) + self.ln(x) + torch.argmax(x, -1, keepdim=True) + torch.cumsum(x, 1)",
             "[torch.randn(5, 48)]", "x", "self.ln = nn.LayerNorm(48)"),
    "matmul_conv_pool": ("self.pool(torch.relu(self.conv(x))).flatten(1) @ self.w", "[torch.randn(2, 4, 9, 9)]", "x",
                         "self.conv = nn.Conv2d(4, 16, 3)\n        self.pool = nn.MaxPool2d(2)\n"
                         "        self.w = nn.Parameter(torch.randn(144, 7))"),
}  # fmt: skip
# the risky values need sizes they are right for (their launchers refuse others): K = 144, rows of 48
CONFIGS = [{}, {"elementwise": {"indexing": "flat"}, "softmax": {"mode": "loop"}, "norm": {"mode": "one_pass"},
                "matmul": {"k_loop": "even", "BLOCK_K": 16, "fuse": False}, "scan": {"mode": "one_pass"}}]  # fmt: skip

COMPILE = r"""
import importlib.util, json, sys
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
TYPES = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16", "float64": "fp64", "int64": "i64",
         "int32": "i32", "bool": "i1", "uint8": "u8", "int8": "i8"}
errors, done = [], 0
for path, launches in json.load(open(sys.argv[1])):
    spec = importlib.util.spec_from_file_location("cand", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for rec in launches:
        sig, consts = {}, {}
        for name, (kind, value, constexpr) in rec["params"].items():
            if constexpr or (kind == "int" and value == 1):
                sig[name], consts[name] = "constexpr", value
            elif kind == "tensor":
                sig[name] = "*" + TYPES[value]
            elif kind == "int":
                sig[name] = "i32" if -2**31 <= value < 2**31 else "i64"
            elif kind == "float":
                sig[name] = "fp32"
        try:
            triton.compile(ASTSource(getattr(mod, rec["kernel"]), sig, consts), target=GPUTarget("cuda", 90, 32),
                           options=rec["options"])
            done += 1
        except Exception as exc:
            errors.append(f"{path}:{rec['kernel']}: {type(exc).__name__}: {str(exc)[:2000]}")
print(json.dumps({"compiled": done, "errors": errors}))
"""


def _launches(gen_source: str, problem: str, load_module, monkeypatch) -> list[dict]:
    from triton.runtime.interpreter import InterpretedFunction

    launches: list[dict] = []
    original = InterpretedFunction.run

    def run(self, *args, grid, warmup, **kwargs):  # noqa: ANN001
        params = inspect.signature(self.fn).parameters
        bound = dict(zip(params, args))
        bound.update({k: v for k, v in kwargs.items() if k in params})
        rec = {"kernel": self.fn.__name__, "options": {k: kwargs[k] for k in ("num_warps", "num_stages") if k in kwargs},
               "params": {}}  # fmt: skip
        for name, value in bound.items():
            constexpr = "constexpr" in str(params[name].annotation)
            if isinstance(value, torch.Tensor):
                rec["params"][name] = ("tensor", str(value.dtype).removeprefix("torch."), False)
            elif isinstance(value, bool) or isinstance(value, int):
                rec["params"][name] = ("int", int(value), constexpr)
            elif isinstance(value, float):
                rec["params"][name] = ("float", value, constexpr)
        key = json.dumps(rec, sort_keys=True)
        if all(json.dumps(r, sort_keys=True) != key for r in launches):
            launches.append(rec)
        return original(self, *args, grid=grid, warmup=warmup, **kwargs)

    monkeypatch.setattr(InterpretedFunction, "run", run)
    cand = load_module(gen_source, "cand")
    ref = load_module(problem, "ref")
    with torch.no_grad():
        cand.ModelNew(*ref.get_init_inputs())(*ref.get_inputs())
    monkeypatch.setattr(InterpretedFunction, "run", original)
    return launches


@pytest.fixture
def loader():
    """``load_module`` from the offline conftest."""
    import types

    def load(source: str, name: str):
        module = types.ModuleType(name)
        exec(compile(source, f"<{name}>", "exec"), module.__dict__)
        return module

    return load


def test_generated_kernels_compile_for_sm90(make_problem, loader, tmp_path, monkeypatch):
    pytest.importorskip("triton.backends.nvidia")
    jobs = []
    for name, (forward, inputs, args, init) in PROGRAMS.items():
        src = make_problem(forward, inputs, args=args, init=init)
        for i, cfg in enumerate(CONFIGS):
            gen = generate(src, cfg, backend="cuda")
            path = tmp_path / f"{name}_{i}.py"  # @triton.jit needs the source in a real file
            path.write_text(gen.source)
            jobs.append((str(path), _launches(gen.source, src, loader, monkeypatch)))
    spec = tmp_path / "jobs.json"
    spec.write_text(json.dumps(jobs))
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    proc = subprocess.run(
        [sys.executable, "-c", COMPILE, str(spec)], capture_output=True, text=True, env=env, timeout=900
    )
    if proc.returncode != 0:
        if "ptxas" in proc.stderr or "No such file" in proc.stderr:
            pytest.skip(f"the Triton CUDA toolchain is not usable here: {proc.stderr[-300:]}")
        raise AssertionError(proc.stderr[-3000:])
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["errors"] == [], "\n".join(result["errors"])
    assert result["compiled"] >= len(jobs)
