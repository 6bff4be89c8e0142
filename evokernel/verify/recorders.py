"""Worker-side records: Triton launches (and ghost replay), torch ops in forward, global flags, clocks.

Installed by the harness before the candidate is imported, so the candidate only ever sees the
patched launch path. Runs inside the sandboxed worker only.
"""

from __future__ import annotations

import time
from typing import Any

__all__ = [
    "LaunchRecorder",
    "OpRecorder",
    "ALLOWED_OPS",
    "snapshot_flags",
    "snapshot_clocks",
    "changed_keys",
    "kernel_functions",
]

# aten ops that allocate, view, copy or read metadata: no arithmetic on the data.
ALLOWED_OPS = frozenset(
    f"aten.{name}"
    for name in (
        "empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided", "zeros", "zeros_like",
        "new_zeros", "ones", "ones_like", "new_ones", "full", "full_like", "new_full", "fill", "fill_", "zero_",
        "scalar_tensor", "arange", "view", "_unsafe_view", "reshape", "_reshape_alias", "as_strided", "expand",
        "permute", "transpose", "t", "squeeze", "unsqueeze", "flatten", "unflatten", "view_as", "slice",
        "select", "narrow", "split", "split_with_sizes", "chunk", "unbind", "alias", "detach", "lift_fresh",
        "lift_fresh_copy", "clone", "copy_", "_to_copy", "contiguous", "to", "set_", "resize_", "sym_size",
        "sym_stride", "sym_numel", "sym_storage_offset", "_local_scalar_dense", "is_same_size", "dim", "size",
        "stride", "numel", "is_contiguous", "view_as_real", "view_as_complex", "movedim", "swapaxes",
        "_has_compatible_shallow_copy_type", "is_nonzero", "_unsafe_index_put", "record_stream",
    )
)


class LaunchRecorder:
    """Wraps every Triton kernel launch: records the kernel's name; in ghost mode skips the launch."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.ghost = False
        self.recording = False
        self.depth = 0  # > 0 while a launch runs (ops inside belong to Triton, not to forward)
        self.installed: list[str] = []

    def install(self) -> None:
        """Patch the launch entry points of triton's JIT (and interpreter) function classes."""
        classes: list[type] = []
        try:
            from triton.runtime.jit import JITFunction

            classes.append(JITFunction)
        except Exception:  # pragma: no cover - triton without a jit module
            pass
        try:
            from triton.runtime.interpreter import InterpretedFunction

            classes.append(InterpretedFunction)
        except Exception:  # pragma: no cover
            pass
        for cls in classes:
            self._patch(cls)
            self.installed.append(cls.__name__)

    def _patch(self, cls: type) -> None:
        original = cls.run
        recorder = self

        def run(fn_self: Any, *args: Any, **kwargs: Any) -> Any:
            warmup = kwargs.get("warmup", False)
            if recorder.recording and not warmup and recorder.depth == 0:
                recorder.names.append(_kernel_name(fn_self))
            if recorder.ghost and not warmup:
                return None
            recorder.depth += 1
            try:
                return original(fn_self, *args, **kwargs)
            finally:
                recorder.depth -= 1

        run.__wrapped_launch__ = original  # type: ignore[attr-defined]
        cls.run = run  # type: ignore[method-assign]

    def begin(self, ghost: bool = False) -> None:
        """Start recording one forward (ghost: launches become no-ops)."""
        self.names = []
        self.ghost = ghost
        self.recording = True

    def end(self) -> list[str]:
        """Stop recording; the kernels launched since begin()."""
        self.recording = False
        self.ghost = False
        return list(self.names)


def _kernel_name(fn: Any) -> str:
    inner = getattr(fn, "fn", None)
    name = getattr(inner, "__name__", None) or getattr(fn, "__name__", None)
    return str(name or type(fn).__name__)


def kernel_functions(module: Any) -> frozenset[str]:
    """Names of the Python functions behind the module's Triton kernels (for error classification)."""
    names = set()
    for value in vars(module).values():
        obj, hops = value, 0
        while obj is not None and hops < 4:
            inner = getattr(obj, "fn", None)
            if inner is None:
                break
            if callable(inner) and hasattr(inner, "__code__"):
                names.add(inner.__name__)
                break
            obj, hops = inner, hops + 1
    return frozenset(names)


