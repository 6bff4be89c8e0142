"""Worker processes: ``python -m evokernel.verify.sandbox.worker zygote|oneshot --backend NAME``.

- ``zygote`` (CPU): imports torch and triton once, never touches a GPU, then forks one child per job
  on request. Protocol on stdin/stdout, one JSON object per line:
  parent -> ``{"op": "fork", "id": N, "job_dir": PATH}`` | ``{"op": "exit"}``;
  zygote -> ``{"event": "ready"}``, ``{"event": "forked", "id": N, "pid": P}``,
  ``{"event": "exit", "pid": P, "status": WAITSTATUS}``.
- ``oneshot`` (GPU/NPU): imports and prepares the device, prints ``{"event": "ready"}``, reads one
  job directory from stdin, runs it and exits.

A job directory holds ``job.json``; the worker writes ``result.json`` (and output files) there.
Every job runs in a process of its own, in its own process group, confined before any candidate
code is imported. The environment was scrubbed by the parent before this process started.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import select
import signal
import sys
import traceback
from pathlib import Path
from typing import Any

__all__ = ["run_job", "main"]


def _emit(obj: dict[str, Any]) -> None:
    data = (json.dumps(obj) + "\n").encode()
    while data:
        n = os.write(1, data)
        data = data[n:]


def _backend(name: str) -> Any:
    from evokernel.backends import _make

    return _make(name)


def _redirect_stdio(job_dir: Path) -> None:
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    for fd, name in ((1, "stdout.log"), (2, "stderr.log")):
        out = os.open(job_dir / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(out, fd)
        os.close(out)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115


def run_job(job_dir: Path, backend: Any) -> int:
    """Run one job in this (already separate) process; always writes result.json unless killed."""
    job_dir = Path(job_dir)
    result: dict[str, Any]
    try:
        _redirect_stdio(job_dir)
        faulthandler.enable(file=sys.stderr, all_threads=True)
        job = json.loads((job_dir / "job.json").read_text())
        sys.dont_write_bytecode = True
        scratch = job_dir / "scratch"
        os.chdir(scratch)
        os.environ["HOME"] = str(scratch)
        os.environ["TMPDIR"] = str(scratch)
        import tempfile

        tempfile.tempdir = str(scratch)
        import torch

        torch.set_num_threads(int(job.get("threads", 1)))
        if job["kind"] == "candidate":
            os.environ["TRITON_CACHE_DIR"] = str(scratch / "triton-cache")
            from evokernel.verify.harness import run_candidate_job
            from evokernel.verify.sandbox.confine import confine

            # read before confinement: the confined candidate cannot read the reference's directory
            preloaded = {key: Path(job[f"{key}_file"]).read_bytes() for key in ("inputs", "state")}
            confinement = confine(
                str(job_dir),
                address_space_bytes=job.get("address_space_bytes"),
                write_dirs=job.get("write_dirs", []),
                write_files=job.get("write_files", ["/dev/null"]),
                block_processes=job.get("block_processes", True),
                block_threads=job.get("block_threads", False),
                block_unix_sockets=job.get("block_unix_sockets", True),
                hide_processes=job.get("hide_processes", True),
                hide_dirs=job.get("hide_dirs", []),
                sandbox=job.get("sandbox", True),
            )
            if job.get("device_memory_gb"):
                backend.set_device_memory_limit(float(job["device_memory_gb"]))
            result = run_candidate_job(job, job_dir, backend, preloaded)
            del preloaded
            result["confinement"] = confinement
        elif job["kind"] == "reference":
            from evokernel.verify.reference import run_reference_job

            result = run_reference_job(job, job_dir, backend)
        elif job["kind"] == "baseline":
            from evokernel.verify.reference import run_baseline_job

            result = run_baseline_job(job, job_dir, backend)
        else:
            result = {"status": "internal_error", "message": f"unknown job kind {job['kind']!r}"}
    except BaseException as exc:  # noqa: BLE001 - report whatever went wrong to the parent
        result = {
            "status": "internal_error",
            "message": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc()[-4000:],
        }
    tmp = job_dir / "result.json.tmp"
    try:  # whatever a candidate left at the name (a link, a FIFO) must not redirect or block this write
        tmp.unlink()
    except OSError:
        pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(json.dumps(result, default=str))
    os.replace(tmp, job_dir / "result.json")
    return 0


def _die_with_parent(parent: int) -> None:
    """SIGKILL this process when its parent (the single-threaded zygote) exits."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:  # pragma: no cover - non-Linux
        pass
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)


