"""The verifier: a warm worker pool that turns (problem, candidate source) into a Verdict.

Per candidate: static gate (here; no candidate code runs in this process) -> reference data
(computed once per problem and settings, in a worker of its own) -> the candidate's worker
(sandboxed child: import, build, cases, dynamic checks) -> comparisons here, against outputs the
candidate never saw (:mod:`evokernel.verify.judge`) -> on GPU/NPU, timing in the same worker once
this process has found it correct (:mod:`evokernel.verify.timing`).

Thread safety: ``Verifier.evaluate`` may be called from many threads at once; each candidate runs
in its own child process and at most ``workers`` run at a time. Async callers use
``await verifier.evaluate_async(...)`` (one thread per call).
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import hashlib
import io
import json
import logging
import os
import re
import secrets
import shutil
import signal as signal_module
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evokernel.errors import UserError
from evokernel.programs import ProblemError
from evokernel.verify.environment import clean_env, redact, secret_values
from evokernel.verify.jobfiles import OUTPUTS_DIGEST, read_job_file, read_job_text
from evokernel.verify.judge import judge
from evokernel.verify.messages import crash_location, trim
from evokernel.verify.problem import ProblemSpec, resolve_problem
from evokernel.verify.profile import clean_rows, summarize_profile
from evokernel.verify.rules import rule_message
from evokernel.verify.sandbox.pool import Outcome, PoolError, SpawnPool, ZygotePool, supervise
from evokernel.verify.settings import VerifySettings
from evokernel.verify.static_gate import check_candidate
from evokernel.verify.timing import Handshake, cache_get, cache_key, cache_put, timing_fields
from evokernel.verify.verdict import STATUSES, Verdict

__all__ = ["Verifier", "evaluate"]

log = logging.getLogger(__name__)

_REFERENCE_CACHE_SIZE = 16


@dataclass
class _Reference:
    """Everything about one (problem, settings) pair that candidates are checked against."""

    key: tuple[Any, ...]
    directory: Path  # inputs.pt and state.pt, read by candidate workers
    cases: list[dict[str, Any]]
    expected: dict[str, Any]  # held here only; never on disk once loaded
    inputs: dict[str, list[Any]]
    sizes: dict[str, int]
    notes: list[str]
    source: str  # the fitted program
    spec: ProblemSpec
    users: int = 0
    baseline: dict[str, Any] | None = None
    baseline_lock: threading.Lock = field(default_factory=threading.Lock)


def _signal_name(code: int | None) -> str | None:
    if code is None or code >= 0:
        return None
    try:
        return signal_module.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def _read_text(path: Path, limit: int = 200_000) -> str:
    """Text of a job file ("" when it is missing, not a regular file or larger than ``limit``)."""
    return read_job_text(path, limit)


_PHASE = re.compile(r"[a-z0-9_ ]{1,40}")


def _read_phase(path: Path) -> str | None:
    """The worker's progress line: a phase name as the harness writes it, nothing else (the candidate
    can write this file too, and what it writes must not reach the verdict)."""
    text = _read_text(path, 200).strip()
    if not text:
        return None
    return text if _PHASE.fullmatch(text) else "an unknown phase"


def _read_json(path: Path, limit: int = 50_000_000) -> dict[str, Any] | None:
    try:
        value = json.loads(_read_text(path, limit))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _outputs_limit(expected: dict[str, Any], mixed: bool = False) -> int:
    """The largest outputs file worth reading: a generous multiple of what the reference returns (policy
    mixed: plus the torch results the harness keeps per case)."""
    import torch

    from evokernel.verify.recorders import OpRecorder

    total = 0
    for packed in expected.values():
        for leaf in packed.get("leaves", []):
            total += leaf.numel() * 8 if isinstance(leaf, torch.Tensor) else 256  # float64 / int64 at most
    return 4 * total * (1 + (OpRecorder.KEEP if mixed else 0)) + (16 << 20)


def _output_shapes(expected: dict[str, Any]) -> list[list[int]]:
    """Distinct shapes of the reference's output tensors (non-scalar), over every case."""
    import torch

    shapes: list[list[int]] = []
    for packed in expected.values():
        for leaf in packed.get("leaves", []):
            if isinstance(leaf, torch.Tensor) and leaf.numel() > 1 and list(leaf.shape) not in shapes:
                shapes.append(list(leaf.shape))
    return shapes


