"""Every anti-hack rule the verifier enforces, in one table: name -> where it is checked and what it says.

The rule name goes into ``Verdict.rule`` when the rule fires; the message is the start of
``Verdict.message`` (followed by the candidate's file:line and what was seen).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Rule", "RULES", "rule_message"]


@dataclass(frozen=True)
class Rule:
    """One anti-hack rule; ``stage`` is "static" (AST gate), "worker" (inside the sandbox) or "parent"."""

    name: str
    stage: str
    message: str


RULES: dict[str, Rule] = {
    r.name: r
    for r in (
        # --- static gate (AST) ---
        Rule("no_triton_kernel", "static", "no @triton.jit kernel: define one and launch it from ModelNew.forward"),
        Rule("forbidden_import", "static", "import not allowed: use torch, triton, math and small standard helpers"),
        Rule("harness_access", "static", "the verifier, benchmark and test harness are off limits"),
        Rule("monkey_patch", "static", "assigning to attributes of torch, triton, time or builtins is not allowed"),
        Rule("global_flags", "static", "changing torch global flags (TF32, matmul precision, determinism, "
             "default dtype) is not allowed"),
        Rule("introspection", "static", "frame, gc, sys and interpreter introspection is not allowed"),
        Rule("dynamic_code", "static", "eval/exec/compile/__import__/importlib and computed getattr are not allowed"),
        Rule("threads", "static", "threads, async tasks and process pools are not allowed"),
        Rule("subprocess", "static", "starting processes or sending signals is not allowed"),
        Rule("network", "static", "network access is not allowed"),
        Rule("filesystem", "static", "file access is not allowed: a candidate reads and writes no files"),
        Rule("environment", "static", "reading or changing environment variables is not allowed"),
        Rule("os_access", "static", "the os module is not available to candidates"),
        Rule("native_code", "static", "ctypes, mmap, C extensions and cpp_extension are not allowed"),
        Rule("torch_compile", "static", "torch.compile / torch.jit / dynamo / inductor write kernels for you; "
             "write the Triton kernels yourself"),
        Rule("private_api", "static", "private torch/triton APIs (names starting with _) are not allowed"),
        Rule("low_level_launch", "static", "launch kernels as kernel[grid](...) only; compiled-kernel, warmup "
             "and launcher APIs are not allowed"),
        Rule("side_stream", "static", "creating or switching streams is not allowed: work runs on the current stream"),
        Rule("try_fallback", "static", "try/except is not allowed: a fallback around a kernel hides its failures"),
        Rule("host_data", "static", "moving tensor data to the host (.numpy(), __array__, dlpack, from_numpy, "
             "from_file) is not allowed: the kernels compute on the device"),
        Rule("kernel_python", "static", "a @triton.jit kernel may call only triton.language functions, other "
             "@triton.jit functions and a few builtins (plain Python in a kernel runs only in the interpreter)"),
        # --- dynamic, inside the candidate's worker ---
        Rule("no_kernel_launched", "worker", "forward launched no Triton kernel"),
        Rule("torch_compute", "worker", "torch compute ops ran in forward (policy strict allows none; write them "
             "as Triton kernels or use policy mixed)"),
        Rule("mutated_inputs", "worker", "forward changed its input tensors"),
        Rule("output_aliases_input", "worker", "an output shares memory with an input"),
        Rule("global_flags_changed", "worker", "torch global flags changed while the candidate ran"),
        Rule("patched_clock", "worker", "a clock or timer function was replaced"),
        Rule("patched_runtime", "worker", "torch, triton or Python runtime functions, trace hooks or signal "
             "handlers were changed while the candidate ran"),
        Rule("host_compute", "worker", "forward read tensor data into Python (.item/.tolist/.numpy/printing): "
             "compute the result in Triton kernels, not on the host"),
        # --- decided in the parent, from outputs the candidate cannot reach ---
        Rule("caching", "parent", "stale answer: the output for fresh inputs is the answer to an earlier call"),
        Rule("tampered_outputs", "parent", "the outputs file was changed after the harness wrote it"),
        Rule("torch_did_the_work", "parent", "a torch op in forward computed the expected output by itself; "
             "the kernels only moved it (policy mixed allows torch for part of the work, not all of it)"),
        Rule("ghost_replay", "parent", "output still correct with every Triton launch turned into a no-op: "
             "the kernels do not do the work"),
    )
}


def rule_message(name: str, detail: str = "") -> str:
    """The rule's message, with a detail appended after a colon."""
    base = RULES[name].message
    return f"{base}: {detail}" if detail else base
