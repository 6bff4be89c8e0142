"""The Ray executor: candidates verified by actors on a Ray cluster, each actor pinned to one device.

Each actor holds a warm :class:`~evokernel.verify.Verifier` with one worker, on one GPU
(``num_gpus=1``), one NPU (``resources={"NPU": 1}``) or one CPU (the interpreter); Ray narrows the
actor's visible devices, so its reference and candidate are timed on the same device. The driver
keeps the memory; actors get the problem (its text, resolved on the driver), the candidate and the
settings, and return the verdict as JSON.

Worker death: when an actor (or its node) dies mid-candidate, the actor is killed for good and a
fresh one takes its place; the candidate is retried once on another worker (preferably on another
node), and if that worker dies too the verdict is ``crashed`` with a message saying so. ``evaluate``
never hangs on a dead actor and never raises for a death. A candidate that crashes its own sandboxed
child comes back as an ordinary ``crashed`` verdict and is not retried.

``ray`` is imported when the executor is created, never at module import.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evokernel.errors import UserError
from evokernel.verify.executors.base import (
    HOST,
    Affinity,
    BackendInfo,
    Executor,
    ShippedProblem,
    ship_problem,
    trim_line,
    worker_died_verdict,
)
from evokernel.verify.sandbox.pool import PoolError
from evokernel.verify.settings import VerifySettings
from evokernel.verify.verdict import Verdict

__all__ = ["RayExecutor", "VerifierActor", "worker_resources"]

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'evokernel[ray]'"
_CLOSE_WAIT_S = 5.0


def import_ray() -> Any:
    """The ray module, or a UserError that says how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise UserError(f"the ray executor needs Ray, which is not installed ({exc}); run `{INSTALL_HINT}` "
                        "or use --executor local") from None
    return ray


def check_address(address: str, timeout_s: float = 5.0) -> None:
    """UserError unless ``address`` is "auto" or a HOST:PORT (optionally ray://) that accepts connections."""
    if address == "auto":
        return
    target = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = target.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise UserError(f"--ray-address {address!r}: expected auto or HOST:PORT (e.g. 10.0.0.5:6379)")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise UserError(f"--ray-address {address}: no Ray cluster answers there ({exc.strerror or exc}); start one "
                        "with `ray start --head` on that machine, or pass auto or its HOST:PORT") from None


def worker_resources(backend: str, cluster: dict[str, float]) -> tuple[str, dict[str, Any]]:
    """(resource kind, actor options) of one worker: a GPU, an NPU or a CPU, from the backend setting
    ("auto" asks the cluster: GPUs, then NPUs, else the interpreter on CPUs)."""
    kind = "CPU"
    if backend in ("cuda", "rocm"):
        kind = "GPU"
    elif backend == "npu":
        kind = "NPU"
    elif backend == "auto":
        kind = "GPU" if cluster.get("GPU", 0) >= 1 else "NPU" if cluster.get("NPU", 0) >= 1 else "CPU"
    elif ":" in backend:  # an out-of-tree backend: its class says which device it drives
        import importlib

        module, _, name = backend.partition(":")
        try:
            cls = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as exc:
            raise UserError(f"backend {backend!r}: cannot import {name} from {module} ({exc})") from exc
        device = getattr(cls, "device_type", "cpu")
        if not getattr(cls, "interpreter", False):
            kind = {"cuda": "GPU", "npu": "NPU"}.get(device, "CPU")
    if kind == "GPU":
        return kind, {"num_cpus": 1, "num_gpus": 1}
    if kind == "NPU":
        return kind, {"num_cpus": 1, "resources": {"NPU": 1}}
    return kind, {"num_cpus": 1}


