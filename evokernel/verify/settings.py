"""Verifier settings: one dataclass, validated, plus the per-dtype tolerance table."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from evokernel.errors import UserError

__all__ = ["VerifySettings", "BACKENDS", "POLICIES", "FITS", "START_METHODS", "tolerance_for"]

BACKENDS = ("auto", "cpu", "cuda", "rocm", "npu")
POLICIES = ("strict", "mixed")
FITS = ("auto", "cpu", "none")
START_METHODS = ("auto", "fork", "spawn")

# dtype name -> (atol, rtol). fp32 follows the paper (1e-2, 1e-2); half precisions are looser;
# integers and booleans must match exactly.
_TOLERANCES: dict[str, tuple[float, float]] = {
    "float64": (1e-2, 1e-2),
    "float32": (1e-2, 1e-2),
    "float16": (2e-2, 2e-2),
    "bfloat16": (5e-2, 5e-2),
    "float8_e4m3fn": (1e-1, 1e-1),
    "float8_e5m2": (1e-1, 1e-1),
}


def tolerance_for(dtype_name: str, atol: float | None = None, rtol: float | None = None) -> tuple[float, float]:
    """(atol, rtol) for an output dtype (e.g. "float16"); explicit values override the table."""
    default = _TOLERANCES.get(dtype_name.removeprefix("torch."), (0.0, 0.0))
    return (default[0] if atol is None else float(atol), default[1] if rtol is None else float(rtol))


@dataclass
class VerifySettings:
    """Everything that decides how a candidate is checked, confined and timed."""

    backend: str = "auto"  # auto | cpu | cuda | rocm | npu | package.module:Class (a Backend subclass)
    trials: int = 5
    atol: float | None = None  # None -> per output dtype (tolerance_for)
    rtol: float | None = None
    policy: str = "strict"  # strict: no torch compute ops in forward; mixed: allowed and listed
    timeout_s: float = 120.0  # wall clock for one candidate's worker
    memory_limit_gb: float = 4.0  # resident memory of the candidate's worker (host RAM)
    fit: str = "auto"  # auto (cpu on the cpu backend, none elsewhere) | cpu | none
    max_elements: int = 65536  # per input tensor on the interpreter
    seed: int = 0
    probes: bool = True  # signed / scaled / shifted variants of float inputs
    ghost_replay: bool = True  # re-run with every Triton launch turned into a no-op
    timing_runs: int = 100
    warmup_runs: int = 10
    time_compile: bool = True  # also time torch.compile of the reference (GPU/NPU)
    reference_cache: str | None = None  # JSON file caching reference timings
    # Added beyond docs/architecture.md:
    static_gate: bool = True  # the AST gate; turning it off is for testing the dynamic checks only
    sandbox: bool = True  # Landlock / seccomp / rlimits in the candidate's worker where the OS allows
    start_method: str = "auto"  # auto (fork from a zygote on cpu, spawn on devices) | fork | spawn
    threads: int = 1  # torch intra-op threads in each worker
    # inputs drawn from seed and a secret of the Verifier (never given to candidates), so a candidate that
    # knows the seeding cannot precompute the answers; False: from seed alone (reproducible across runs)
    secret_inputs: bool = True
    # that secret, given explicitly (an agent run keeps one so a resumed run sees the same inputs);
    # None: a fresh random secret per Verifier
    input_key: str | None = None
    flag_speedup: float = 10.0  # speedups above this are flagged for review

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise UserError naming the first invalid setting."""

        def bad(name: str, why: str) -> UserError:
            return UserError(f"verify setting {name}={getattr(self, name)!r}: {why}")

        if self.backend not in BACKENDS and ":" not in self.backend:
            raise bad("backend", f"choose one of {', '.join(BACKENDS)} (or package.module:Class)")
        if self.policy not in POLICIES:
            raise bad("policy", f"choose one of {', '.join(POLICIES)}")
        if self.fit not in FITS:
            raise bad("fit", f"choose one of {', '.join(FITS)}")
        if self.start_method not in START_METHODS:
            raise bad("start_method", f"choose one of {', '.join(START_METHODS)}")
        if int(self.trials) < 1:
            raise bad("trials", "must be at least 1")
        for name in ("atol", "rtol"):
            value = getattr(self, name)
            if value is not None and not (float(value) >= 0.0):
                raise bad(name, "must be >= 0 (or None for the per-dtype default)")
        if not float(self.timeout_s) > 0:
            raise bad("timeout_s", "must be > 0 seconds")
        if not float(self.memory_limit_gb) > 0:
            raise bad("memory_limit_gb", "must be > 0 GB")
        if int(self.max_elements) < 16:
            raise bad("max_elements", "must be at least 16")
        if int(self.timing_runs) < 1 or int(self.warmup_runs) < 0:
            raise bad("timing_runs", "timing_runs must be >= 1 and warmup_runs >= 0")
        if int(self.threads) < 1:
            raise bad("threads", "must be at least 1")
        if not -(2**63) <= int(self.seed) < 2**63:
            raise bad("seed", "must fit in a signed 64-bit integer")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VerifySettings:
        """Inverse of to_dict; unknown keys are an error naming the key."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(f"unknown verify setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**data)

    def replace(self, **changes: Any) -> VerifySettings:
        """A validated copy with some fields changed."""
        return replace(self, **changes)

    def resolved_fit(self, backend: str) -> str:
        """The fit mode actually used on a concrete backend ("cpu" or "none")."""
        if self.fit == "auto":
            return "cpu" if backend == "cpu" else "none"
        return self.fit
