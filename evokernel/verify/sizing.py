"""Shrink a problem's module-level size constants until it fits the Triton interpreter.

Used by the verifier on the CPU backend (``fit="cpu"``) and by the benchmark runner. Shapes are
found by running the program on the meta device (no data, no compute); the shrunk program is then
run for real once to prove it is still valid. Only reference programs run here.

Thread safety: ``fit_problem`` keeps no state; it may be called from several threads.
"""

from __future__ import annotations

import re
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

from evokernel.programs import ProblemError, load_program, run_reference, size_constants, with_sizes

__all__ = ["FitResult", "fit_problem", "measure_problem"]

# Constants that name an axis, a window or a hyper-parameter rather than a size.
_PROTECTED = re.compile(
    r"kernel|stride|pad|dilation|group|axis|eps|seed|prob|scale|factor|momentum|^p$", re.IGNORECASE
)
_MAX_STEPS = 200


@dataclass
class FitResult:
    """A problem rewritten to fit: the new source, the sizes before and after, and the input shapes."""

    source: str
    sizes: dict[str, int]
    original_sizes: dict[str, int]
    changed: dict[str, int] = field(default_factory=dict)  # constant -> new value
    input_shapes: list[list[int]] = field(default_factory=list)
    max_input_elements: int = 0
    note: str = ""

    @property
    def fitted(self) -> bool:
        """True when any constant changed."""
        return bool(self.changed)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


@dataclass
class _Shape:
    inputs: list[int]  # element counts
    input_shapes: list[list[int]]
    others: list[int]  # outputs and parameters (None when the model cannot run on meta)
    model_ok: bool
    error: str = ""


def _leaves(obj: Any) -> list[Any]:
    import torch

    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [t for o in obj for t in _leaves(o)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in _leaves(o)]
    return []


def measure_problem(source: str, filename: str = "<problem>", *, with_model: bool = True) -> _Shape:
    """Input (and, where the model runs on meta, output and parameter) element counts of a program."""
    import torch

    module = load_program(source, filename)
    try:
        with torch.device("meta"):
            try:
                inputs = module.get_inputs()
            except Exception as exc:
                raise ProblemError(
                    f"{filename}: get_inputs() failed while measuring the sizes (on the meta device): "
                    f"{type(exc).__name__}: {exc}; fix the problem file (if it fails only on the meta device, --fit none skips the fitting)"
                ) from exc
            tensors = _leaves(inputs)
            shape = _Shape([t.numel() for t in tensors], [list(t.shape) for t in tensors], [], False)
            if with_model:
                try:
                    model = module.Model(*module.get_init_inputs())
                    with torch.no_grad():
                        out = model(*inputs)
                    shape.others = [t.numel() for t in _leaves(out)]
                    shape.others += [p.numel() for p in model.parameters()]
                    shape.others += [b.numel() for b in model.buffers()]
                    shape.model_ok = True
                except Exception as exc:  # data-dependent ops, invalid sizes: reported to the caller
                    shape.error = f"{type(exc).__name__}: {exc}"[:300]
        return shape
    finally:
        sys.modules.pop(module.__name__, None)


def _clipped(values: list[int], limit: int) -> tuple[int, ...]:
    return tuple(sorted((v for v in values if v > limit), reverse=True))


def fit_problem(
    source: str,
    *,
    max_elements: int = 65536,
    filename: str = "<problem>",
    verify: bool = True,
    seed: int = 0,
) -> FitResult:
    """Scale size constants down until every input tensor has at most ``max_elements`` elements.

    Greedy: each step halves the one constant that shrinks the largest oversized input most (ties:
    the larger constant), keeping only steps after which the model still builds and runs on the meta
    device. Outputs and parameters are then brought under the same bound where that is possible.
    Raises ProblemError when the inputs cannot be brought under the bound, or when the shrunk
    program fails to run for real.
    """
    original = size_constants(source, filename)
    start = measure_problem(source, filename)
    result = FitResult(source, dict(original), dict(original))
    if not start.inputs and not start.input_shapes:
        result.note = "no tensor inputs"
    use_model = start.model_ok
    if not use_model and start.error:
        result.note = f"model does not run on the meta device ({start.error}); sizes fitted on inputs only"

    sizes = dict(original)
    current = start
    frozen: set[str] = set()

    def shrinkable() -> list[str]:
        return [k for k, v in sizes.items() if v >= 2 and k not in frozen and not _PROTECTED.search(k)]

    def try_sizes(candidate: dict[str, int]) -> _Shape | None:
        try:
            shape = measure_problem(with_sizes(source, _diff(candidate, original), filename), filename,
                                    with_model=use_model)
        except ProblemError:
            return None
        if use_model and not shape.model_ok:
            return None
        return shape

    for stage in ("inputs", "others"):
        for _ in range(_MAX_STEPS):
            values = current.inputs if stage == "inputs" else current.inputs + current.others
            target = _clipped(values, max_elements)
            if not target:
                break
            best: tuple[tuple[int, ...], int, str, _Shape] | None = None
            for name in shrinkable():
                trial = dict(sizes)
                trial[name] = max(1, sizes[name] // 2)
                shape = try_sizes(trial)
                if shape is None:
                    frozen.add(name)
                    continue
                new_values = shape.inputs if stage == "inputs" else shape.inputs + shape.others
                new_target = _clipped(new_values, max_elements)
                if new_target >= target:  # no progress on the oversized tensors
                    continue
                key = (new_target, -sizes[name], name, shape)
                if best is None or key[:2] < best[:2]:
                    best = key
            if best is None:
                break
            name = best[2]
            sizes[name] = max(1, sizes[name] // 2)
            current = best[3]
        if stage == "inputs" and _clipped(current.inputs, max_elements):
            over = [s for s, n in zip(current.input_shapes, current.inputs) if n > max_elements]
            raise ProblemError(
                f"{filename}: cannot be shrunk to fit the interpreter: input(s) of shape "
                f"{', '.join(str(tuple(s)) for s in over)} exceed {max_elements} elements and no module-level "
                "size constant reduces them; lower the sizes in the file or use --fit none"
            )

    changed = _diff(sizes, original)
    new_source = with_sizes(source, changed, filename) if changed else source
    if verify and changed:
        try:
            run_reference(new_source, filename, seed=seed)
        except ProblemError as failed:
            exc = failed.__cause__ or failed  # what the program raised
            if not start.model_ok:  # broken at its own sizes too (on the meta device): not the shrinking
                raise ProblemError(
                    f"{filename}: the reference fails to run: {type(exc).__name__}: {str(exc)[:200]}; "
                    "fix the problem file"
                ) from exc
            raise ProblemError(
                f"{filename}: the shrunk problem ({', '.join(f'{k}={v}' for k, v in changed.items())}) fails to run: "
                f"{type(exc).__name__}: {str(exc)[:200]}; lower the sizes in the file by hand or use --fit none"
            ) from exc
    result.source = new_source
    result.sizes = dict(sizes)
    result.changed = changed
    result.input_shapes = current.input_shapes
    result.max_input_elements = max(current.inputs, default=0)
    return result


def _diff(sizes: dict[str, int], original: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in sizes.items() if original.get(k) != v}