def _actor_workdir() -> Path:
    """This actor's folder for its Verifier's files; folders of actors that died on this node (killed, so
    never cleaned) are deleted first."""
    base = Path(tempfile.gettempdir()) / "evokernel-ray"
    base.mkdir(mode=0o700, exist_ok=True)
    for folder in base.glob("pid-*"):
        try:
            os.kill(int(folder.name[4:]), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except (ValueError, PermissionError):
            continue
    mine = base / f"pid-{os.getpid()}"
    mine.mkdir(mode=0o700, exist_ok=True)
    return mine


class VerifierActor:
    """Runs inside a Ray actor: one warm Verifier with one worker on the actor's device."""

    def __init__(self, settings: VerifySettings, slot: int) -> None:
        from evokernel.backends import get_backend
        from evokernel.verify.verifier import Verifier

        backend = get_backend(settings.backend)  # UserError here when the node lacks the device
        self._verifier = Verifier(settings, workers=1, workdir=_actor_workdir())
        import ray

        context = ray.get_runtime_context()
        try:
            accelerators = {k: list(v) for k, v in context.get_accelerator_ids().items() if v}
        except Exception:  # older Ray
            accelerators = {}
        self._info = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "actor_id": context.get_actor_id(),
            "node_id": context.get_node_id(),
            "slot": slot,
            "device": backend.device(),
            "accelerators": accelerators or None,
            "backend": backend.name,
            "description": backend.describe(),
            "times_kernels": bool(backend.times_kernels),
        }

    def info(self) -> dict[str, Any]:
        """Where this actor runs and what it verifies on."""
        return dict(self._info)

    def evaluate(self, problem: ShippedProblem, candidate_source: str, settings: VerifySettings) -> dict[str, Any]:
        """The verdict as JSON, or the error the driver should raise (never an exception through Ray)."""
        try:
            verdict = self._verifier.evaluate(problem, candidate_source, settings)
            return {"kind": "verdict", "verdict": verdict.to_dict()}
        except UserError as exc:
            return {"kind": "user_error", "message": str(exc)}
        except PoolError as exc:
            return {"kind": "pool_error", "message": str(exc)}
        except Exception as exc:
            return {"kind": "error", "message": f"{type(exc).__name__}: {exc}",
                    "traceback": traceback.format_exc()[-4000:]}

    def close(self) -> bool:
        """Stop the Verifier's workers and delete its working directory."""
        self._verifier.close()
        shutil.rmtree(self._verifier.workdir.parent, ignore_errors=True)
        return True


@dataclass
class _Slot:
    number: int
    actor: Any = None
    state: str = "starting"  # starting | ready | broken
    ready_ref: Any = None
    info: dict[str, Any] = field(default_factory=dict)
    busy: bool = False
    error: str = ""
    replaced: int = 0
    seen: Affinity = field(default_factory=Affinity)


def _death_errors(ray: Any) -> tuple[type[BaseException], ...]:
    names = ("RayActorError", "ActorDiedError", "ActorUnavailableError", "WorkerCrashedError", "NodeDiedError",
             "LocalRayletDiedError", "ObjectLostError", "OwnerDiedError")
    return tuple(getattr(ray.exceptions, n) for n in names if hasattr(ray.exceptions, n))


