"""Parent side of the sandbox: start workers, watch them (wall clock, memory), collect exit statuses.

Two pools share one interface (``launch(job_dir) -> WorkerHandle``):
- ``ZygotePool`` (CPU): a zygote process that has imported torch and triton forks one child per
  job, so a job starts in tens of milliseconds; a dead zygote is replaced on the next launch.
- ``SpawnPool`` (GPU/NPU): fresh interpreters (forking after CUDA is initialised is unsafe); one is
  kept started and ready ahead of demand.

Thread safety: ``launch`` may be called from any number of threads; each handle is watched by the
thread that calls ``supervise`` on it.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["WorkerHandle", "ZygotePool", "SpawnPool", "Outcome", "supervise", "PoolError"]

log = logging.getLogger(__name__)

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class PoolError(RuntimeError):
    """The worker pool could not start or lost its worker (not the candidate's fault)."""


def _worker_cmd(mode: str, backend: str) -> list[str]:
    return [sys.executable, "-m", "evokernel.verify.sandbox.worker", mode, "--backend", backend]


def _package_root() -> str:
    import evokernel

    return str(Path(evokernel.__file__).resolve().parent.parent)


def _with_pythonpath(env: dict[str, str]) -> dict[str, str]:
    env = dict(env)
    root = _package_root()
    parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if root not in parts:
        env["PYTHONPATH"] = os.pathsep.join([root, *parts])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


class WorkerHandle:
    """One running job's process: its pid (also its process group) and how it ended."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._done = threading.Event()
        self.status: int | None = None  # raw wait status (os.waitstatus_to_exitcode decodes it)
        self.lost = False  # the process that could report the status died first

    def finished(self, status: int | None, lost: bool = False) -> None:
        """Record the exit (called by the pool)."""
        self.status = status
        self.lost = lost
        self._done.set()

    def wait(self, timeout: float | None) -> bool:
        """True once the process has ended (or its status was lost)."""
        return self._done.wait(timeout)

    def poll(self) -> bool:
        """Non-blocking: has it ended?"""
        return self._done.is_set()

    def kill(self) -> None:
        """SIGKILL the job's whole process group (what is left of it once the job has ended).

        A process group id stays reserved while any member lives, so this never reaches an
        unrelated process.
        """
        try:
            os.killpg(self.pid, signal.SIGKILL)
            return
        except (ProcessLookupError, PermissionError):
            pass
        if not self._done.is_set():
            try:
                os.kill(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def exit_code(self) -> int | None:
        """Exit code, negative signal number when killed by a signal; None when unknown."""
        if self.status is None:
            return None
        return os.waitstatus_to_exitcode(self.status)


class ZygotePool:
    """Fork-server pool for the CPU backend."""

    def __init__(self, backend: str, env: dict[str, str], start_timeout: float = 120.0) -> None:
        self.backend = backend
        self.env = _with_pythonpath(env)
        self.start_timeout = start_timeout
        self._lock = threading.Lock()  # guards the process, requests and the handle tables
        self._proc: subprocess.Popen[bytes] | None = None
        self._ready = threading.Event()
        self._ids = itertools.count(1)
        self._pending: dict[int, dict[str, Any]] = {}
        self._handles: dict[int, WorkerHandle] = {}
        self._early_exits: dict[int, int] = {}
        self._generation = 0
        self.restarts = 0
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the zygote if it is not running (returns at once; launch waits until it is ready)."""
        with self._lock:
            self._start_locked()

    def _start_locked(self) -> None:
        if self._closed:
            raise PoolError("the verifier was closed")
        if self._proc is not None and self._proc.poll() is None:
            return
        if self._proc is not None:
            self.restarts += 1
            if self._proc.stdin is not None:
                try:
                    self._proc.stdin.close()
                except OSError:
                    pass
        self._ready = threading.Event()
        self._generation += 1
        self._proc = subprocess.Popen(
            _worker_cmd("zygote", self.backend),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=self.env,
            start_new_session=True,
            close_fds=True,
            cwd="/",  # nothing in the caller's directory shadows a module the worker imports
        )
        thread = threading.Thread(
            target=self._reader, args=(self._proc, self._ready, self._generation), daemon=True,
            name="evokernel-zygote-reader",
        )
        thread.start()

    def _reader(self, proc: subprocess.Popen[bytes], ready: threading.Event, generation: int) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            try:
                event = json.loads(raw)
            except ValueError:
                continue
            kind = event.get("event")
            with self._lock:
                if kind == "ready":
                    ready.set()
                elif kind == "forked":
                    slot = self._pending.get(event["id"])
                    if slot is not None:
                        handle = WorkerHandle(int(event["pid"]))
                        early = self._early_exits.pop(handle.pid, None)
                        if early is not None:
                            handle.finished(early)
                        else:
                            self._handles[handle.pid] = handle
                        slot["handle"] = handle
                        slot["event"].set()
                elif kind == "exit":
                    pid = int(event["pid"])
                    handle = self._handles.pop(pid, None)
                    if handle is not None:
                        handle.finished(int(event["status"]))
                    else:
                        self._early_exits[pid] = int(event["status"])
        proc.stdout.close()
        # EOF: the zygote is gone; every job it was watching has lost its status.
        with self._lock:
            if generation == self._generation:
                for handle in self._handles.values():
                    handle.finished(None, lost=True)
                self._handles.clear()
                for slot in self._pending.values():
                    slot["event"].set()
            ready.set()
        proc.wait()

    def close(self) -> None:
        """Stop the zygote (running jobs are killed)."""
        with self._lock:
            self._closed = True
            proc, handles = self._proc, list(self._handles.values())
        for handle in handles:
            handle.kill()
        if proc is not None and proc.poll() is None:
            try:
                assert proc.stdin is not None
                proc.stdin.write(b'{"op": "exit"}\n')
                proc.stdin.flush()
                proc.wait(timeout=5)
            except Exception:
                proc.kill()
                proc.wait()
        if proc is not None and proc.stdin is not None:
            try:
                proc.stdin.close()
            except OSError:
                pass

    # -- jobs ------------------------------------------------------------------------------------
    def launch(self, job_dir: Path) -> WorkerHandle:
        """Fork a child for the job; PoolError when the zygote cannot be (re)started."""
        for attempt in range(2):
            with self._lock:
                self._start_locked()
                ready, proc = self._ready, self._proc
            if not ready.wait(self.start_timeout):
                raise PoolError(f"the {self.backend} worker did not start within {self.start_timeout:.0f} s")
            assert proc is not None
            if proc.poll() is not None:
                if attempt == 0:
                    continue
                raise PoolError(f"the {self.backend} worker exits at start (code {proc.returncode}); "
                                f"run `python -m evokernel.verify.sandbox.worker zygote` to see why")
            request_id = next(self._ids)
            slot: dict[str, Any] = {"event": threading.Event(), "handle": None}
            with self._lock:
                self._pending[request_id] = slot
                try:
                    assert proc.stdin is not None
                    proc.stdin.write(
                        (json.dumps({"op": "fork", "id": request_id, "job_dir": str(job_dir)}) + "\n").encode()
                    )
                    proc.stdin.flush()
                except (BrokenPipeError, OSError):
                    self._pending.pop(request_id, None)
                    continue
            slot["event"].wait(self.start_timeout)
            with self._lock:
                self._pending.pop(request_id, None)
            if slot["handle"] is not None:
                return slot["handle"]
        raise PoolError(f"the {self.backend} worker died while starting a job")


class _SpawnHandle(WorkerHandle):
    def __init__(self, proc: subprocess.Popen[bytes], on_exit: Any = None) -> None:
        super().__init__(proc.pid)
        self.proc = proc
        self._on_exit = on_exit
        threading.Thread(target=self._watch, daemon=True, name="evokernel-worker-watch").start()

    def _watch(self) -> None:
        _, status = os.waitpid(self.proc.pid, 0)
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        self.finished(status)
        if self._on_exit is not None:
            self._on_exit(self)


class SpawnPool:
    """Fresh worker interpreters (device backends); ``prestart`` are kept ready."""

    def __init__(self, backend: str, env: dict[str, str], prestart: int = 1, start_timeout: float = 300.0) -> None:
        self.backend = backend
        self.env = _with_pythonpath(env)
        self.prestart = max(0, prestart)
        self.start_timeout = start_timeout
        self._lock = threading.Lock()
        self._ready: list[subprocess.Popen[bytes]] = []
        self._running: set[_SpawnHandle] = set()  # jobs handed to a worker and not yet ended
        self._closed = False
        self.restarts = 0

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            _worker_cmd("oneshot", self.backend),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=self.env,
            start_new_session=True,
            close_fds=True,
            cwd="/",  # nothing in the caller's directory shadows a module the worker imports
        )

    def start(self) -> None:
        """Start the ready workers."""
        with self._lock:
            while len(self._ready) < self.prestart and not self._closed:
                self._ready.append(self._spawn())

    def launch(self, job_dir: Path) -> WorkerHandle:
        """Hand the job to a ready worker (starting one if none is ready)."""
        with self._lock:
            if self._closed:
                raise PoolError("the verifier was closed")
            proc = self._ready.pop(0) if self._ready else self._spawn()
        threading.Thread(target=self.start, daemon=True).start()  # refill in the background
        assert proc.stdout is not None and proc.stdin is not None
        deadline = time.monotonic() + self.start_timeout
        line = b""
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line or b'"ready"' in line:
                break
        proc.stdout.close()
        if b'"ready"' not in line:
            proc.kill()
            proc.wait()
            raise PoolError(f"the {self.backend} worker did not start; run `python -m evokernel.verify.sandbox.worker "
                            f"oneshot --backend {self.backend}` to see why")
        try:
            proc.stdin.write(f"{job_dir}\n".encode())
            proc.stdin.flush()
            proc.stdin.close()
        except OSError as exc:  # the worker died after saying it was ready
            proc.kill()
            proc.wait()
            try:
                proc.stdin.close()  # flushing fails again, yet the pipe is closed
            except OSError:
                pass
            raise PoolError(f"the {self.backend} worker died before taking the job ({exc})") from exc
        handle = _SpawnHandle(proc, on_exit=self._ended)
        with self._lock:
            closed = self._closed
            if not closed and handle.exit_code() is None:
                self._running.add(handle)
        if closed:  # closed while this worker was starting: the job must not outlive the pool
            handle.kill()
        return handle

    def _ended(self, handle: _SpawnHandle) -> None:
        with self._lock:
            self._running.discard(handle)

    def close(self) -> None:
        """Stop the ready workers and kill the running jobs."""
        with self._lock:
            self._closed = True
            ready, self._ready = self._ready, []
            running, self._running = list(self._running), set()
        for handle in running:
            handle.kill()
        for proc in ready:
            proc.kill()
            proc.wait()
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    pipe.close()


