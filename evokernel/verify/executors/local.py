"""The local executor: warm Verifier pools on this machine, one per device.

- Interpreter (CPU): one Verifier with ``workers`` sandboxed workers.
- GPUs / NPUs: one Verifier per device with one worker each, its workers pinned to that device
  (``CUDA_VISIBLE_DEVICES`` / ``HIP_VISIBLE_DEVICES`` / ``ASCEND_RT_VISIBLE_DEVICES`` narrowed to it,
  within any mask already set), so the reference and the candidate are timed on the same device
  and no two candidates ever share one. ``workers`` picks how many devices are used (default: all).

A Verifier whose worker pool fails (``PoolError``: the pool could not start or lost its worker) costs
the attempt a retry on another device (or a restarted pool); a second failure is raised, as the bare
Verifier raises it: a pool that cannot start twice is a broken setup, not a fact about the candidate.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from evokernel.errors import UserError
from evokernel.verify.executors.base import Affinity, BackendInfo, Executor, base_worker, ship_problem
from evokernel.verify.sandbox.pool import PoolError
from evokernel.verify.settings import VerifySettings
from evokernel.verify.verdict import Verdict
from evokernel.verify.verifier import Verifier

__all__ = ["LocalExecutor", "DeviceSlot", "plan_devices", "VISIBLE_DEVICES"]

log = logging.getLogger(__name__)

# backend name -> the variable that restricts which devices a process sees
VISIBLE_DEVICES = {"cuda": "CUDA_VISIBLE_DEVICES", "rocm": "HIP_VISIBLE_DEVICES", "npu": "ASCEND_RT_VISIBLE_DEVICES"}


@dataclass(frozen=True)
class DeviceSlot:
    """One Verifier's share of the machine: its label, capacity and the variables pinning its workers."""

    label: str  # "cpu", or the device as torch names it on this machine, e.g. "cuda:3"
    index: int | None  # device index in this process (None on the interpreter)
    capacity: int  # candidates at once
    env: dict[str, str] = field(default_factory=dict)


def plan_devices(backend: str, workers: int | None, *, device_count: int | None, device_type: str = "cpu",
                 env: dict[str, str] | None = None) -> list[DeviceSlot]:
    """How ``workers`` map onto devices: one slot of ``workers`` on the interpreter (or an unknown device
    count), else one slot per device for the first ``workers`` devices (default: all of them)."""
    env = dict(os.environ if env is None else env)
    if device_count is None or device_count < 1:
        n = workers or os.cpu_count() or 1
        return [DeviceSlot(label=device_type, index=None, capacity=max(1, n))]
    n = workers or device_count
    if n > device_count:
        log.info("%d workers asked for but %d %s device(s) visible: using %d, one candidate per device "
                    "(timings never share a device)", n, device_count, backend, device_count)
        n = device_count
    variable = VISIBLE_DEVICES.get(backend)
    current = [d.strip() for d in env.get(variable, "").split(",") if d.strip()] if variable else []
    slots = []
    for i in range(n):
        physical = current[i] if i < len(current) else str(i)
        pin = {variable: physical} if variable else {}
        slots.append(DeviceSlot(label=f"{device_type}:{physical}", index=i, capacity=1, env=pin))
    return slots


class _PinnedBackend:
    """A backend whose workers see one device (extra variables on top of its own) and that names that device."""

    def __init__(self, inner: Any, env: dict[str, str], index: int | None) -> None:
        self._inner = inner
        self._env = env
        self._index = index

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def worker_env(self) -> dict[str, str]:
        return {**self._inner.worker_env(), **self._env}

    def describe(self) -> str:
        if self._index is not None and hasattr(self._inner, "module"):
            try:
                return str(self._inner.module().get_device_name(self._index))
            except Exception:
                pass
        return str(self._inner.describe())


class _PinnedVerifier(Verifier):
    """A Verifier whose backends are pinned to one device (see _PinnedBackend)."""

    def __init__(self, settings: VerifySettings, *, pin: dict[str, str], index: int | None, **kwargs: Any) -> None:
        self._pin = pin
        self._pin_index = index
        self._pinned: dict[int, _PinnedBackend] = {}
        super().__init__(settings, **kwargs)

    def _backend(self, name: str) -> Any:
        inner = super()._backend(name)
        pinned = self._pinned.get(id(inner))
        if pinned is None:
            pinned = self._pinned.setdefault(id(inner), _PinnedBackend(inner, self._pin, self._pin_index))
        return pinned


@dataclass
class _Slot:
    number: int
    verifier: Any
    label: str
    capacity: int
    active: int = 0
    seen: Affinity = field(default_factory=Affinity)


def _device_count(backend: Any) -> int | None:
    """Devices a device backend sees (None on the interpreter or for a backend without a device module)."""
    if getattr(backend, "interpreter", False) or not hasattr(backend, "module"):
        return None
    try:
        return int(backend.module().device_count())
    except Exception:
        return None


