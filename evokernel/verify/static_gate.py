"""The static gate: an AST check of a candidate's source before anything of it runs.

Rules live in :mod:`evokernel.verify.rules`; this module only finds violations. It never imports or
executes the candidate. The gate is one layer of several: the worker's dynamic checks and the
parent's comparisons catch what a disguised candidate slips past it.

Dotted names are resolved against the real modules a candidate may import (``torch``, ``triton``,
the allowed standard modules; imported here, never the candidate): a forbidden module or function
that an allowed module happens to import (``torch.serialization.os``, ``enum.bltns``,
``torch.serialization.Path``) breaks the rule of what it is, whatever it is called.
"""

from __future__ import annotations

import ast
import importlib
import sys
import types
from dataclasses import dataclass

from evokernel._ast import parse as parse_python
from evokernel._ast import parse_expression
from evokernel.verify.rules import rule_message

__all__ = ["GateResult", "Finding", "check_candidate", "defines_model_new", "ALLOWED_IMPORTS", "MAX_SOURCE_CHARS"]

# Longest candidate the gate parses: the parent parses every candidate outside any sandbox, and a
# syntax tree costs about 200 bytes of memory per character of a dense literal. Real kernels are a few
# thousand characters; generated ones with many configurations stay far below this.
MAX_SOURCE_CHARS = 400_000

# Top-level modules a candidate may import.
ALLOWED_IMPORTS = frozenset(
    {
        "torch", "triton", "math", "typing", "typing_extensions", "functools", "itertools", "operator",
        "dataclasses", "collections", "enum", "numbers", "__future__", "abc", "copy", "time", "warnings",
    }
)

# Top-level modules with a more specific rule than "forbidden_import".
_MODULE_RULES = {
    **dict.fromkeys(
        ["socket", "ssl", "http", "urllib", "urllib3", "requests", "httpx", "aiohttp", "ftplib", "smtplib",
         "poplib", "imaplib", "telnetlib", "xmlrpc", "websocket", "websockets", "socketserver", "selectors",
         "paramiko", "grpc", "zmq"],
        "network",
    ),
    **dict.fromkeys(["subprocess", "pty", "signal", "sh", "pexpect"], "subprocess"),
    **dict.fromkeys(["threading", "_thread", "concurrent", "multiprocessing", "asyncio", "sched", "queue"], "threads"),
    **dict.fromkeys(
        ["shutil", "pathlib", "tempfile", "io", "glob", "fileinput", "pickle", "shelve", "marshal", "dbm",
         "sqlite3", "zipfile", "tarfile", "gzip", "bz2", "lzma", "csv", "json", "filecmp", "linecache"],
        "filesystem",
    ),
    **dict.fromkeys(["os", "posix", "nt", "posixpath", "ntpath"], "os_access"),
    **dict.fromkeys(["gc", "inspect", "sys", "traceback", "weakref", "dis", "code", "codeop", "builtins",
                     "__builtin__", "faulthandler", "tracemalloc", "atexit", "types", "ast", "site"], "introspection"),
    **dict.fromkeys(["importlib", "imp", "runpy", "pkgutil", "zipimport"], "dynamic_code"),
    **dict.fromkeys(["ctypes", "_ctypes", "cffi", "mmap", "resource", "fcntl", "cython", "pybind11"], "native_code"),
    **dict.fromkeys(["evokernel", "kernelbench", "pytest", "_pytest", "conftest"], "harness_access"),
}

