"""Worker-side records: Triton launches (and ghost replay), torch ops in forward, tensor data read into
Python, global flags, clocks, and the library functions the harness relies on.

Installed by the harness before the candidate is imported, so the candidate only ever sees the
patched launch path. Runs inside the sandboxed worker only.
"""

from __future__ import annotations

import math
import signal
import sys
import time
from typing import Any

__all__ = [
    "LaunchRecorder",
    "OpRecorder",
    "HostReadRecorder",
    "HOST_READ_LIMIT",
    "snapshot_runtime",
    "runtime_changes",
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
        self.depth = 0  # > 0 while a launch runs (a nested launch is not a launch of forward's)
        self.installed: list[str] = []
        self.listeners: list[Any] = []  # called with (args, kwargs) of every launch while recording

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
                for listener in recorder.listeners:
                    listener(args, kwargs)
            if recorder.ghost and not warmup:
                return None
            recorder.depth += 1
            try:
                return original(fn_self, *args, **kwargs)
            finally:
                recorder.depth -= 1

        # the original stays in this closure only: no attribute on the wrapper leads back to it
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


def _tensors(value: Any, out: list[Any] | None = None) -> list[Any]:
    """The tensors in a (nested) argument structure."""
    import torch

    out = [] if out is None else out
    if isinstance(value, torch.Tensor):
        out.append(value)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _tensors(item, out)
    elif isinstance(value, dict):
        for item in value.values():
            _tensors(item, out)
    return out


class OpRecorder:
    """A TorchDispatchMode factory recording aten ops called during forward.

    With ``keep_shapes`` (policy mixed) it also keeps the latest results of compute ops that have as
    many elements as an output (in any shape: torch may compute the answer flattened or transposed)
    and do not depend on any Triton launch: data is tainted when a launch receives it (its storage),
    and an op with a tainted input taints its results. A kept result that already is the answer was
    computed by torch alone; the kernels only moved it.

    Ops are recorded at every depth, inside Triton launches too: a launch runs candidate code (the grid
    function, pre-run hooks, ``data_ptr`` of its arguments, Python called from an interpreted kernel
    body), and torch work hidden there is still torch work. The interpreter's own argument handling
    only allocates, views and copies (``ALLOWED_OPS``). ``aten._local_scalar_dense`` (``.item()``,
    ``float(t)``, storage element reads) is also counted as one element read into Python.
    """

    KEEP = 16  # results kept per forward (the latest)

    def __init__(self, launches: LaunchRecorder, host_reads: HostReadRecorder | None = None,
                 keep_shapes: set[tuple[int, ...]] | None = None) -> None:
        from torch.utils._python_dispatch import TorchDispatchMode

        self.ops: list[str] = []
        self.kept: list[tuple[str, Any]] = []  # (op, CPU copy of its result): untainted, of keep_shapes
        self.tainted: dict[int, Any] = {}  # storage pointer -> storage (held: no reuse of the address)
        ops, kept, tainted = self.ops, self.kept, self.tainted
        reads = host_reads
        shapes = keep_shapes or set()
        numels = {math.prod(shape) for shape in shapes}
        limit = self.KEEP

        def storage(t: Any) -> Any:
            try:
                s = t.untyped_storage()
                return s if s.data_ptr() else None
            except Exception:  # a tensor without storage (meta, sparse)
                return None

        def taint(values: list[Any]) -> None:
            for t in values:
                s = storage(t)
                if s is not None:
                    tainted[s.data_ptr()] = s

        self.taint = lambda args, kwargs: taint(_tensors([args, kwargs]))

        class _Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
                name = str(func.overloadpacket)
                if name not in ops:
                    ops.append(name)
                if reads is not None and name == "aten._local_scalar_dense":
                    reads.add(1, "item")
                out = func(*args, **(kwargs or {}))
                if shapes:  # ops run inside this handler are not dispatched to the mode again
                    inputs = _tensors([args, kwargs])
                    results = _tensors(out)
                    if any((s := storage(t)) is not None and s.data_ptr() in tainted for t in inputs):
                        taint(results)
                    elif name not in ALLOWED_OPS:
                        for t in results:
                            if t.numel() in numels and t.is_floating_point():
                                kept.append((name, t.detach().to("cpu", copy=True)))
                                del kept[:-limit]
                return out

        self._mode_cls = _Mode

    def mode(self) -> Any:
        """A fresh dispatch mode context manager; ops (and kept results) accumulate until the next call."""
        self.ops.clear()
        self.kept.clear()
        self.tainted.clear()
        return self._mode_cls()

    def compute_ops(self) -> list[str]:
        """Ops seen that do arithmetic (everything but allocation, views, copies and metadata)."""
        return [op for op in self.ops if op not in ALLOWED_OPS]


# A forward may read this many tensor elements into Python (a scalar argument, a size): more is the
# answer being computed in Python or numpy and copied back by a kernel.
HOST_READ_LIMIT = 64


class HostReadRecorder:
    """Counts tensor elements read into Python during forward: ``tolist``, ``numpy`` (and ``__array__``),
    ``__dlpack__``, ``repr``/``str``/``format`` of a tensor, and ``apply_``/``map_``/``map2_`` (a Python
    callable over every element, which aten never sees); ``.item()`` and storage reads are counted by
    :class:`OpRecorder`. Installed on ``torch.Tensor`` before the candidate is imported."""

    METHODS = ("tolist", "numpy", "__dlpack__", "__repr__", "__format__", "apply_", "map_", "map2_")

    def __init__(self) -> None:
        self.elements = 0
        self.how: list[str] = []
        self.recording = False

    def add(self, n: int, how: str) -> None:
        """Count ``n`` elements read by ``how`` (only while recording)."""
        if self.recording:
            self.elements += int(n)
            if how not in self.how:
                self.how.append(how)

    def install(self) -> None:
        """Wrap the reading methods of torch.Tensor and torch.utils.dlpack.to_dlpack."""
        import torch
        import torch.utils.dlpack

        recorder = self

        def wrap(name: str, original: Any) -> Any:
            def method(self: Any, *args: Any, **kwargs: Any) -> Any:
                try:
                    n = int(self.numel())
                except Exception:  # not a tensor after all
                    n = 1
                recorder.add(n, name.strip("_"))
                return original(self, *args, **kwargs)

            method.__name__ = name
            method.__qualname__ = f"Tensor.{name}"
            method.__doc__ = getattr(original, "__doc__", None)
            return method

        for name in self.METHODS:
            setattr(torch.Tensor, name, wrap(name, getattr(torch.Tensor, name)))
        torch.utils.dlpack.to_dlpack = wrap("to_dlpack", torch.utils.dlpack.to_dlpack)

    def begin(self) -> None:
        """Start counting one forward."""
        self.elements = 0
        self.how = []
        self.recording = True

    def end(self) -> tuple[int, list[str]]:
        """Stop counting; (elements read, how)."""
        self.recording = False
        return self.elements, list(self.how)


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


def _runtime_objects() -> list[tuple[str, Any, bool]]:
    """(name, namespace, is_class) whose entries the harness, the recorders and the comparison rely on."""
    import builtins
    import gc
    import hashlib
    import io
    import json
    import os
    import pathlib

    import torch
    import torch.nn.functional
    import torch.serialization
    import torch.utils.dlpack

    out: list[tuple[str, Any, bool]] = [
        ("torch", torch, False), ("torch.Tensor", torch.Tensor, True), ("torch.nn.Module", torch.nn.Module, True),
        ("torch.nn.functional", torch.nn.functional, False), ("torch.serialization", torch.serialization, False),
        ("torch.utils.dlpack", torch.utils.dlpack, False), ("torch.UntypedStorage", torch.UntypedStorage, True),
        ("builtins", builtins, False), ("os", os, False), ("json", json, False), ("sys", sys, False),
        ("gc", gc, False), ("io", io, False), ("hashlib", hashlib, False), ("pathlib", pathlib, False),
        ("pathlib.Path", pathlib.Path, True),
    ]
    # the verifier's own modules in this process (the harness reads their globals while it runs)
    for name in ("evokernel.verify.recorders", "evokernel.verify.harness", "evokernel.verify.cases",
                 "evokernel.verify.messages", "evokernel.verify.sandbox.worker"):
        module = sys.modules.get(name)
        if module is not None:
            out.append((name, module, False))
            out += [(f"{name}.{key}", value, True) for key, value in vars(module).items()
                    if isinstance(value, type) and value.__module__ == name]
    # (not triton.language: the interpreter itself swaps its functions around every launch)
    try:
        from triton.runtime import jit

        out += [("triton.runtime.jit", jit, False), ("JITFunction", jit.JITFunction, True)]
    except Exception:  # pragma: no cover
        pass
    try:
        from triton.runtime import interpreter

        out += [("triton.runtime.interpreter", interpreter, False),
                ("InterpretedFunction", interpreter.InterpretedFunction, True),
                ("GridExecutor", interpreter.GridExecutor, True)]
    except Exception:  # pragma: no cover
        pass
    return out


def _signals() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for sig in getattr(signal, "valid_signals", lambda: [])():
        try:
            out[f"signal {int(sig)}"] = signal.getsignal(sig)
        except (ValueError, OSError):  # pragma: no cover
            pass
    for name in ("ITIMER_REAL", "ITIMER_VIRTUAL", "ITIMER_PROF"):
        which = getattr(signal, name, None)
        if which is not None:
            out[name.lower()] = signal.getitimer(which) != (0.0, 0.0)
    return out


def snapshot_runtime() -> dict[str, Any]:
    """Library functions and interpreter hooks by identity: every entry of torch, torch.Tensor, the launch
    classes, the verifier's own modules in the worker, builtins, os, json, sys, gc, io, hashlib and
    pathlib, plus the trace/profile/except hooks, signal handlers and timers and the number of Python
    threads.

    Compare two snapshots with :func:`runtime_changes` (a module may gain attributes by lazy imports;
    a class may not gain any: a new class attribute shadows an inherited method)."""
    out: dict[str, Any] = {}
    for label, namespace, is_class in _runtime_objects():
        try:
            items = list(vars(namespace).items())
        except TypeError:  # pragma: no cover
            continue
        for key, value in items:
            out[f"{'class' if is_class else 'module'}:{label}.{key}"] = value
    out["hook:sys.gettrace"] = sys.gettrace()
    out["hook:sys.getprofile"] = sys.getprofile()
    out["hook:sys.excepthook"] = sys.excepthook
    out["hook:sys.unraisablehook"] = getattr(sys, "unraisablehook", None)
    out["hook:sys.displayhook"] = sys.displayhook
    out["hook:python threads"] = len(sys._current_frames())  # a thread left running beside the harness
    for key, value in _signals().items():
        out[f"hook:{key}"] = value
    return out


def runtime_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Entries replaced or removed (and class attributes added) between two runtime snapshots."""
    changed = []
    for key, value in before.items():
        if key not in after or after[key] is not value:
            if key.startswith("hook:") and after.get(key) == value:
                continue
            changed.append(key.split(":", 1)[1])
    for key in after:
        if key not in before and key.startswith("class:"):
            changed.append(key.split(":", 1)[1])
    return changed