class LocalExecutor(Executor):
    """Warm Verifiers on this machine: one pool of ``workers`` on the CPU, one Verifier per device elsewhere.

    ``verifiers`` replaces the Verifiers this would build (objects with ``evaluate``/``close``, e.g. test
    doubles); each takes ``getattr(v, "workers", 1)`` candidates at once. Thread safety: as Executor.
    """

    name = "local"

    def __init__(
        self,
        settings: VerifySettings | None = None,
        *,
        workers: int | None = None,
        workdir: str | os.PathLike[str] | None = None,
        verifiers: list[Any] | None = None,
    ) -> None:
        self.settings = settings or VerifySettings()
        self.settings.validate()
        if workers is not None and workers < 1:
            raise UserError(f"workers={workers}: pass a positive number of workers")
        self._cond = threading.Condition()
        self._closed = False
        self._slots: list[_Slot] = []
        if verifiers is not None:
            self._info = BackendInfo(self.settings.backend, "injected", False)
            for i, v in enumerate(verifiers):
                self._slots.append(_Slot(i, v, f"verifier:{i}", max(1, int(getattr(v, "workers", 1)))))
        else:
            self._build(workers, workdir)
        if not self._slots:
            raise UserError("the local executor needs at least one verifier")
        self.workers = sum(s.capacity for s in self._slots)

    def _build(self, workers: int | None, workdir: Any) -> None:
        from evokernel.backends import get_backend

        backend = get_backend(self.settings.backend)  # UserError when the device is absent
        plan = plan_devices(backend.name, workers, device_count=_device_count(backend),
                            device_type=backend.device_type, env=dict(os.environ))
        try:
            for i, slot in enumerate(plan):
                if slot.index is None:
                    verifier: Verifier = Verifier(self.settings, workers=slot.capacity, workdir=workdir)
                else:
                    verifier = _PinnedVerifier(self.settings, pin=slot.env, index=slot.index, workers=1,
                                               workdir=workdir)
                self._slots.append(_Slot(i, verifier, slot.label, slot.capacity))
        except BaseException:
            self.close()
            raise
        described = _PinnedBackend(backend, plan[0].env, plan[0].index).describe()
        if len(self._slots) > 1:
            described = f"{described} x{len(self._slots)} ({', '.join(s.label for s in self._slots)})"
        self._info = BackendInfo(backend.name, described, bool(backend.times_kernels))

    # -- dispatch ------------------------------------------------------------------------------
    def _acquire(self, key: str, avoid: set[int]) -> _Slot:
        with self._cond:
            while True:
                if self._closed:
                    raise UserError("this executor was closed; create a new one")
                free = [s for s in self._slots if s.active < s.capacity]
                if free:
                    preferred = [s for s in free if s.number not in avoid] or free
                    slot = next((s for s in preferred if key in s.seen), None) or min(
                        preferred, key=lambda s: (s.active / s.capacity, s.number))
                    slot.active += 1
                    return slot
                self._cond.wait()

    def _release(self, slot: _Slot, key: str | None) -> None:
        with self._cond:
            slot.active -= 1
            if key is not None:
                slot.seen.note(key)
            self._cond.notify_all()

    def evaluate(self, problem: Any, candidate_source: str, settings: VerifySettings | None = None) -> Verdict:
        """Verify one candidate on a free device (see Executor.evaluate)."""
        start = time.monotonic()
        s = settings or self.settings
        s.validate()
        _, key = ship_problem(problem)  # a bad problem is a UserError before any worker is taken
        failures: list[str] = []
        avoid: set[int] = set()
        for attempt in (1, 2):
            slot = self._acquire(key, avoid)
            done = False
            try:
                verdict = slot.verifier.evaluate(problem, candidate_source, s)
                done = True
            except PoolError as exc:
                if self._closed:  # closed under a running candidate (Ctrl-C): nothing to retry
                    raise
                failures.append(f"{slot.label}: {exc}")
                avoid.add(slot.number)
                log.warning("verifier pool on %s failed (attempt %d): %s", slot.label, attempt, exc)
                if attempt == 2:
                    raise
                continue
            finally:
                self._release(slot, key if done else None)
            verdict.worker = base_worker(self.name, device=slot.label, slot=slot.number, attempt=attempt,
                                         retried_after=failures or None)
            log.debug("%s on %s in %.2fs", verdict.status, slot.label, time.monotonic() - start)
            return verdict
        raise AssertionError("unreachable")  # pragma: no cover

    def backend_info(self) -> BackendInfo:
        """The backend of this machine's workers."""
        return self._info

    def close(self) -> None:
        """Close every Verifier this executor made (injected ones too)."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            slots = list(self._slots)
            self._cond.notify_all()
        for slot in slots:
            try:
                slot.verifier.close()
            except Exception:  # pragma: no cover - best effort
                log.debug("closing %s failed", slot.label, exc_info=True)
