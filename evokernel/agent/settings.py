"""One dataclass tree for every agent setting, loadable from a TOML file and overridable from the CLI."""

from __future__ import annotations

import copy
import dataclasses
import tomllib
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
        """Raise UserError naming the first setting that is out of range."""
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
        self.llm.check()

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (for run records)."""
        return dataclasses.asdict(self)


def _merge(obj: Any, values: dict[str, Any], where: str) -> None:
    names = {f.name: f for f in dataclasses.fields(obj)}
    for key, value in values.items():
        if key not in names:
            raise UserError(f"{where}: unknown setting {key!r}; known: {', '.join(sorted(names))}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise UserError(f"{where}: [{key}] must be a table of settings")
            _merge(current, value, f"{where} [{key}]")
        else:
            setattr(obj, key, value)


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