class RayExecutor(Executor):
    """Candidates verified by Ray actors, one per device (see the module docstring).

    ``address``: "auto" (the cluster this machine belongs to), HOST:PORT, or None for a local Ray
    instance; when Ray is already initialised in this process it is used as it is (and not shut down
    by ``close``). ``workers`` defaults to the cluster's devices of the needed kind. ``on_dispatch``
    (monitoring, fault-injection tests) is called with the worker record and the attempt number right
    after a candidate is handed to an actor. Thread safety: as Executor.
    """

    name = "ray"

    def __init__(
        self,
        settings: VerifySettings | None = None,
        *,
        workers: int | None = None,
        address: str | None = None,
        start_timeout_s: float = 300.0,
        call_timeout_s: float | None = None,
        init_kwargs: dict[str, Any] | None = None,
        on_dispatch: Callable[[dict[str, Any], int], None] | None = None,
    ) -> None:
        self.settings = settings or VerifySettings()
        self.settings.validate()
        if workers is not None and workers < 1:
            raise UserError(f"workers={workers}: pass a positive number of workers")
        ray = self._ray = import_ray()
        self._deaths = _death_errors(ray)
        self.start_timeout_s = float(start_timeout_s)
        self.call_timeout_s = call_timeout_s
        self.on_dispatch = on_dispatch
        self._cond = threading.Condition()
        self._closed = False
        self._owns_ray = False
        if address is not None:
            check_address(address)
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, **(init_kwargs or {})}
            if address is not None:
                kwargs["address"] = address
            try:
                ray.init(**kwargs)
            except Exception as exc:
                where = f"the Ray cluster at {address}" if address else "a local Ray instance"
                raise UserError(f"cannot start or reach {where}: {trim_line(str(exc), 300)}") from None
            self._owns_ray = True
        elif address is not None:
            log.info("Ray is already initialised in this process; --ray-address %s is not used", address)
        self._slots: list[_Slot] = []
        try:
            cluster = {k: float(v) for k, v in ray.cluster_resources().items()}
            self.resource, self._options = worker_resources(self.settings.backend, cluster)
            available = int(cluster.get(self.resource, 0))
            n = workers or max(1, available)
            if n > available:
                log.warning("%d Ray workers asked for but the cluster has %d %s; the others wait for resources",
                            n, available, self.resource)
            self.workers = n
            self._actor_class = ray.remote(VerifierActor)
            self._slots = [_Slot(i) for i in range(n)]
            for slot in self._slots:
                self._start(slot)
            self._info = self._wait_first_ready()
        except BaseException:
            self.close()
            raise

    # -- actors --------------------------------------------------------------------------------
    def _start(self, slot: _Slot) -> None:
        """Create the slot's actor and ask for its info (the answer marks it ready)."""
        options = {**self._options, "max_restarts": 0, "max_task_retries": 0}
        slot.actor = self._actor_class.options(**options).remote(self.settings, slot.number)
        slot.ready_ref = slot.actor.info.remote()
        slot.state, slot.busy, slot.info = "starting", False, {}
        slot.seen.clear()

    def _promote_locked(self, timeout: float = 0.0) -> None:
        """Mark starting actors that have answered as ready (or broken when their constructor failed)."""
        starting = [s for s in self._slots if s.state == "starting"]
        if not starting:
            return
        refs = [s.ready_ref for s in starting]
        done, _ = self._ray.wait(refs, num_returns=len(refs), timeout=timeout)
        done_ids = {id(r) for r in done}
        for slot in starting:
            if id(slot.ready_ref) not in done_ids:
                continue
            try:
                slot.info = self._ray.get(slot.ready_ref)
                slot.state = "ready"
            except Exception as exc:
                slot.state, slot.error = "broken", _cause(exc)
                log.warning("Ray worker %d could not start: %s", slot.number, slot.error)
        self._cond.notify_all()

    def _wait_first_ready(self) -> BackendInfo:
        deadline = time.monotonic() + self.start_timeout_s
        with self._cond:
            while True:
                self._promote_locked(timeout=0.2)
                ready = [s for s in self._slots if s.state == "ready"]
                if ready:
                    info = ready[0].info
                    return BackendInfo(info["backend"], info["description"], bool(info["times_kernels"]))
                if all(s.state == "broken" for s in self._slots):
                    raise UserError(f"no Ray worker could start: {self._slots[0].error}; every node needs evokernel "
                                    "installed (same version) and the device the backend setting names")
                if time.monotonic() > deadline:
                    raise UserError(f"no Ray worker started within {self.start_timeout_s:g} s: the cluster has no "
                                    f"free {self.resource} for a worker ({self._options}); free one or add nodes")

    def _replace(self, slot: _Slot, reason: str) -> None:
        """Kill the slot's actor for good and start a fresh one in its place."""
        with self._cond:
            old = slot.actor
            slot.replaced += 1
            if not self._closed:
                self._start(slot)
            else:
                slot.state = "broken"
            self._cond.notify_all()
        log.warning("Ray worker %d replaced: %s", slot.number, reason)
        try:
            self._ray.kill(old, no_restart=True)
        except Exception:
            pass

    def _acquire(self, key: str, avoid_nodes: set[str]) -> tuple[_Slot, Any, dict[str, Any]]:
        """A free ready worker (one that holds the problem's reference first, then one on another node than
        ``avoid_nodes``); waits while all are busy; PoolError when none is alive for start_timeout_s."""
        deadline: float | None = None
        with self._cond:
            while True:
                if self._closed:
                    raise PoolError("the executor was closed")
                self._promote_locked()
                free = [s for s in self._slots if s.state == "ready" and not s.busy]
                if free:
                    elsewhere = [s for s in free if s.info.get("node_id") not in avoid_nodes] or free
                    slot = next((s for s in elsewhere if key in s.seen), elsewhere[0])
                    slot.busy = True
                    return slot, slot.actor, dict(slot.info)
                alive = any(s.state == "ready" for s in self._slots)
                starting = any(s.state == "starting" for s in self._slots)
                if not alive:
                    if not starting:
                        errors = "; ".join(sorted({s.error for s in self._slots if s.error})) or "all were lost"
                        raise PoolError(f"no Ray worker is left: {errors}")
                    deadline = deadline or time.monotonic() + self.start_timeout_s
                    if time.monotonic() > deadline:
                        raise PoolError(f"no Ray worker became ready within {self.start_timeout_s:g} s")
                else:
                    deadline = None
                self._cond.wait(0.1 if starting else 1.0)

    def _release(self, slot: _Slot, actor: Any, key: str | None) -> None:
        with self._cond:
            if slot.actor is actor:  # not replaced meanwhile
                slot.busy = False
                if key is not None:
                    slot.seen.note(key)
            self._cond.notify_all()

    def _call_timeout(self, s: VerifySettings) -> float:
        """Seconds before an actor that has not answered counts as lost: every job a candidate may need, twice."""
        if self.call_timeout_s is not None:
            return float(self.call_timeout_s)
        t = float(s.timeout_s)
        return 600.0 + 2.0 * (max(300.0, 2 * t) + t + max(600.0, 4 * t))

    # -- evaluation ----------------------------------------------------------------------------
    def evaluate(self, problem: Any, candidate_source: str, settings: VerifySettings | None = None) -> Verdict:
        """Verify one candidate on a free actor (see Executor.evaluate)."""
        start = time.monotonic()
        s = settings or self.settings
        s.validate()
        shipped, key = ship_problem(problem)
        deaths: list[str] = []
        avoid: set[str] = set()
        last: dict[str, Any] = {}
        for attempt in (1, 2):
            try:
                slot, actor, info = self._acquire(key, avoid)
            except PoolError:
                if deaths:
                    break
                raise
            last = info
            try:
                ref = actor.evaluate.remote(shipped, candidate_source, s)
                if self.on_dispatch is not None:
                    self.on_dispatch(self._worker(info, attempt, deaths), attempt)
                reply = self._ray.get(ref, timeout=self._call_timeout(s))
            except self._deaths as exc:
                deaths.append(f"{_where(info)}: {_cause(exc, 160)}")
                avoid.add(str(info.get("node_id")))
                self._replace(slot, deaths[-1])
                continue
            except self._ray.exceptions.GetTimeoutError:
                deaths.append(f"{_where(info)}: no answer within {self._call_timeout(s):g} s")
                self._replace(slot, deaths[-1])
                continue
            except BaseException:
                self._release(slot, actor, None)
                raise
            kind = reply.get("kind")
            self._release(slot, actor, key if kind == "verdict" else None)
            if kind == "verdict":
                verdict = Verdict.from_dict(reply["verdict"])
                verdict.worker = self._worker(info, attempt, deaths)
                return verdict
            if kind == "user_error":
                raise UserError(reply["message"])
            if kind == "pool_error":  # the actor's own worker pool failed: like a death, but raised the second time
                deaths.append(f"{_where(info)}: {reply['message']}")
                self._replace(slot, deaths[-1])
                if attempt == 2:
                    raise PoolError(f"the verifier pools of two Ray workers failed: {'; '.join(deaths)}")
                continue
            raise RuntimeError(f"the Ray worker on {_where(info)} failed: {reply.get('message')}\n"
                               f"{reply.get('traceback', '')}")
        worker = self._worker(last, 2, deaths)
        return worker_died_verdict(shipped.id, self._info, deaths, worker, time.monotonic() - start)

    def _worker(self, info: dict[str, Any], attempt: int, deaths: list[str]) -> dict[str, Any]:
        record: dict[str, Any] = {
            "executor": self.name,
            "host": info.get("host"),
            "pid": info.get("pid"),
            "actor_id": info.get("actor_id"),
            "node_id": info.get("node_id"),
            "device": info.get("device"),
            "accelerators": info.get("accelerators"),
            "slot": info.get("slot"),
            "attempt": attempt,
            "driver": HOST,
        }
        if deaths:
            record["retried_after"] = list(deaths)
        return {k: v for k, v in record.items() if v is not None}

    # -- introspection and lifecycle ---------------------------------------------------------------
    def backend_info(self) -> BackendInfo:
        """The backend of the first worker that started (all workers share the backend setting)."""
        return self._info

    def worker_infos(self) -> list[dict[str, Any]]:
        """Where each ready worker runs (host, pid, actor and node ids, device), with its busy flag."""
        with self._cond:
            self._promote_locked()
            return [{**s.info, "busy": s.busy} for s in self._slots if s.state == "ready"]

    def actor(self, actor_id: str) -> Any:
        """The handle of a live worker by actor id (for tests and operators; None when unknown)."""
        with self._cond:
            return next((s.actor for s in self._slots if s.info.get("actor_id") == actor_id), None)

    def close(self) -> None:
        """Stop every actor (their Verifiers clean up first, briefly), and Ray itself if this executor started it."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            actors = [s.actor for s in self._slots if s.actor is not None and s.state != "broken"]
            self._cond.notify_all()
        ray = self._ray
        try:
            refs = [a.close.remote() for a in actors]
            if refs:
                ray.wait(refs, num_returns=len(refs), timeout=_CLOSE_WAIT_S)
        except Exception:
            pass
        for a in actors:
            try:
                ray.kill(a, no_restart=True)
            except Exception:
                pass
        if self._owns_ray:
            ray.shutdown()


def _where(info: dict[str, Any]) -> str:
    return f"worker {info.get('slot', '?')} (pid {info.get('pid', '?')} on {info.get('host', '?')})"


_ERROR_LINE = re.compile(r"^\s*[A-Za-z_][\w.]*(Error|Exception): \S")


def _cause(exc: BaseException, limit: int = 300) -> str:
    """One line for a Ray error (their messages run to many lines): the error a traceback inside it ends
    with (e.g. a worker's UserError), else its first line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    inner = [line for line in lines if _ERROR_LINE.match(line)]
    if inner:
        return trim_line(inner[-1], limit)
    return trim_line(f"{type(exc).__name__}: {lines[0] if lines else ''}", limit)