# Dotted names (after alias resolution) and the rule they break; a prefix match counts.
_PATH_RULES: tuple[tuple[str, str], ...] = (
    ("torch.compile", "torch_compile"),
    ("torch.jit", "torch_compile"),
    ("torch.export", "torch_compile"),
    ("torch.fx", "torch_compile"),
    ("torch.utils.cpp_extension", "native_code"),
    ("torch.cuda.Stream", "side_stream"),
    ("torch.cuda.ExternalStream", "side_stream"),
    ("torch.cuda.stream", "side_stream"),
    ("torch.cuda.set_stream", "side_stream"),
    ("torch.npu.Stream", "side_stream"),
    ("torch.npu.stream", "side_stream"),
    ("torch.npu.set_stream", "side_stream"),
    ("torch.Stream", "side_stream"),
    ("torch.multiprocessing", "threads"),
    ("torch.distributed", "network"),
    ("torch.hub", "network"),
    ("torch.save", "filesystem"),
    ("torch.load", "filesystem"),
    ("torch.from_file", "filesystem"),
    ("torch.serialization", "filesystem"),
    ("torch.package", "filesystem"),
    ("torch.profiler", "filesystem"),
    ("torch.autograd.profiler", "filesystem"),
    ("torch.utils.data", "filesystem"),
    ("torch.utils.tensorboard", "filesystem"),
    ("torch.onnx", "filesystem"),
    ("torch.utils.model_zoo", "network"),
    ("torch.utils.benchmark", "native_code"),
    ("torch.utils.dlpack", "host_data"),
    ("operator.attrgetter", "dynamic_code"),
    # these evaluate strings as code (string annotations, forward references)
    ("typing.get_type_hints", "dynamic_code"),
    ("typing.ForwardRef", "dynamic_code"),
    ("typing.evaluate_forward_ref", "dynamic_code"),
    ("typing_extensions.get_type_hints", "dynamic_code"),
    ("typing_extensions.ForwardRef", "dynamic_code"),
    ("typing_extensions.evaluate_forward_ref", "dynamic_code"),
    ("typing_extensions.get_annotations", "dynamic_code"),
    ("operator.methodcaller", "dynamic_code"),
    ("torch.backends", "global_flags"),
    ("torch.set_float32_matmul_precision", "global_flags"),
    ("torch.set_default_dtype", "global_flags"),
    ("torch.set_default_tensor_type", "global_flags"),
    ("torch.set_default_device", "global_flags"),
    ("torch.use_deterministic_algorithms", "global_flags"),
    ("torch.set_deterministic_debug_mode", "global_flags"),
    ("torch.set_flush_denormal", "global_flags"),
    ("torch.set_num_threads", "global_flags"),
    ("torch.set_num_interop_threads", "global_flags"),
    ("torch.utils.deterministic", "global_flags"),
    ("torch.set_printoptions", "global_flags"),
    ("triton.compile", "low_level_launch"),
    ("triton.compiler", "low_level_launch"),
    ("triton.runtime.jit", "low_level_launch"),
    ("triton.runtime.interpreter", "low_level_launch"),
    ("triton.runtime.build", "low_level_launch"),
    ("triton.runtime.cache", "low_level_launch"),
    ("triton.knobs", "global_flags"),
    ("torch.library", "monkey_patch"),
    ("torch.overrides", "monkey_patch"),
    ("torch.ops.load_library", "native_code"),
)

_OS_RULES = {
    **dict.fromkeys(["environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"], "environment"),
    **dict.fromkeys(
        ["system", "fork", "forkpty", "popen", "kill", "killpg", "posix_spawn", "posix_spawnp", "execv", "execve",
         "execl", "execle", "execlp", "execlpe", "execvp", "execvpe", "spawnl", "spawnle", "spawnlp", "spawnlpe",
         "spawnv", "spawnve", "spawnvp", "spawnvpe", "abort", "_exit"],
        "subprocess",
    ),
    **dict.fromkeys(
        ["open", "remove", "unlink", "rename", "replace", "mkdir", "makedirs", "rmdir", "removedirs", "write",
         "truncate", "chmod", "chown", "symlink", "link", "listdir", "scandir", "walk", "chdir", "fdopen", "read",
         "mkfifo", "utime", "path"],
        "filesystem",
    ),
}

_BUILTIN_RULES = {
    **dict.fromkeys(["eval", "exec", "compile", "__import__"], "dynamic_code"),
    **dict.fromkeys(["globals", "locals", "vars", "breakpoint", "input", "__builtins__", "help"], "introspection"),
    "open": "filesystem",
}