class OpRecorder:
    """A TorchDispatchMode factory recording aten ops called during forward (outside Triton launches)."""

    def __init__(self, launches: LaunchRecorder) -> None:
        from torch.utils._python_dispatch import TorchDispatchMode

        self.ops: list[str] = []
        launches_ref = launches
        ops = self.ops

        class _Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
                if launches_ref.depth == 0:
                    name = str(func.overloadpacket)
                    if name not in ops:
                        ops.append(name)
                return func(*args, **(kwargs or {}))

        self._mode_cls = _Mode

    def mode(self) -> Any:
        """A fresh dispatch mode context manager; ops accumulate in ``self.ops``."""
        self.ops.clear()
        return self._mode_cls()

    def compute_ops(self) -> list[str]:
        """Ops seen that do arithmetic (everything but allocation, views, copies and metadata)."""
        return [op for op in self.ops if op not in ALLOWED_OPS]


def snapshot_flags() -> dict[str, str]:
    """torch global flags that change numerics; compared before/after the candidate runs."""
    import torch

    out: dict[str, str] = {}

    def put(name: str, getter: Any) -> None:
        try:
            out[name] = repr(getter())
        except Exception:  # a flag this torch build lacks
            pass

    put("cuda.matmul.allow_tf32", lambda: torch.backends.cuda.matmul.allow_tf32)
    put("cuda.matmul.allow_fp16_reduced_precision_reduction",
        lambda: torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction)
    put("cuda.matmul.allow_bf16_reduced_precision_reduction",
        lambda: torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction)
    put("cudnn.allow_tf32", lambda: torch.backends.cudnn.allow_tf32)
    put("cudnn.deterministic", lambda: torch.backends.cudnn.deterministic)
    put("cudnn.benchmark", lambda: torch.backends.cudnn.benchmark)
    put("cudnn.enabled", lambda: torch.backends.cudnn.enabled)
    put("mkldnn.enabled", lambda: torch.backends.mkldnn.enabled)
    put("float32_matmul_precision", torch.get_float32_matmul_precision)
    put("deterministic_algorithms", torch.are_deterministic_algorithms_enabled)
    put("deterministic_warn_only", torch.is_deterministic_algorithms_warn_only_enabled)
    put("fill_uninitialized_memory", lambda: torch.utils.deterministic.fill_uninitialized_memory)
    put("default_dtype", torch.get_default_dtype)
    put("num_threads", torch.get_num_threads)
    return out


def snapshot_clocks() -> dict[str, Any]:
    """The clock and timer functions, by identity; a candidate that replaces one is rejected."""
    import torch

    out: dict[str, Any] = {}
    for name in ("time", "perf_counter", "monotonic", "process_time", "thread_time", "time_ns",
                 "perf_counter_ns", "monotonic_ns", "process_time_ns", "thread_time_ns", "sleep"):
        if hasattr(time, name):
            out[f"time.{name}"] = getattr(time, name)
    for mod_name in ("cuda", "npu"):
        mod = getattr(torch, mod_name, None)
        if mod is None:
            continue
        for attr in ("synchronize", "Event", "current_stream"):
            if hasattr(mod, attr):
                out[f"torch.{mod_name}.{attr}"] = getattr(mod, attr)
        event = getattr(mod, "Event", None)
        for attr in ("record", "elapsed_time", "synchronize", "query"):
            if event is not None and hasattr(event, attr):
                out[f"torch.{mod_name}.Event.{attr}"] = getattr(event, attr)
    try:
        import triton.testing

        out["triton.testing.do_bench"] = triton.testing.do_bench
    except Exception:  # pragma: no cover
        pass
    return out


def changed_keys(before: dict[str, Any], after: dict[str, Any], identity: bool = False) -> list[str]:
    """Keys whose value differs (by identity for functions)."""
    keys = sorted(set(before) | set(after))
    if identity:
        return [k for k in keys if before.get(k) is not after.get(k)]
    return [k for k in keys if before.get(k) != after.get(k)]