# ---------------------------------------------------------------------------------------------
@dataclass
class Outcome:
    """How a supervised job ended."""

    exit_code: int | None  # negative: killed by that signal
    timed_out: bool = False
    memory_exceeded: bool = False
    lost: bool = False
    peak_rss_bytes: int = 0
    wall_s: float = 0.0


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


def _group_rss(pgid: int) -> int:
    total = 0
    try:
        entries = os.listdir("/proc")
    except OSError:
        return 0
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
            fields = stat[stat.rindex(b")") + 2 :].split()
            if int(fields[2]) == pgid:  # field 5 of stat: process group
                total += _rss(int(entry))
        except (OSError, ValueError, IndexError):
            continue
    return total


def supervise(
    handle: WorkerHandle,
    timeout_s: float,
    memory_limit_bytes: int | None,
    poll_s: float = 0.02,
    group_every: int = 25,
    on_tick: Any = None,
) -> Outcome:
    """Wait for the job; kill its process group on timeout or when its resident memory grows past the limit.

    The limit applies to growth over the worker's resident size when the job started (a forked child
    shares the zygote's pages; a spawned device worker already holds torch and the driver).
    """
    start = time.monotonic()
    deadline = start + timeout_s
    outcome = Outcome(None)
    tick = 0
    baseline = _rss(handle.pid)
    while not handle.wait(poll_s):
        now = time.monotonic()
        if on_tick is not None:
            try:
                on_tick()
            except Exception:  # the parent's own step failed: never leave the worker running
                handle.kill()
                handle.wait(10.0)
                raise
        if memory_limit_bytes:
            tick += 1
            rss = (_group_rss(handle.pid) if tick % group_every == 0 else _rss(handle.pid)) - baseline
            outcome.peak_rss_bytes = max(outcome.peak_rss_bytes, rss)
            if rss > memory_limit_bytes:
                outcome.memory_exceeded = True
                handle.kill()
                handle.wait(10.0)
                break
        if now > deadline:
            outcome.timed_out = True
            handle.kill()
            handle.wait(10.0)
            break
    handle.kill()  # anything the job left behind in its group
    outcome.exit_code = handle.exit_code()
    outcome.lost = handle.lost
    outcome.wall_s = time.monotonic() - start
    return outcome