# Attributes that reach frames, code objects, globals or the class hierarchy (sandbox escapes).
_FORBIDDEN_ATTRS = frozenset(
    {
        "__globals__", "__builtins__", "__code__", "__closure__", "__dict__", "__subclasses__", "__bases__",
        "__base__", "__mro__", "mro", "__getattr__", "__getattribute__", "__setattr__", "__delattr__",
        "__reduce__", "__reduce_ex__",
        "__self__", "__func__", "__wrapped__", "__loader__", "__spec__", "__import__", "__traceback__",
        "__defaults__", "__kwdefaults__", "__subclasshook__", "__init_subclass__", "__objclass__", "__getstate__",
        "__setstate__", "f_back", "f_locals", "f_globals", "f_builtins", "f_code", "f_trace", "tb_frame", "tb_next",
        "gi_frame", "gi_code", "cr_frame", "cr_code", "ag_frame", "ag_code", "co_code", "co_consts",
        "__annotations__",
    }
)

# Attribute names that move tensor data to the host (numpy, dlpack, raw buffers) or run a Python
# callable over it element by element (apply_, map_, map2_), on any object.
_HOST_DATA_ATTRS = frozenset(
    {"numpy", "__array__", "__array_namespace__", "__array_interface__", "__array_struct__", "__dlpack__",
     "from_numpy", "from_dlpack", "to_dlpack", "frombuffer", "from_file", "apply_", "map_", "map2_"}
)

# Attribute names of modules a candidate may not use, reached as an attribute of anything (an allowed
# module that imported them, or an object the gate cannot resolve): the module's own rule applies.
_MODULE_ATTRS = {
    **{name: rule for name, rule in _MODULE_RULES.items() if name not in ("code", "queue", "site", "sh", "cython")},
    "bltns": "introspection", "np": "forbidden_import", "numpy": "host_data",
}

_KERNEL_DECORATORS = frozenset({"triton.jit", "triton.runtime.jit.jit"})
_CONSTEXPR_FUNCTION_DECORATORS = frozenset({"triton.constexpr_function", "triton.language.constexpr_function",
                                            "triton.language.core.constexpr_function"})
# Python builtins a @triton.jit body may call (the Triton compiler supports these on constexprs/tuples).
_KERNEL_BUILTINS = frozenset(
    {"range", "min", "max", "len", "int", "float", "bool", "print", "isinstance", "zip", "enumerate", "abs",
     "tuple", "list", "str", "hasattr", "getattr", "type", "round", "divmod", "sum", "any", "all", "reversed",
     "ValueError", "AssertionError", "TypeError", "RuntimeError", "NotImplementedError"}
)
_FLAG_ATTRS = frozenset(
    {"allow_tf32", "allow_fp16_reduced_precision_reduction", "allow_bf16_reduced_precision_reduction",
     "deterministic", "benchmark", "fp32_precision", "enabled", "fill_uninitialized_memory"}
)


@dataclass(frozen=True)
class Finding:
    """One violation: the rule, the line and what was seen there."""

    rule: str
    line: int
    detail: str


@dataclass(frozen=True)
class GateResult:
    """Why the gate stopped a candidate: status is "compile_error" or "rejected"."""

    status: str
    rule: str | None
    message: str
    line: int | None
    findings: tuple[Finding, ...] = ()


def _module_rule(module: str) -> str | None:
    parts = module.split(".")
    root = parts[0]
    if root not in ALLOWED_IMPORTS:
        return _MODULE_RULES.get(root, "forbidden_import")
    for prefix, rule in _PATH_RULES:
        if module == prefix or module.startswith(prefix + "."):
            return rule
    if any(p.startswith("_") and not (p.startswith("__") and p.endswith("__")) for p in parts[1:]):
        return "private_api"
    return None


