"""Confine the current process before candidate code runs (Linux; every layer is best effort).

Layers, each applied where the kernel allows it and reported by name:
- rlimits: no core dumps, bounded file size, and (CPU backend) an address-space cap a little above
  the memory limit, so a huge allocation fails fast instead of paging;
- Landlock: writes only below the job's directory (plus /dev/null, and /dev on devices); no reads
  of the hidden directories (the verifier's working directory: the reference's inputs and every
  other job's files) except the job's own; on the CPU backend reads only of the system and the
  Python installation (/usr, /lib*, /bin, /etc, /sys, /dev/null and the random devices, the
  interpreter's prefixes, site-packages and the directories of loaded packages) and of the
  process's own /proc entry, so other processes' environments and memory maps and the user's
  files (keys, credentials) stay out of reach; no TCP bind/connect; no signals to processes
  outside the sandbox (ABI >= 6);
- seccomp: no internet/packet sockets, no ptrace or process_vm_* (reading other processes'
  memory), and on the CPU backend no new processes, no exec and no new threads (nothing can
  run beside the harness after it has written its record).
The parent still enforces the wall clock and the memory limit from outside.
"""

from __future__ import annotations

import ctypes
import os
import platform
import resource
import struct
import sys
from collections.abc import Sequence

__all__ = ["confine", "landlock_abi"]

_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2

# syscall numbers
_SYS = {
    "x86_64": {"landlock_create_ruleset": 444, "landlock_add_rule": 445, "landlock_restrict_self": 446,
               "socket": 41, "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "fork": 57,
               "vfork": 58, "execve": 59, "execveat": 322, "clone": 56, "clone3": 435},
    "aarch64": {"landlock_create_ruleset": 444, "landlock_add_rule": 445, "landlock_restrict_self": 446,
                "socket": 198, "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271,
                "execve": 221, "execveat": 281, "clone": 220, "clone3": 435},
}
_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}

_libc: ctypes.CDLL | None = None


def _lib() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
    return _libc


def _arch() -> str:
    machine = platform.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)