class _Tampered(ValueError):
    """The outputs file is not the one the harness wrote."""


def _load_outputs(path: Path, digest: Any, limit: int, name: str = "outputs") -> Any:
    """torch.load (weights only) of a file the harness wrote and whose digest it recorded; ValueError
    when it is missing or too large, _Tampered when it is not the bytes the harness wrote."""
    import torch

    data = read_job_file(path, limit)
    if data is None:
        raise ValueError(f"the {name} file is missing, not a regular file, or larger than {limit >> 20} MiB")
    if not isinstance(digest, str) or hashlib.sha256(data).hexdigest() != digest:
        raise _Tampered(f"the {name} file is not the one the harness wrote")
    return torch.load(io.BytesIO(data), weights_only=True)


def _strings(value: Any, limit: int = 200) -> list[str]:
    return [str(v)[:200] for v in value][:limit] if isinstance(value, list) else []


def _sanitize(result: dict[str, Any]) -> dict[str, Any]:
    """The worker's record with every field of the expected type (the candidate shares its process)."""
    status = result.get("status")
    if status not in ("ok", "internal_error", *STATUSES) or status == "correct":
        status = "internal_error"
    checks = result.get("checks")
    cases = result.get("cases")
    return {
        "status": status,
        "rule": result.get("rule") if isinstance(result.get("rule"), str) else None,
        "message": trim(str(result.get("message", ""))),
        "phase": str(result["phase"])[:100] if result.get("phase") is not None else None,
        "signal": str(result["signal"])[:100] if result.get("signal") is not None else None,
        "checks": {str(k)[:100]: str(v)[:300] for k, v in checks.items()} if isinstance(checks, dict) else {},
        "confinement": _strings(result.get("confinement")),
        "kernels": _strings(result.get("kernels")),
        "ops": _strings(result.get("ops")),
        "cases": cases if isinstance(cases, dict) else {},
        "timing": result.get("timing") if isinstance(result.get("timing"), dict) else None,
        "profile": clean_rows(result.get("profile")),
        "profile_error": str(result["profile_error"])[:300] if result.get("profile_error") else None,
        "traceback": str(result.get("traceback", ""))[-4000:],
        OUTPUTS_DIGEST: result.get(OUTPUTS_DIGEST) if isinstance(result.get(OUTPUTS_DIGEST), str) else None,
        "recheck_sha256": result.get("recheck_sha256") if isinstance(result.get("recheck_sha256"), str) else None,
    }


def _cleanup(pools: dict[tuple[str, str], Any], workdir: Path) -> None:
    for pool in list(pools.values()):
        try:
            pool.close()
        except Exception:  # pragma: no cover - best effort at interpreter exit
            pass
    shutil.rmtree(workdir, ignore_errors=True)