def _path_rule(path: str) -> str | None:
    for prefix, rule in _PATH_RULES:
        if path == prefix or path.startswith(prefix + "."):
            return rule
    parts = path.split(".")
    if parts[0] in ("torch", "triton") and any(
        p.startswith("_") and not (p.startswith("__") and p.endswith("__")) for p in parts[1:]
    ):
        return "private_api"
    if parts[0] == "os" and len(parts) > 1:
        return _OS_RULES.get(parts[1], "os_access")
    return _live_rule(parts)


_ROOTS: dict[str, object | None] = {}


def _root_module(name: str) -> object | None:
    """The allowed top-level module ``name`` (imported once; None where it is not installed)."""
    if name not in _ROOTS:
        module = sys.modules.get(name)
        if module is None:
            try:
                module = importlib.import_module(name)
            except Exception:  # not installed here: names under it stay unresolved
                module = None
        _ROOTS[name] = module
    return _ROOTS[name]


def _object_rule(obj: object) -> str | None:
    """The rule an object reached through an allowed module breaks: a module that is not allowed, or a
    function or class that belongs to one (``torch.serialization.Path`` is pathlib's Path)."""
    if isinstance(obj, types.ModuleType):
        name = vars(obj).get("__name__")
        if not isinstance(name, str):
            return None
        rule = _module_rule(name)
        return None if rule == "private_api" else rule  # private names are judged by how they are spelled
    if isinstance(obj, (type, types.FunctionType, types.BuiltinFunctionType, types.MethodType)):
        module = getattr(obj, "__module__", None)
        if isinstance(module, str) and module.split(".")[0] not in ALLOWED_IMPORTS:
            return _MODULE_RULES.get(module.split(".")[0])
    return None


def _live_rule(parts: list[str]) -> str | None:
    """Walk ``parts`` through the real objects of an allowed module (module and class namespaces only,
    nothing lazy is triggered) and return the first rule an object on the way breaks."""
    if parts[0] not in ALLOWED_IMPORTS or len(parts) < 2:
        return None
    obj = _root_module(parts[0])
    for i, name in enumerate(parts[1:], start=1):
        if not isinstance(obj, (types.ModuleType, type)):
            return None
        try:
            space = vars(obj)
        except TypeError:
            return None
        if name not in space:
            return None
        obj = space[name]
        rule = _object_rule(obj)
        if rule == "os_access" and i + 1 < len(parts):
            return _OS_RULES.get(parts[i + 1], "os_access")
        if rule:
            return rule
    return None