# ---------------------------------------------------------------------------------------------
# Landlock
_LL_FS = {name: 1 << i for i, name in enumerate(
    ["EXECUTE", "WRITE_FILE", "READ_FILE", "READ_DIR", "REMOVE_DIR", "REMOVE_FILE", "MAKE_CHAR", "MAKE_DIR",
     "MAKE_REG", "MAKE_SOCK", "MAKE_FIFO", "MAKE_BLOCK", "MAKE_SYM", "REFER", "TRUNCATE", "IOCTL_DEV"])}


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 where there is none."""
    sys_nr = _SYS.get(_arch(), {}).get("landlock_create_ruleset")
    if sys_nr is None:
        return 0
    try:
        version = _lib().syscall(sys_nr, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    except Exception:
        return 0
    return max(int(version), 0)


_SYSTEM_READ_ROOTS = ("/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/etc", "/sys",
                      "/dev/null", "/dev/zero", "/dev/random", "/dev/urandom")


def installation_roots() -> list[str]:
    """What a confined interpreter worker may read: the system directories, the Python prefixes, the
    site-packages (and zip) entries of sys.path, and the directory of every loaded top-level package
    (e.g. evokernel's own, wherever it is installed) -- not the user's home, /tmp, /var or the project."""
    roots = [p for p in _SYSTEM_READ_ROOTS if os.path.exists(p)]
    prefixes = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
    roots += sorted(prefixes)
    for entry in sys.path:
        if entry and os.path.isabs(entry) and (
            os.path.basename(entry.rstrip("/")) in ("site-packages", "dist-packages") or entry.endswith(".zip")
        ) and os.path.exists(entry):
            roots.append(entry)
    for name, module in list(sys.modules.items()):
        if "." in name:
            continue
        attrs = getattr(module, "__dict__", {})
        file = attrs.get("__file__") if isinstance(attrs, dict) else None
        if isinstance(file, str) and os.path.isabs(file):
            base = os.path.basename(file)
            roots.append(os.path.dirname(file) if base.startswith("__init__.") else file)
        else:
            path = attrs.get("__path__") if isinstance(attrs, dict) else None
            try:
                roots += [p for p in list(path or []) if isinstance(p, str) and os.path.isabs(p)]
            except TypeError:
                pass
    out: list[str] = []
    for r in roots:
        if r not in out:
            out.append(r)
    return out


def _read_roots(hide_processes: bool = True, hide_dirs: Sequence[str] = (),
                allow: Sequence[str] | None = None) -> list[str]:
    """Paths to grant reads on: ``allow`` (default: everything), except /proc (when hiding processes;
    this process's own entry stays readable) and except the hidden directories.

    Landlock grants whole hierarchies, so a hidden directory is carved out by granting each sibling
    along the way down to it instead of its ancestors; a symbolic link is followed when granted, so a
    link that leads into (or above) a hidden directory is left out.
    """
    hidden = {os.path.realpath(d) for d in hide_dirs if d}
    if hide_processes:
        hidden.add("/proc")
    hidden.discard("/")

    def covers(path: str) -> bool:  # path is hidden, inside one, or above one
        return any(path == h or path.startswith(h.rstrip("/") + "/") or h.startswith(path.rstrip("/") + "/")
                   for h in hidden)

    roots: list[str] = []

    def expand(directory: str) -> None:
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            return
        for name in names:
            path = os.path.join(directory, name)
            if path in hidden:
                continue
            if os.path.islink(path):
                if not covers(os.path.realpath(path)):
                    roots.append(path)
                continue
            if any(h.startswith(path + "/") for h in hidden) and os.path.isdir(path):
                expand(path)  # an ancestor of a hidden directory: grant its other entries
            else:
                roots.append(path)

    for top in (["/"] if allow is None else allow):
        real = os.path.realpath(top)
        if covers(real) and not any(h.startswith(real.rstrip("/") + "/") for h in hidden):
            continue  # hidden, or inside a hidden directory
        if any(h.startswith(real.rstrip("/") + "/") for h in hidden) and os.path.isdir(real):
            expand(real)
        elif os.path.exists(top):
            roots.append(top)
    if hide_processes:
        roots.append(f"/proc/{os.getpid()}")
    return roots


def _landlock(write_dirs: Sequence[str], write_files: Sequence[str], hide_processes: bool,
              hide_dirs: Sequence[str] = ()) -> str:
    abi = landlock_abi()
    if abi < 1:
        return "landlock: unavailable"
    nr = _SYS[_arch()]
    libc = _lib()
    write = (_LL_FS["WRITE_FILE"] | _LL_FS["REMOVE_DIR"] | _LL_FS["REMOVE_FILE"] | _LL_FS["MAKE_CHAR"]
             | _LL_FS["MAKE_DIR"] | _LL_FS["MAKE_REG"] | _LL_FS["MAKE_SOCK"] | _LL_FS["MAKE_FIFO"]
             | _LL_FS["MAKE_BLOCK"] | _LL_FS["MAKE_SYM"])
    if abi >= 2:
        write |= _LL_FS["REFER"]
    if abi >= 3:
        write |= _LL_FS["TRUNCATE"]
    read = (_LL_FS["READ_FILE"] | _LL_FS["READ_DIR"]) if (hide_processes or hide_dirs) else 0
    # the interpreter (hide_processes) needs nothing outside the installation; device stacks may
    allow = installation_roots() if hide_processes else None
    handled = write | read
    net = 0b11 if abi >= 4 else 0  # BIND_TCP | CONNECT_TCP: handled, never allowed
    scoped = 0b11 if abi >= 6 else 0  # ABSTRACT_UNIX_SOCKET | SIGNAL
    if abi >= 6:
        attr = struct.pack("=QQQ", handled, net, scoped)
    elif abi >= 4:
        attr = struct.pack("=QQ", handled, net)
    else:
        attr = struct.pack("=Q", handled)
    buf = ctypes.create_string_buffer(attr, len(attr))
    fd = libc.syscall(nr["landlock_create_ruleset"], buf, ctypes.c_size_t(len(attr)), ctypes.c_uint32(0))
    if fd < 0:
        return f"landlock: create failed ({os.strerror(ctypes.get_errno())})"
    try:
        file_rights = _LL_FS["WRITE_FILE"] | (_LL_FS["TRUNCATE"] if abi >= 3 else 0)
        rules = [*((d, write | read) for d in write_dirs), *((f, file_rights) for f in write_files)]
        if read:
            rules += [(r, read) for r in _read_roots(hide_processes, hide_dirs, allow)]
        for path, rights in rules:
            try:
                pfd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                if not os.path.isdir(path):  # files take file rights only
                    rights &= _LL_FS["WRITE_FILE"] | _LL_FS["READ_FILE"] | _LL_FS["TRUNCATE"]
                rule = ctypes.create_string_buffer(struct.pack("=Qi", rights, pfd), 12)
                added = libc.syscall(nr["landlock_add_rule"], ctypes.c_int(fd), ctypes.c_int(1), rule,
                                     ctypes.c_uint32(0))
                if added < 0:
                    return f"landlock: add rule for {path} failed ({os.strerror(ctypes.get_errno())})"
            finally:
                os.close(pfd)
        if libc.syscall(nr["landlock_restrict_self"], ctypes.c_int(fd), ctypes.c_uint32(0)) < 0:
            return f"landlock: restrict failed ({os.strerror(ctypes.get_errno())})"
    finally:
        os.close(fd)
    parts = ["writes"] + (["other-processes", "user-files"] if hide_processes else [])
    parts += ["other-jobs"] if hide_dirs else []
    parts += ["tcp"] if net else []
    parts += ["signals"] if scoped else []
    return f"landlock v{abi}: {'+'.join(parts)}"


# ---------------------------------------------------------------------------------------------
# seccomp (classic BPF, assembled here)
_LD_W_ABS, _JEQ, _JSET, _JGE, _RET = 0x20, 0x15, 0x45, 0x35, 0x06
_ALLOW = 0x7FFF0000
_ERRNO = 0x00050000
_EPERM, _ENOSYS = 1, 38
_AF_INET, _AF_INET6, _AF_PACKET, _AF_UNIX = 2, 10, 17, 1
_CLONE_THREAD = 0x00010000


def _bpf(program: list[tuple]) -> bytes:
    """Assemble (op, k, true_label, false_label) / ("label", name) / ("ret", value) into sock_filter bytes."""
    labels: dict[str, int] = {}
    instructions = []
    for item in program:
        if item[0] == "label":
            labels[item[1]] = len(instructions)
        else:
            instructions.append(item)
    out = b""
    for pc, ins in enumerate(instructions):
        if ins[0] == "ret":
            out += struct.pack("=HBBI", _RET, 0, 0, ins[1])
        elif ins[0] == "ld":
            out += struct.pack("=HBBI", _LD_W_ABS, 0, 0, ins[1])
        else:
            op, k, t, f = ins
            jt = labels[t] - pc - 1 if t else 0
            jf = labels[f] - pc - 1 if f else 0
            if not (0 <= jt < 256 and 0 <= jf < 256):  # pragma: no cover - program is small
                raise ValueError("bpf jump out of range")
            out += struct.pack("=HBBI", op, jt, jf, k)
    return out


def _seccomp(block_processes: bool, block_threads: bool, block_unix: bool) -> str:
    arch = _arch()
    if arch not in _SYS:
        return f"seccomp: unsupported architecture {arch}"
    nr = _SYS[arch]
    deny = ("ret", _ERRNO | _EPERM)
    prog: list[tuple] = [
        ("ld", 4), (_JEQ, _AUDIT_ARCH[arch], "native", "deny"),
        ("label", "native"), ("ld", 0),
    ]
    if arch == "x86_64":  # x32 ABI numbers would bypass the checks below
        prog += [(_JGE, 0x40000000, "deny", "nr")]
    prog += [("label", "nr")]
    prog += [(_JEQ, nr["socket"], "socket", None)]
    for name in ("ptrace", "process_vm_readv", "process_vm_writev"):
        prog += [(_JEQ, nr[name], "deny", None)]
    if block_processes:
        for name in ("fork", "vfork", "execve", "execveat"):
            if name in nr:
                prog += [(_JEQ, nr[name], "deny", None)]
        prog += [(_JEQ, nr["clone3"], "nosys", None), (_JEQ, nr["clone"], "clone", None)]
    prog += [("ret", _ALLOW)]
    prog += [("label", "socket"), ("ld", 16)]
    families = [_AF_INET, _AF_INET6, _AF_PACKET] + ([_AF_UNIX] if block_unix else [])
    for fam in families:
        prog += [(_JEQ, fam, "deny", None)]
    prog += [("ret", _ALLOW)]
    if block_processes:
        # clone3 passes its flags in memory, out of the filter's sight: refuse it so libc falls back to clone
        prog += [("label", "clone"), ("ld", 16), (_JSET, _CLONE_THREAD, "thread", "deny")]
        prog += [("label", "thread"), ("ret", _ERRNO | _EPERM) if block_threads else ("ret", _ALLOW)]
        prog += [("label", "nosys"), ("ret", _ERRNO | _ENOSYS)]
    prog += [("label", "allow"), ("ret", _ALLOW)]
    prog += [("label", "deny"), deny]
    code = _bpf(prog)
    count = len(code) // 8
    filt = ctypes.create_string_buffer(code, len(code))

    class _Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = _Prog(count, ctypes.cast(filt, ctypes.c_void_p))
    libc = _lib()
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
    if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        return f"seccomp: failed ({os.strerror(ctypes.get_errno())})"
    what = ["inet-sockets", "ptrace"] + (["processes"] if block_processes else []) + (
        ["threads"] if block_processes and block_threads else [])
    return f"seccomp: {'+'.join(what)}"


def confine(
    job_dir: str,
    *,
    address_space_bytes: int | None,
    write_dirs: Sequence[str] = (),
    write_files: Sequence[str] = ("/dev/null",),
    block_processes: bool = True,
    block_threads: bool = False,
    block_unix_sockets: bool = True,
    hide_processes: bool = True,
    hide_dirs: Sequence[str] = (),
    sandbox: bool = True,
) -> list[str]:
    """Apply every layer the OS allows; returns one line per layer saying what it did."""
    applied: list[str] = []
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    try:
        resource.setrlimit(resource.RLIMIT_FSIZE, (2**30, 2**30))
    except (ValueError, OSError):
        pass
    if address_space_bytes:
        try:
            resource.setrlimit(resource.RLIMIT_AS, (address_space_bytes, address_space_bytes))
            applied.append(f"rlimit: address space {address_space_bytes >> 20} MiB")
        except (ValueError, OSError) as exc:
            applied.append(f"rlimit: address space not set ({exc})")
    if not sandbox or platform.system() != "Linux":
        applied.append("sandbox: off")
        return applied
    libc = _lib()
    libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    applied.append(_landlock([job_dir, *write_dirs], write_files, hide_processes, hide_dirs))
    applied.append(_seccomp(block_processes, block_threads, block_unix_sockets))
    return applied