def _watch_parent() -> None:
    """Spawned workers: exit when the process that started them is gone (threads make PDEATHSIG unsafe)."""
    import threading
    import time

    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, daemon=True, name="evokernel-parent-watch").start()


def _child(job_dir: str, backend: Any, zygote: int) -> None:
    """In a freshly forked child of the zygote: detach, reset signals, run, exit without cleanup."""
    code = 70
    try:
        _die_with_parent(zygote)
        os.setpgid(0, 0)
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        code = run_job(Path(job_dir), backend)
    except BaseException:  # noqa: BLE001
        code = 71
    finally:
        os._exit(code)


def _warm_up(backend: Any) -> None:
    import numpy  # noqa: F401
    import torch
    import triton  # noqa: F401
    import triton.language  # noqa: F401

    import evokernel.verify.cases  # noqa: F401
    import evokernel.verify.harness  # noqa: F401
    import evokernel.verify.reference  # noqa: F401
    import evokernel.verify.sandbox.confine  # noqa: F401
    from evokernel.programs import load_program  # noqa: F401

    torch.set_num_threads(1)
    backend.prepare_worker()
    from evokernel.verify.sandbox import warmup

    warmup.prime_harness()  # one-time imports (torch.load, deterministic mode, dispatch modes) happen here
    if backend.interpreter:
        warmup.run()
    import gc

    gc.collect()
    gc.freeze()  # what every job shares: never traversed again (cheap collections, fewer copied pages)


def serve_zygote(backend_name: str) -> int:
    """The fork server loop (CPU backend)."""
    backend = _backend(backend_name)
    _warm_up(backend)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    os.set_blocking(wake_r, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    zygote_pid = os.getpid()
    _emit({"event": "ready", "pid": zygote_pid})
    buffer = b""
    running = True
    while running:
        try:
            readable, _, _ = select.select([0, wake_r], [], [], 1.0)
        except InterruptedError:
            readable = []
        if wake_r in readable:
            try:
                while os.read(wake_r, 4096):
                    pass
            except BlockingIOError:
                pass
        if 0 in readable:
            chunk = os.read(0, 65536)
            if not chunk:
                break  # parent closed the pipe: it is gone
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if not line.strip():
                    continue
                request = json.loads(line)
                if request.get("op") == "exit":
                    running = False
                    break
                if request.get("op") == "fork":
                    pid = os.fork()
                    if pid == 0:
                        os.close(wake_r)
                        os.close(wake_w)
                        _child(request["job_dir"], backend, zygote_pid)
                    try:
                        os.setpgid(pid, pid)
                    except OSError:
                        pass
                    _emit({"event": "forked", "id": request["id"], "pid": pid})
        while True:  # reap every finished child
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            _emit({"event": "exit", "pid": pid, "status": status})
    return 0


def serve_oneshot(backend_name: str) -> int:
    """Prepare, announce readiness, run exactly one job, exit."""
    _watch_parent()
    backend = _backend(backend_name)
    _warm_up(backend)
    _emit({"event": "ready", "pid": os.getpid()})
    line = sys.stdin.readline().strip()
    if not line:
        return 0
    return run_job(Path(line), backend)


def main(argv: list[str] | None = None) -> int:
    """Entry point of a worker process."""
    parser = argparse.ArgumentParser(prog="evokernel-worker")
    parser.add_argument("mode", choices=("zygote", "oneshot"))
    parser.add_argument("--backend", default="cpu")
    args = parser.parse_args(argv)
    if args.mode == "zygote":
        return serve_zygote(args.backend)
    code = serve_oneshot(args.backend)
    sys.stdout.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