class _Gate(ast.NodeVisitor):
    def __init__(self) -> None:
        self.aliases: dict[str, str] = {}  # local name -> dotted module path it stands for
        self.findings: list[Finding] = []
        self.has_model_new = False
        self.has_kernel = False
        self._reported: set[tuple[int, str]] = set()
        self._os_imports: list[Finding] = []
        self._params: list[set[str]] = []  # parameter names of the enclosing functions
        self.kernels: set[str] = set()  # names of the module's @triton.jit functions (see prepare)
        self.kernel_bodies: set[str] = set()  # functions made kernels by a call: k = triton.jit(f)
        self.constexpr_functions: set[str] = set()
        self.classes: set[str] = set()
        self._kernel: str | None = None  # the @triton.jit function being visited
        self._call_funcs: set[int] = set()  # ids of Name nodes that are the function of a call

    def prepare(self, tree: ast.Module) -> None:
        """First pass: imports (for resolution), the module's kernels and classes."""
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        self.aliases.setdefault(alias.asname, alias.name)
                    else:
                        self.aliases.setdefault(alias.name.split(".")[0], alias.name.split(".")[0])
            elif isinstance(node, ast.ImportFrom) and not node.level:
                for alias in node.names:
                    if alias.name != "*":
                        self.aliases.setdefault(alias.asname or alias.name, f"{node.module or ''}.{alias.name}")
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                self.classes.add(node.name)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for dec in node.decorator_list:
                    target = dec.func if isinstance(dec, ast.Call) else dec
                    path = self.resolve(target)
                    if path in _KERNEL_DECORATORS:
                        self.kernels.add(node.name)
                    elif path in _CONSTEXPR_FUNCTION_DECORATORS:
                        self.constexpr_functions.add(node.name)
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
                if self.resolve(node.value.func) in _KERNEL_DECORATORS:
                    self.kernels.update(t.id for t in node.targets if isinstance(t, ast.Name))
                    self.kernel_bodies.update(a.id for a in node.value.args[:1] if isinstance(a, ast.Name))
        self.kernels |= self.kernel_bodies

    # -- helpers -------------------------------------------------------------------------------
    def add(self, rule: str, node: ast.AST, detail: str) -> None:
        line = getattr(node, "lineno", 0)
        if (line, rule) in self._reported:
            return
        self._reported.add((line, rule))
        self.findings.append(Finding(rule, line, detail))

    def resolve(self, node: ast.AST) -> str | None:
        """Dotted path of a Name/Attribute chain rooted at an imported module alias, else None."""
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self.resolve(node.value)
            return None if base is None else f"{base}.{node.attr}"
        return None

    @staticmethod
    def root_name(node: ast.AST) -> str | None:
        while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
            node = node.func if isinstance(node, ast.Call) else node.value
        return node.id if isinstance(node, ast.Name) else None

    # -- imports -------------------------------------------------------------------------------
    def _import(self, node: ast.AST, module: str) -> None:
        rule = _module_rule(module)
        if rule == "os_access":
            self._os_imports.append(Finding(rule, getattr(node, "lineno", 0), f"import {module}"))
        elif rule:
            self.add(rule, node, f"import {module}")

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._import(node, alias.name)
            if alias.asname:
                self.aliases[alias.asname] = alias.name
            else:
                root = alias.name.split(".")[0]
                self.aliases[root] = root

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            self.add("forbidden_import", node, "relative import")
            return
        module = node.module or ""
        self._import(node, module)
        for alias in node.names:
            if alias.name == "*":
                self.add("forbidden_import", node, f"from {module} import *")
                continue
            full = f"{module}.{alias.name}"
            rule = _module_rule(full) if _module_rule(module) is None else None
            rule = rule or _path_rule(full)
            if rule and rule != "os_access":
                self.add(rule, node, f"from {module} import {alias.name}")
            self.aliases[alias.asname or alias.name] = full

    # -- definitions ---------------------------------------------------------------------------
    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        if node.name == "ModelNew":
            self.has_model_new = True
        if self._kernel is not None:
            self.add("kernel_python", node, f"class {node.name} inside @triton.jit {self._kernel}")
        self.generic_visit(node)

    @staticmethod
    def _arg_names(args: ast.arguments) -> set[str]:
        every = [*args.posonlyargs, *args.args, *args.kwonlyargs]
        every += [a for a in (args.vararg, args.kwarg) if a is not None]
        return {a.arg for a in every}

    def _annotation(self, node: ast.expr | None) -> None:
        """Check an annotation as the code it is: typing and functools evaluate annotations (strings
        included) at run time, so a string annotation is parsed and checked like any expression."""
        if node is None:
            return
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            try:
                parsed = parse_expression(node.value.strip())
            except (SyntaxError, ValueError):
                return  # not an expression: nothing can evaluate it
            except MemoryError as exc:  # hostile nesting inside the string: as deep as any other
                raise RecursionError("annotation nested too deeply") from exc
            for sub in ast.walk(parsed):
                ast.copy_location(sub, node)
            node = parsed
        self.visit(node)

    def _scoped(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        # decorators, defaults and annotations belong to the enclosing scope
        for dec in getattr(node, "decorator_list", []):
            self.visit(dec)
        for default in [*node.args.defaults, *[d for d in node.args.kw_defaults if d is not None]]:
            self.visit(default)
        every = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs, node.args.vararg, node.args.kwarg]
        for arg in every:
            if arg is not None:
                self._annotation(arg.annotation)
        self._annotation(getattr(node, "returns", None))
        self._params.append(self._arg_names(node.args))
        body = node.body if isinstance(node.body, list) else [node.body]
        for stmt in body:
            self.visit(stmt)
        self._params.pop()

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for dec in node.decorator_list:
            target = dec.func if isinstance(dec, ast.Call) else dec
            path = self.resolve(target)
            if path in _KERNEL_DECORATORS:
                self.has_kernel = True
        if isinstance(node, ast.AsyncFunctionDef):
            self.add("threads", node, f"async def {node.name}")
        if self._kernel is not None:
            self.add("kernel_python", node, f"def {node.name} inside @triton.jit {self._kernel}")
        is_kernel = node.name in self.kernel_bodies or any(
            self.resolve(d.func if isinstance(d, ast.Call) else d) in _KERNEL_DECORATORS for d in node.decorator_list)
        outer = self._kernel
        if is_kernel:
            self._kernel = node.name
        try:
            self._scoped(node)
        finally:
            self._kernel = outer

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function

    def visit_Lambda(self, node: ast.Lambda) -> None:
        if self._kernel is not None:
            self.add("kernel_python", node, f"lambda inside @triton.jit {self._kernel}")
        self._scoped(node)

    # -- statements ----------------------------------------------------------------------------
    def _check_target(self, target: ast.AST, verb: str) -> None:
        if isinstance(target, (ast.Tuple, ast.List)):
            for elt in target.elts:
                self._check_target(elt, verb)
            return
        if isinstance(target, ast.Starred):
            self._check_target(target.value, verb)
            return
        if isinstance(target, ast.Name):
            if target.id == "ModelNew":
                self.has_model_new = True
            return
        if not isinstance(target, (ast.Attribute, ast.Subscript)):
            return
        # type(x).clone = ..., x.__class__ = ..., f().attr = ...: patching a class through an instance
        chain: ast.AST = target
        while isinstance(chain, (ast.Attribute, ast.Subscript, ast.Call)):
            if isinstance(chain, ast.Call) or (isinstance(chain, ast.Attribute) and chain.attr == "__class__"):
                self.add("monkey_patch", target, f"{verb} {ast.unparse(target)}")
                return
            chain = chain.value
        root = self.root_name(target)
        if root is not None and root in self.aliases:
            path = self.resolve(target) if isinstance(target, ast.Attribute) else None
            shown = path or ast.unparse(target)
            is_flag = (path or "").startswith(("torch.backends", "torch.utils.deterministic")) or (
                isinstance(target, ast.Attribute) and target.attr in _FLAG_ATTRS
            )
            if (path or "").startswith("os.environ") or shown.startswith("os.environ"):
                self.add("environment", target, f"{verb} {shown}")
            else:
                self.add("global_flags" if is_flag else "monkey_patch", target, f"{verb} {shown}")

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self._check_target(target, "assignment to")
        # t = torch.Tensor: t stands for the same path from here on
        path = self.resolve(node.value)
        if path is not None:
            for target in node.targets:
                if isinstance(target, ast.Name):
                    self.aliases[target.id] = path
        # kernel = triton.jit(fn)
        if isinstance(node.value, ast.Call) and self.resolve(node.value.func) in _KERNEL_DECORATORS:
            self.has_kernel = True
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._check_target(node.target, "assignment to")
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._check_target(node.target, "assignment to")
        self.visit(node.target)
        self._annotation(node.annotation)
        if node.value is not None:
            self.visit(node.value)

    def visit_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            self._check_target(target, "del")
        self.generic_visit(node)

    def visit_Global(self, node: ast.Global) -> None:
        self.generic_visit(node)

    def _try(self, node: ast.AST) -> None:
        handlers = getattr(node, "handlers", [])
        body = getattr(node, "body", [])
        if handlers and not all(isinstance(s, (ast.Import, ast.ImportFrom)) for s in body):
            self.add("try_fallback", node, "try/except")
        self.generic_visit(node)

    visit_Try = _try
    if hasattr(ast, "TryStar"):
        visit_TryStar = _try

    # -- expressions ---------------------------------------------------------------------------
    def visit_Name(self, node: ast.Name) -> None:
        if node.id in self.aliases or any(node.id in scope for scope in self._params):
            return
        rule = _BUILTIN_RULES.get(node.id)
        if rule:
            self.add(rule, node, node.id)
        elif node.id in ("getattr", "setattr", "delattr") and id(node) not in self._call_funcs:
            self.add("dynamic_code", node, f"{node.id} used as a value")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr in _FORBIDDEN_ATTRS:
            self.add("introspection", node, f".{node.attr}")
        if node.attr in _HOST_DATA_ATTRS:
            self.add("host_data", node, f".{node.attr}")
        if node.attr in _MODULE_ATTRS and self.root_name(node) != "self":
            self.add(_MODULE_ATTRS[node.attr], node, f".{node.attr} (a module)")
        if self._kernel is not None and node.attr == "handle":
            self.add("kernel_python", node, f".handle inside @triton.jit {self._kernel} (interpreter internals)")
        path = self.resolve(node)
        if path is not None:
            rule = _path_rule(path)
            if rule:
                self.add(rule, node, path)
                return  # one finding per chain
        elif node.attr.startswith("_") and not (node.attr.startswith("__") and node.attr.endswith("__")):
            root = self.root_name(node)
            if root != "self":
                self.add("private_api", node, f".{node.attr}")
        self.generic_visit(node)

    def _kernel_call(self, node: ast.Call) -> None:
        """Inside a @triton.jit body only Triton (and math) functions, other kernels and a few builtins may be
        called: plain Python runs under the interpreter only, where it would compute outside the kernel."""
        func = node.func
        if isinstance(func, ast.Name):
            name = func.id
            if name in self.kernels or name in self.constexpr_functions or name in _KERNEL_BUILTINS:
                return
            if any(name in scope for scope in self._params):
                return  # a constexpr argument (e.g. a @triton.jit activation passed in)
            path = self.aliases.get(name)
            if path is not None and (path.split(".")[0] in ("triton", "math") or path.split(".")[-1] in self.kernels):
                return
            self.add("kernel_python", node, f"{name}(...) inside @triton.jit {self._kernel}")
        elif isinstance(func, ast.Attribute):
            path = self.resolve(func)
            if path is not None and path.split(".")[0] not in ("triton", "math"):
                self.add("kernel_python", node, f"{path}(...) inside @triton.jit {self._kernel}")
        else:
            self.add("kernel_python", node, f"{ast.unparse(func)}(...) inside @triton.jit {self._kernel}")

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if self._kernel is not None:
            self._kernel_call(node)
        if isinstance(func, ast.Name) and func.id in ("getattr", "setattr", "delattr"):
            self._call_funcs.add(id(func))
        if (isinstance(func, ast.Name) and func.id == "super" and node.args
                and not (isinstance(node.args[0], ast.Name) and node.args[0].id in self.classes)):
            self.add("introspection", node, f"super({ast.unparse(node.args[0])}, ...)")
        if isinstance(func, ast.Name) and func.id not in self.aliases and not any(
            func.id in scope for scope in self._params
        ):
            if func.id in ("setattr", "delattr"):
                first = node.args[0] if node.args else None
                if not (isinstance(first, ast.Name) and first.id == "self"):
                    self.add("monkey_patch", node, f"{func.id}(...)")
            elif func.id == "getattr" and len(node.args) >= 2:
                obj, name = node.args[0], node.args[1]
                if isinstance(name, ast.Constant) and isinstance(name.value, str):
                    attr = name.value
                    if attr in _FORBIDDEN_ATTRS:
                        self.add("introspection", node, f"getattr(..., {attr!r})")
                    elif attr.startswith("_") and not (isinstance(obj, ast.Name) and obj.id == "self"):
                        self.add("private_api", node, f"getattr(..., {attr!r})")
                    elif not (isinstance(obj, ast.Name) and obj.id == "self"):
                        # getattr(m, "name") is m.name: every attribute rule applies
                        same = ast.Attribute(value=obj, attr=attr, ctx=ast.Load())
                        self.visit_Attribute(ast.copy_location(same, node))
                elif not (isinstance(obj, ast.Name) and obj.id == "self"):
                    self.add("dynamic_code", node, "getattr with a computed name")
        if isinstance(func, ast.Attribute):
            if func.attr in ("warmup", "_init_handles"):
                self.add("low_level_launch", node, f".{func.attr}(...)")
            path = self.resolve(func)
            if path in _KERNEL_DECORATORS:
                self.has_kernel = True
        self.generic_visit(node)


