"""Settings of the LLM client: which model, how to sample, how hard to retry, where to cache."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from evokernel.errors import UserError

__all__ = ["LLMSettings", "CACHE_MODES"]

CACHE_MODES = ("readwrite", "replay", "off")

# litellm arguments the client sets itself; `extra` may not override them
_RESERVED = frozenset(
    {"model", "messages", "timeout", "num_retries", "max_retries", "api_key", "api_base", "stream"}
)


@dataclass
class LLMSettings:
    """How to reach the code model and how hard to try. Holds no secret, so it serializes as is.

    `model` is any string litellm routes (`openai/gpt-4o`, `anthropic/claude-...`, `ollama/qwen2.5-coder`,
    or `openai/<name>` with `api_base` for a local OpenAI-compatible server). Keys come from the
    provider's usual environment variable (OPENAI_API_KEY, ANTHROPIC_API_KEY, ...), or from the
    variable named by `api_key_env`.
    """

    model: str = ""
    api_base: str | None = None
    api_key_env: str | None = None  # read the key from this variable instead of the provider's
    temperature: float | None = 0.7  # None: the provider's default
    top_p: float | None = None
    max_tokens: int | None = None
    send_seed: bool = True  # pass the request seed to providers that accept one
    timeout_s: float = 120.0  # per request
    max_retries: int = 4  # on 429, 5xx, timeouts, connection errors
    backoff_base_s: float = 1.0  # first retry waits about this long, doubling after each
    backoff_max_s: float = 60.0
    jitter: float = 0.5  # up to this fraction of each delay is removed at random (seeded)
    jitter_seed: int = 0
    max_in_flight: int = 8  # requests in flight at once to this provider (and api_base), across clients
    cache_path: str | None = None  # SQLite reply cache; None: no cache
    cache_mode: str = "readwrite"  # readwrite | replay (never call the provider) | off
    extra: dict[str, Any] = field(default_factory=dict)  # more litellm.acompletion arguments

    def check(self) -> None:
        """Raise UserError naming the first setting that is out of range."""
        problems = []
        if self.timeout_s <= 0:
            problems.append(f"timeout_s must be > 0 (got {self.timeout_s})")
        if self.max_retries < 0:
            problems.append(f"max_retries must be >= 0 (got {self.max_retries})")
        if self.backoff_base_s < 0 or self.backoff_max_s < 0:
            problems.append("backoff_base_s and backoff_max_s must be >= 0")
        if not 0.0 <= self.jitter <= 1.0:
            problems.append(f"jitter must be within [0, 1] (got {self.jitter})")
        if self.max_in_flight < 1:
            problems.append(f"max_in_flight must be >= 1 (got {self.max_in_flight})")
        if self.cache_mode not in CACHE_MODES:
            problems.append(f"cache_mode must be one of {', '.join(CACHE_MODES)} (got {self.cache_mode!r})")
        if self.cache_mode == "replay" and not self.cache_path:
            problems.append("cache_mode 'replay' needs cache_path (the cache of the run to replay)")
        reserved = sorted(_RESERVED & set(self.extra))
        if reserved:
            problems.append(f"extra may not set {', '.join(reserved)} (they are settings of their own)")
        if problems:
            raise UserError(f"LLM settings: {problems[0]}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready copy for the run record."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LLMSettings:
        """Inverse of `to_dict`; unknown names raise UserError."""
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise UserError(f"LLM settings: unknown setting(s) {', '.join(unknown)}")
        return cls(**data)
