"""Stage-specific prompt templates: task, backend notes, retrieved context and the latest feedback."""

from __future__ import annotations

from evokernel.agent.types import ProposalRequest
from evokernel.memory import Item, Retrieved

__all__ = ["build_messages", "SYSTEM_DRAFT", "SYSTEM_REFINE", "label_item"]

_BACKEND_WORDS = {
    "cpu": "the Triton CPU interpreter (TRITON_INTERPRET=1, CPU tensors; correctness only, no timing)",
    "cuda": "an NVIDIA GPU (Triton, CUDA tensors)",
    "rocm": "an AMD GPU (Triton on ROCm; tensors on device 'cuda')",
    "npu": "a Huawei Ascend NPU (triton-ascend with torch_npu, device 'npu')",
}

_RULES = """Rules:
- Reply with exactly one ```python code block holding the complete file: imports, the @triton.jit
  kernel(s) and `class ModelNew(torch.nn.Module)` with the same __init__ arguments and forward
  signature as `Model`, and the same parameter names (the reference's weights are loaded by name).
- The Triton kernels must do the work: no torch fallback, no try/except around launches, no caching
  between calls, no changes to inputs or torch global flags. Derive sizes from the inputs at run time.
- Match the reference's output shape and dtype; accumulate in fp32."""

SYSTEM_DRAFT = (
    "You are an expert GPU kernel engineer. You turn PyTorch reference programs into correct Triton "
    "kernels. First make it correct; speed comes later.\n\n" + _RULES
)

SYSTEM_REFINE = (
    "You are an expert GPU kernel engineer. You make correct Triton kernels faster without breaking "
    "them: better tiling, fusion, memory access, launch configuration.\n\n" + _RULES
)


def _clip_code(code: str, limit: int) -> str:
    if len(code) <= limit:
        return code
    return code[:limit] + f"\n# ... ({len(code) - limit} more characters not shown)"


def _outcome(item: Item) -> str:
    status = item.outcome.get("status", "no kernel") if item.outcome else "no kernel"
    if item.latency_ms is not None:
        status += f", {item.latency_ms:.4g} ms"
    return status


def label_item(r: Retrieved, stage: str) -> str:
    """One header line saying what a retrieved experience is and how it fared."""
    item = r.item
    return (
        f"task {item.task_id or item.task_name} | {item.stage} attempt | outcome: {_outcome(item)} | "
        f"value Q_{stage} = {item.q(stage):+.2f} over {item.visits(stage)} uses | similarity {r.similarity:.2f}"
    )


def _knowledge_section(request: ProposalRequest) -> list[str]:
    if not request.knowledge:
        return []
    out = ["## Notes"]
    for r in request.knowledge:
        out += [f"### {r.item.lesson}", r.item.code.strip(), ""]
    return out


def _experience_section(request: ProposalRequest, title: str, limit: int) -> list[str]:
    if not request.context:
        return []
    out = [f"## {title}"]
    for i, r in enumerate(request.context, 1):
        out.append(f"### Experience {i}: {label_item(r, request.stage)}")
        out.append(f"Lesson: {r.item.lesson}")
        if r.item.code.strip():
            out += ["```python", _clip_code(r.item.code.strip(), limit), "```"]
        out.append("")
    return out


def build_messages(request: ProposalRequest, *, max_code_chars: int = 6000) -> list[dict[str, str]]:
    """Chat messages (system + user) for one attempt at one task."""
    backend = _BACKEND_WORDS.get(request.backend, request.backend)
    user = [
        f"# Task {request.task_id}: {request.task_name}",
        f"Target: {backend}.",
        f"This is attempt {request.attempt + 1} at this task ({request.stage} stage).",
        "",
        "## Reference program",
        "```python",
        request.task_source.strip(),
        "```",
        "",
    ]
    user += _knowledge_section(request)
    if request.stage == "draft":
        system = SYSTEM_DRAFT
        user += _experience_section(request, "Experiences from memory (attempts at similar tasks)", max_code_chars)
        if request.feedback:
            user += ["## Feedback on your previous attempt at this task", request.feedback, ""]
        user.append("Write a correct Triton implementation `ModelNew` of the reference program.")
    else:
        system = SYSTEM_REFINE
        sp = request.start_point
        if sp is not None:
            user += [
                f"## Kernel to improve (outcome: {_outcome(sp)})",
                "```python",
                _clip_code(sp.code.strip(), max_code_chars),
                "```",
                "",
            ]
        if request.children:
            user.append("## Earlier refinements of this kernel")
            for child in request.children:
                user.append(f"- {_outcome(child)}: {child.lesson}")
            user.append("")
        user += _experience_section(
            request, "Experiences from memory (optimisations and faster variants of similar ops)", max_code_chars
        )
        if request.profile:
            user += ["## Profile of the kernel to improve", request.profile, ""]
        if request.feedback:
            user += ["## Feedback on your previous attempt at this task", request.feedback, ""]
        user.append("Write a faster, still correct Triton implementation `ModelNew`.")
    return [{"role": "system", "content": system}, {"role": "user", "content": "\n".join(user)}]
