"""One dataclass tree for every agent setting, loadable from a TOML file and overridable from the CLI."""

from __future__ import annotations

import copy
import dataclasses
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evokernel.agent.llm.settings import LLMSettings
from evokernel.errors import UserError
from evokernel.memory.records import RetrievalSettings
from evokernel.verify import VerifySettings

__all__ = ["AgentSettings", "load_settings", "apply_overrides", "settings_from_dict", "settings_with"]


@dataclass
class AgentSettings:
    """Everything one agent run uses: budget, stages, retrieval, verifier and model."""

    budget: int = 30  # attempts per task, shared by drafting and refining
    seed: int = 0
    refine_epsilon: float = 0.1  # epsilon-greedy choice of the start point by Q_refine
    alpha: float = 0.2  # Monte-Carlo step size of the Q updates
    workers: int = 2  # candidates verified concurrently (local: CPU workers or devices; ray: actors)
    executor: str = "local"  # where candidates are verified: local (this machine) | ray (a Ray cluster)
    ray_address: str | None = None  # ray: "auto", HOST:PORT, or None for a local Ray instance
    retrieval: RetrievalSettings = field(default_factory=RetrievalSettings)
    verify: VerifySettings = field(default_factory=VerifySettings)
    llm: LLMSettings = field(default_factory=LLMSettings)  # model "" -> the embedded offline proposer
    max_code_chars: int = 6000  # per code listing in a prompt

    def validate(self) -> None:
        """Raise UserError naming the first setting of the wrong type or out of range (the nested verify,
        retrieval and llm tables included)."""
        _check_types(self, "")
        if self.budget < 1:
            raise UserError(f"budget must be at least 1 (got {self.budget})")
        if not 0.0 <= self.refine_epsilon <= 1.0:
            raise UserError(f"refine_epsilon must be in [0, 1] (got {self.refine_epsilon})")
        if not 0.0 < self.alpha <= 1.0:
            raise UserError(f"alpha must be in (0, 1] (got {self.alpha})")
        if self.workers < 1:
            raise UserError(f"workers must be at least 1 (got {self.workers})")
        if self.executor not in ("local", "ray"):
            raise UserError(f"executor must be local or ray (got {self.executor!r})")
        if self.ray_address is not None and self.executor != "ray":
            raise UserError(f"ray_address {self.ray_address!r} is only used by the ray executor; "
                            'set executor = "ray"')
        if self.retrieval.mode not in ("value", "similarity", "none"):
            raise UserError(f"retrieval mode must be value, similarity or none (got {self.retrieval.mode!r})")
        self.retrieval.validate()
        self.verify.validate()
        self.llm.check()

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (for run records)."""
        return dataclasses.asdict(self)


def _type_problem(value: Any, hint: Any) -> str | None:
    """None when ``value`` fits the field type ``hint`` (int, float, str, bool, dict, Any, X | None), else
    what was expected ("an integer")."""
    if hint is Any:
        return None
    options = _options(hint)
    if value is None and type(None) in options:
        return None
    expected = []
    for option in options:
        base = typing.get_origin(option) or option
        if base is type(None):
            continue
        if base is bool:
            ok, what = isinstance(value, bool), "true or false"
        elif base is int:
            ok, what = isinstance(value, int) and not isinstance(value, bool), "an integer"
        elif base is float:
            ok, what = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
        elif base is str:
            ok, what = isinstance(value, str), "a string"
        elif base is dict:
            ok, what = isinstance(value, dict), "a table"
        else:
            return None  # a type this check does not know: left to the table's own validation
        if ok:
            return None
        expected.append(what)
    return " or ".join(expected) or None


def _options(hint: Any) -> tuple[Any, ...]:
    """The members of a union type (``float | None`` -> float, NoneType); any other type alone."""
    union = isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
    return typing.get_args(hint) if union else (hint,)


def _check_value(key: str, value: Any, hints: dict[str, Any]) -> Any:
    """``value`` checked against the type of field ``key`` (an int where a number is expected becomes a
    float); a mismatch is a UserError "key: expected an integer, got '3'"."""
    hint = hints.get(key, Any)
    problem = _type_problem(value, hint)
    if problem is not None:
        raise UserError(f"{key}: expected {problem}, got {value!r}")
    options = _options(hint)
    if float in options and int not in options and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _check_types(obj: Any, prefix: str) -> None:
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            _check_types(value, f"{prefix}{f.name}.")
            continue
        try:
            _check_value(f.name, value, hints)
        except UserError as exc:
            raise UserError(f"{prefix}{exc}") from None


def _merge(obj: Any, values: dict[str, Any], where: str) -> None:
    names = {f.name: f for f in dataclasses.fields(obj)}
    hints = typing.get_type_hints(type(obj))
    for key, value in values.items():
        if key not in names:
            raise UserError(f"{where}: unknown setting {key!r}; known: {', '.join(sorted(names))}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise UserError(f"{where}: [{key}] must be a table of settings")
            _merge(current, value, f"{where} [{key}]")
        else:
            try:
                setattr(obj, key, _check_value(key, value, hints))
            except UserError as exc:
                raise UserError(f"{where}: {exc}") from None


def load_settings(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> AgentSettings:
    """Defaults, updated from a TOML file when given, then by dotted ``overrides`` (the command line's
    flags, e.g. {"budget": 3}; None values skipped); validated once, at the end, so a flag can fix what
    the file got wrong. Errors name the file and the setting."""
    settings = AgentSettings()
    p = Path(path) if path is not None else None
    if p is not None:
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(f"{p}: no such settings file") from None
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise UserError(f"{p}: not a valid TOML settings file ({exc})") from exc
        _merge(settings, data, str(p))
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    _set_dotted(settings, flags)
    try:
        settings.validate()
    except UserError as exc:
        if p is None:
            raise
        raise UserError(f"{exc} (settings from {p}, then the flags)" if flags else f"{p}: {exc}") from exc
    return settings


def settings_with(base: AgentSettings | None, values: Mapping[str, Any], where: str = "settings") -> AgentSettings:
    """A copy of ``base`` (default: the defaults) with settings given by name: top-level fields as values,
    nested tables as dicts or dataclasses (``{"budget": 3, "retrieval": {"mode": "none"}}``); validated.

    An unknown top-level name is a TypeError (these come from keyword arguments), an unknown nested
    one a UserError naming the table."""
    settings = copy.deepcopy(base) if base is not None else AgentSettings()
    names = {f.name for f in dataclasses.fields(AgentSettings)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise TypeError(
            f"{where}: unknown setting {unknown[0]!r}; pass AgentSettings fields by name (budget=3, seed=1), "
            "nested tables as dicts (retrieval={'mode': 'none'}, verify={'backend': 'cpu'}), or "
            f"settings=AgentSettings(...); known: {', '.join(sorted(names))}"
        )
    tables = {}
    for key, value in values.items():
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            setattr(settings, key, copy.deepcopy(value))
        else:
            tables[key] = value
    _merge(settings, tables, where)
    settings.validate()
    return settings


def settings_from_dict(data: dict[str, Any], where: str = "run record") -> AgentSettings:
    """AgentSettings from their to_dict() form (unknown keys are an error naming the key)."""
    settings = AgentSettings()
    _merge(settings, data, where)
    settings.validate()
    return settings


def _set_dotted(settings: AgentSettings, values: Mapping[str, Any]) -> None:
    for dotted, value in values.items():
        if value is None:
            continue
        *parents, leaf = dotted.split(".")
        target: Any = settings
        for name in parents:
            target = getattr(target, name, None)
            if not dataclasses.is_dataclass(target):
                raise UserError(f"unknown setting {dotted!r}")
        if not hasattr(target, leaf) or dataclasses.is_dataclass(getattr(target, leaf)):
            raise UserError(f"unknown setting {dotted!r}")
        setattr(target, leaf, value)


def apply_overrides(settings: AgentSettings, overrides: Mapping[str, Any]) -> AgentSettings:
    """Set dotted keys (e.g. {"retrieval.mode": "none", "budget": 10}); None values are skipped.

    The settings are validated after all of them are set."""
    _set_dotted(settings, overrides)
    settings.validate()
    return settings