class Verifier:
    """A reusable warm worker pool; use as a context manager or call close()."""

    def __init__(
        self,
        settings: VerifySettings | None = None,
        *,
        workers: int | None = None,
        workdir: str | os.PathLike[str] | None = None,
        prestart: bool = True,
    ) -> None:
        self.settings = settings or VerifySettings()
        self.settings.validate()
        self.workers = max(1, workers or (os.cpu_count() or 1))
        self._slots = threading.BoundedSemaphore(self.workers)
        base = Path(workdir) if workdir else None
        if base is not None:
            base.mkdir(parents=True, exist_ok=True)
        self.workdir = Path(tempfile.mkdtemp(prefix="evokernel-verify-", dir=base))
        os.chmod(self.workdir, 0o700)
        self._lock = threading.Lock()
        self._pools: dict[tuple[str, str], Any] = {}
        self._backends: dict[str, Any] = {}
        self._refs: collections.OrderedDict[tuple[Any, ...], _Reference] = collections.OrderedDict()
        self._ref_locks: dict[tuple[Any, ...], threading.Lock] = {}
        self._job_ids = iter(range(1, 1 << 62))
        self._secrets = secret_values()
        self._input_key = secrets.token_hex(16)  # mixed into the input seeds (VerifySettings.secret_inputs)
        self._closed = False
        self._finalizer = weakref.finalize(self, _cleanup, self._pools, self.workdir)
        if prestart:
            try:
                backend = self._backend(self.settings.backend)
                self._pool(backend, self.settings).start()
            except UserError:
                pass  # reported by the first evaluate, with the setting that caused it

    # -- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> Verifier:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Stop every worker and delete the working directory."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._finalizer()

    # -- backends, pools, jobs -----------------------------------------------------------------
    def _backend(self, name: str) -> Any:
        from evokernel.backends import get_backend

        with self._lock:
            if name not in self._backends:
                self._backends[name] = get_backend(name)
            return self._backends[name]

    def _pool(self, backend: Any, settings: VerifySettings) -> Any:
        method = backend.start_method if settings.start_method == "auto" else settings.start_method
        if method == "fork" and not backend.interpreter:
            raise UserError(f"verify setting start_method='fork' is only safe on the cpu backend, not {backend.name}")
        key = (backend.name, method)
        with self._lock:
            if self._closed:
                raise UserError("this Verifier was closed; create a new one")
            pool = self._pools.get(key)
            if pool is None:
                env = clean_env(os.environ, **backend.worker_env())
                spec = backend.worker_spec
                pool = ZygotePool(spec, env) if method == "fork" else SpawnPool(spec, env)
                self._pools[key] = pool
            return pool

    def _new_job_dir(self, kind: str) -> Path:
        with self._lock:
            n = next(self._job_ids)
        job_dir = self.workdir / "jobs" / f"{kind}-{n}"
        (job_dir / "scratch").mkdir(parents=True)
        return job_dir

    def _run_job(self, pool: Any, job_dir: Path, job: dict[str, Any], timeout_s: float, memory_bytes: int | None,
                 on_tick: Any = None) -> tuple[Outcome, dict[str, Any] | None]:
        (job_dir / "job.json").write_text(json.dumps(job))
        handle = pool.launch(job_dir)
        outcome = supervise(handle, timeout_s, memory_bytes, on_tick=on_tick)
        if self._closed:  # killed by close(), not by anything the job did: no verdict on it
            raise PoolError("the verifier was closed while a job ran")
        return outcome, _read_json(job_dir / "result.json") if os.path.lexists(job_dir / "result.json") else None

    def _key_for(self, settings: VerifySettings) -> str:
        """The secret mixed into input seeds: the settings' own, else this Verifier's ("" when off)."""
        if not settings.secret_inputs:
            return ""
        return settings.input_key or self._input_key

    # -- reference -----------------------------------------------------------------------------
    def _acquire_reference(self, spec: ProblemSpec, settings: VerifySettings, backend: Any, pool: Any) -> _Reference:
        fit = settings.resolved_fit(backend.name)
        key = (spec.hash, backend.name, fit, settings.max_elements, settings.seed, settings.trials,
               settings.probes, settings.ghost_replay, self._key_for(settings))
        with self._lock:
            lock = self._ref_locks.setdefault(key, threading.Lock())
        with lock:  # one computation per key; other threads wait for it
            with self._lock:
                ref = self._refs.get(key)
                if ref is not None:
                    self._refs.move_to_end(key)
                    ref.users += 1
                    return ref
            ref = self._compute_reference(key, spec, settings, backend, pool, fit)
            with self._lock:
                ref.users += 1
                self._refs[key] = ref
                idle = [k for k, r in self._refs.items() if r.users == 0]
                while len(self._refs) > _REFERENCE_CACHE_SIZE and idle:
                    old = self._refs.pop(idle.pop(0))
                    shutil.rmtree(old.directory, ignore_errors=True)
            return ref

    def _release_reference(self, ref: _Reference) -> None:
        with self._lock:
            ref.users -= 1

    def _compute_reference(self, key: tuple[Any, ...], spec: ProblemSpec, settings: VerifySettings, backend: Any,
                           pool: Any, fit: str) -> _Reference:
        import torch

        job_dir = self._new_job_dir("reference")
        ref_dir = self.workdir / "problems" / f"{spec.hash}-{abs(hash(key)) % 10**8}"
        ref_dir.mkdir(parents=True, exist_ok=True)
        job = {
            "kind": "reference", "source": spec.source, "filename": spec.filename, "seed": settings.seed,
            "trials": settings.trials, "probes": settings.probes, "ghost_replay": settings.ghost_replay,
            "fit": fit, "max_elements": settings.max_elements, "threads": settings.threads,
            "inputs_file": str(ref_dir / "inputs.pt"), "state_file": str(ref_dir / "state.pt"),
            "input_key": self._key_for(settings),
        }
        try:
            outcome, result = self._run_job(pool, job_dir, job, max(300.0, 2 * settings.timeout_s),
                                            int(4 * settings.memory_limit_gb * 2**30))
            if result is None or outcome.timed_out or outcome.memory_exceeded:
                why = ("timed out" if outcome.timed_out else "ran out of memory" if outcome.memory_exceeded
                       else f"crashed ({_signal_name(outcome.exit_code) or f'exit code {outcome.exit_code}'})")
                raise ProblemError(f"{spec.filename}: computing the reference {why}; check that the problem runs on "
                                   f"{backend.name} at these sizes (or lower them)")
            if result["status"] == "user_error":
                raise ProblemError(result["message"])
            if result["status"] != "ok":
                raise RuntimeError(f"reference worker failed: {result.get('message')}\n{result.get('traceback', '')}")
            expected = torch.load(job_dir / "expected.pt", weights_only=True)
            shared = torch.load(ref_dir / "inputs.pt", weights_only=True)
        finally:
            shutil.rmtree(job_dir, ignore_errors=True)  # expected outputs never outlive this call on disk
        source = spec.source
        if result.get("changed"):
            from evokernel.programs import with_sizes

            source = with_sizes(spec.source, result["changed"], spec.filename)
        return _Reference(
            key=key, directory=ref_dir, cases=result["cases"], expected=expected,
            inputs={c["name"]: c["inputs"] for c in shared["cases"]}, sizes=result.get("sizes", {}),
            notes=result.get("notes", []), source=source, spec=spec,
        )

    # -- evaluation ----------------------------------------------------------------------------
    async def evaluate_async(self, problem: Any, candidate_source: str,
                             settings: VerifySettings | None = None) -> Verdict:
        """``evaluate`` on a worker thread, for asyncio callers."""
        return await asyncio.to_thread(self.evaluate, problem, candidate_source, settings)

    def evaluate(self, problem: Any, candidate_source: str, settings: VerifySettings | None = None) -> Verdict:
        """Verify one candidate. Whatever the candidate does becomes a Verdict; bad problems, settings
        or a missing device raise UserError; a worker pool that cannot start raises PoolError."""
        start = time.monotonic()
        s = settings or self.settings
        s.validate()
        backend = self._backend(s.backend)
        spec = resolve_problem(problem)
        base: dict[str, Any] = {"backend": backend.name, "device": backend.describe(), "problem_id": spec.id}
        checks: dict[str, str] = {}

        def finish(**fields: Any) -> Verdict:
            data = {**base, "checks": checks, **fields}
            data["wall_s"] = round(time.monotonic() - start, 4)
            secrets = sorted(set(self._secrets) | set(secret_values()), key=len, reverse=True)
            return Verdict.from_dict(redact(data, secrets))

        if s.static_gate:
            gate = check_candidate(candidate_source)
            if gate is not None:
                checks["static_gate"] = f"fail: {gate.rule or gate.status}"
                return finish(status=gate.status, rule=gate.rule, message=gate.message, phase="static_gate")
            checks["static_gate"] = "pass"
        else:
            checks["static_gate"] = "skipped: disabled in settings"
            try:
                compile(candidate_source, "candidate.py", "exec")
            except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
                line = getattr(exc, "lineno", None)
                return finish(status="compile_error", phase="static_gate",
                              message=trim(f"candidate.py:{line}: {type(exc).__name__}: {exc}"))

        pool = self._pool(backend, s)
        ref = self._acquire_reference(spec, s, backend, pool)
        try:
            base["sizes"] = ref.sizes
            if ref.notes:
                checks["reference"] = "; ".join(ref.notes)
            with self._slots:
                job_dir = self._new_job_dir("candidate")
                try:
                    return self._run_candidate(job_dir, ref, candidate_source, s, backend, pool, checks, finish)
                finally:
                    if not os.environ.get("EVOKERNEL_KEEP_JOBS"):
                        shutil.rmtree(job_dir, ignore_errors=True)
        finally:
            self._release_reference(ref)

    def _run_candidate(self, job_dir: Path, ref: _Reference, candidate_source: str, s: VerifySettings, backend: Any,
                       pool: Any, checks: dict[str, str], finish: Any) -> Verdict:
        candidate_path = job_dir / "scratch" / "candidate.py"
        candidate_path.write_text(candidate_source, encoding="utf-8")
        memory_bytes = int(s.memory_limit_gb * 2**30)
        timing = backend.times_kernels
        interp = backend.interpreter
        job = {
            "kind": "candidate", "candidate_path": str(candidate_path), "seed": s.seed, "threads": s.threads,
            "inputs_file": str(ref.directory / "inputs.pt"), "state_file": str(ref.directory / "state.pt"),
            "timing": timing, "timing_runs": s.timing_runs, "warmup_runs": s.warmup_runs,
            # policy mixed: keep torch's results that have an output's shape (did torch do all the work?)
            "keep_torch_results": _output_shapes(ref.expected) if s.policy == "mixed" else [],
            # confinement: the interpreter needs no processes, sockets or /proc; device stacks may
            "sandbox": s.sandbox, "block_processes": interp, "block_threads": interp and s.threads == 1,
            "block_unix_sockets": interp, "hide_processes": interp,
            "hide_dirs": [str(self.workdir)],  # the reference's files and every other job's
            "write_dirs": [] if interp else ["/dev"], "write_files": ["/dev/null"],
            # an address-space cap only where no device driver reserves huge virtual ranges
            "address_space_bytes": (memory_bytes + 6 * 2**30) if interp and s.sandbox else None,
        }
        decided: dict[str, Any] = {}
        on_tick = None
        if timing:
            os.mkfifo(job_dir / "control", 0o600)
            on_tick = Handshake(job_dir, lambda: self._judge(job_dir, ref, s, checks, decided))
        outcome, result = self._run_job(pool, job_dir, job, s.timeout_s, memory_bytes, on_tick)
        phase = _read_phase(job_dir / "progress")
        during = f" during {phase.replace('_', ' ')}" if phase else ""

        if outcome.timed_out:
            return finish(status="timeout", phase=phase, message=f"timed out after {s.timeout_s:g} s{during} "
                                                                 "(wall-clock limit)")
        if outcome.memory_exceeded:
            return finish(status="memory_exceeded", phase=phase,
                          message=f"resident memory passed the {s.memory_limit_gb:g} GB limit{during}")
        if result is None:
            sig = _signal_name(outcome.exit_code)
            where = crash_location(_read_text(job_dir / "stderr.log"), str(candidate_path))
            at = f" at {where}" if where else ""
            if outcome.lost:
                msg = f"the worker was lost{during} (its supervisor died)"
            elif sig:
                msg = f"crashed with {sig}{during}{at}"
            else:
                msg = f"the worker exited with code {outcome.exit_code}{during} before finishing{at}"
            return finish(status="crashed", signal=sig, phase=phase, message=msg)

        result = _sanitize(result)
        checks.update(result["checks"])
        if result["confinement"]:
            checks["sandbox"] = "; ".join(result["confinement"])
        common = {"kernels_launched": result["kernels"], "torch_ops": result["ops"]}
        status = result["status"]
        if status == "internal_error":
            log.debug("worker internal error: %s", result.get("traceback"))
            return finish(status="runtime_error", phase=phase, message=trim(
                f"the candidate broke the verifier's worker: {result.get('message', '')}"), **common)
        if status != "ok":
            return finish(status=status, rule=result.get("rule"), message=result.get("message", ""),
                          phase=result.get("phase"), signal=result.get("signal"), **common)

        fields = {**(decided or self._judge(job_dir, ref, s, checks, decided)), **common}
        if fields["status"] == "correct" and timing:
            fields.update(self._timing(job_dir, ref, s, backend, pool, result, checks))
        return finish(**fields)

    def _judge(self, job_dir: Path, ref: _Reference, s: VerifySettings, checks: dict[str, str],
               decided: dict[str, Any]) -> dict[str, Any]:
        """Compare the worker's outputs (decided once; the handshake may call this before the worker ends)."""
        if decided:
            return decided
        # result.json, or (device backends, judged while the worker waits) the record it wrote before timing
        result = _read_json(job_dir / "result.json") or _read_json(job_dir / "cases.json") or {}
        records = result.get("cases") if isinstance(result.get("cases"), dict) else {}
        try:
            outputs = _load_outputs(job_dir / "outputs.pt", result.get(OUTPUTS_DIGEST),
                                    _outputs_limit(ref.expected, s.policy == "mixed"))
            if not isinstance(outputs, dict):
                raise TypeError(f"expected a dict of cases, got {type(outputs).__name__}")
        except _Tampered as exc:
            checks["outputs_intact"] = "fail"
            decided.update(status="rejected", rule="tampered_outputs", phase="compare",
                           message=trim(rule_message("tampered_outputs", str(exc))))
            return decided
        except Exception as exc:  # the candidate left something torch cannot load safely
            decided.update(status="incorrect", phase="compare",
                           message=trim(f"the outputs could not be read back: {type(exc).__name__}: {exc}"))
            return decided
        checks["outputs_intact"] = "pass"
        try:
            decided.update(judge(ref.cases, ref.expected, ref.inputs, outputs, records, s.policy, s.atol, s.rtol,
                                 checks))
        except Exception as exc:  # outputs or records in a shape the harness never writes: tampered with
            decided.clear()
            decided.update(status="incorrect", phase="compare",
                           message=trim(f"the outputs are malformed: {type(exc).__name__}: {exc}"))
        return decided

    # -- timing --------------------------------------------------------------------------------
    def _timing(self, job_dir: Path, ref: _Reference, s: VerifySettings, backend: Any, pool: Any,
                result: dict[str, Any], checks: dict[str, str]) -> dict[str, Any]:
        try:
            recheck = _load_outputs(job_dir / "recheck.pt", result.get("recheck_sha256"),
                                    _outputs_limit(ref.expected), "re-check")["recheck"]
        except Exception:
            recheck = None
        first = ref.cases[0]["name"]
        fields = timing_fields(result.get("timing"), recheck, ref.expected[first], ref.inputs[first],
                               self._baseline(ref, s, backend, pool), s.atol, s.rtol, s.flag_speedup, checks)
        if "latency_ms" in fields and fields.get("status") is None:
            fields["profile"] = summarize_profile(result.get("profile"), fields["latency_ms"])
            if fields["profile"]:
                checks["profile"] = "pass"
            elif result.get("profile_error"):
                checks["profile"] = f"failed (timing kept): {result['profile_error']}"
            else:
                checks["profile"] = "skipped: no profiler for this backend"
        return fields

    def _baseline(self, ref: _Reference, s: VerifySettings, backend: Any, pool: Any) -> dict[str, Any]:
        """Eager and torch.compile timings of the reference: memory, then the cache file, then a worker."""
        import torch

        with ref.baseline_lock:
            if ref.baseline is not None:
                return ref.baseline
            key = cache_key(ref.spec.hash, ref.sizes, backend.describe(), torch.__version__, s.timing_runs,
                            s.warmup_runs, s.time_compile)
            cached = cache_get(s.reference_cache, key)
            if cached is None:
                job_dir = self._new_job_dir("baseline")
                job = {"kind": "baseline", "source": ref.source, "filename": ref.spec.filename, "seed": s.seed,
                       "inputs_file": str(ref.directory / "inputs.pt"), "timing_runs": s.timing_runs,
                       "warmup_runs": s.warmup_runs, "time_compile": s.time_compile, "threads": s.threads}
                try:
                    _, result = self._run_job(pool, job_dir, job, max(600.0, 4 * s.timeout_s), None)
                finally:
                    shutil.rmtree(job_dir, ignore_errors=True)
                cached = result if result and result.get("status") == "ok" else {}
                if cached:
                    cache_put(s.reference_cache, key, cached)
            ref.baseline = cached
            return cached


# -- module-level convenience -------------------------------------------------------------------
_default: dict[tuple[str, str], Verifier] = {}
_default_lock = threading.Lock()


def _close_defaults() -> None:
    with _default_lock:
        for verifier in _default.values():
            verifier.close()
        _default.clear()


atexit.register(_close_defaults)


def evaluate(problem: Any, candidate_source: str, settings: VerifySettings | None = None) -> Verdict:
    """Verify one candidate with a process-wide warm Verifier (created on first use, closed at exit)."""
    s = settings or VerifySettings()
    key = (s.backend, s.start_method)
    with _default_lock:
        verifier = _default.get(key)
        if verifier is None:
            verifier = _default[key] = Verifier(s)
    return verifier.evaluate(problem, candidate_source, s)