def _line_text(source: str, line: int) -> str:
    lines = source.splitlines()
    return lines[line - 1].strip() if 0 < line <= len(lines) else ""


def defines_model_new(source: str) -> bool:
    """True when the source parses and binds ModelNew at module level (used by the CLI's input check)."""
    if len(source) > MAX_SOURCE_CHARS:
        return True  # not parsed here; the gate reports the size
    try:
        tree = parse_python(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return True  # the candidate's problem, reported by the gate as compile_error
    for stmt in tree.body:
        if isinstance(stmt, ast.ClassDef) and stmt.name == "ModelNew":
            return True
        if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "ModelNew" for t in stmt.targets):
            return True
        if isinstance(stmt, (ast.Import, ast.ImportFrom)) and any(
            (a.asname or a.name) == "ModelNew" for a in stmt.names
        ):
            return True
    return False


def _too_deep(filename: str, exc: BaseException) -> GateResult:
    return GateResult(
        "compile_error", None,
        f"{filename}: nested too deeply to parse and check ({type(exc).__name__}); split long expressions "
        "and deep nesting into smaller statements",
        None,
    )


def check_candidate(source: str, filename: str = "candidate.py") -> GateResult | None:
    """None when the candidate passes the gate, else the first reason it does not."""
    if len(source) > MAX_SOURCE_CHARS:
        return GateResult(
            "compile_error", None,
            f"{filename}: {len(source):,} characters, more than the {MAX_SOURCE_CHARS:,} a candidate may have; "
            "generate tables and configurations at run time instead of writing them out",
            None,
        )
    try:
        tree = parse_python(source, filename=filename)
    except SyntaxError as exc:
        line = exc.lineno or 0
        return GateResult(
            "compile_error", None, f"{filename}:{line}: SyntaxError: {exc.msg} (`{_line_text(source, line)}`)", line
        )
    except ValueError as exc:  # e.g. null bytes
        return GateResult("compile_error", None, f"{filename}: cannot be parsed: {exc}", None)
    except (RecursionError, MemoryError) as exc:  # hostile nesting must not take the parent down
        return _too_deep(filename, exc)
    gate = _Gate()
    try:
        gate.prepare(tree)
        gate.aliases = {}  # the visit binds names in source order
        gate.visit(tree)
    except (RecursionError, MemoryError) as exc:  # a program the gate cannot walk is not run unchecked
        return _too_deep(filename, exc)
    if not gate.has_model_new:
        return GateResult(
            "compile_error",
            None,
            f"{filename}: no class ModelNew; define class ModelNew(nn.Module) with Model's constructor "
            "and forward signature",
            None,
        )
    findings = list(gate.findings)
    if gate._os_imports and not any(f.rule in ("environment", "subprocess", "filesystem") for f in findings):
        findings.extend(gate._os_imports)
    findings.sort(key=lambda f: f.line)
    if findings:
        first = findings[0]
        more = f" (+{len(findings) - 1} more)" if len(findings) > 1 else ""
        code = _line_text(source, first.line)
        shown = f" `{code}`" if code else ""
        message = f"{filename}:{first.line}: {rule_message(first.rule, first.detail)};{shown}{more}"
        return GateResult("rejected", first.rule, message, first.line, tuple(findings))
    if not gate.has_kernel:
        return GateResult("rejected", "no_triton_kernel", f"{filename}: {rule_message('no_triton_kernel')}", None)
    return None
