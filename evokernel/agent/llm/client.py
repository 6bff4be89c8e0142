"""Async chat completions through litellm: retries, an in-flight limit, a ledger and a reply cache.

litellm is imported on first use (it takes seconds), never at module import.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import random
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Any, Union

from evokernel.agent.llm.cache import ReplyCache, request_key
from evokernel.agent.llm.errors import RETRY, STOP, LLMStopError, classify, one_line
from evokernel.agent.llm.extract import extract_code, missing_code_reason
from evokernel.agent.llm.ledger import UsageLedger
from evokernel.agent.llm.settings import LLMSettings

__all__ = [
    "Completion",
    "LLMClient",
    "ProviderLimit",
    "provider_limit",
    "backoff_delay",
    "close_litellm_clients",
    "Messages",
]

log = logging.getLogger(__name__)

Messages = Union[str, Sequence[Mapping[str, Any]]]  # a prompt, or chat messages

# providers that serve locally and need no key (their *_API_BASE has a default)
_LOCAL_PROVIDERS = frozenset({"ollama", "ollama_chat", "lm_studio", "llamafile", "hosted_vllm"})


def _litellm() -> Any:
    """Import litellm once, quietly and without fetching its cost map from the network."""
    module = sys.modules.get("litellm")
    if module is None:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm as module  # noqa: PLC0415 - deliberately lazy
    if not getattr(module, "suppress_debug_info", True):
        module.suppress_debug_info = True  # no "Give Feedback / Get Help" banners on stdout
    return module


class ProviderLimit:
    """Requests in flight to one provider from this process, across clients, threads and event loops.

    A request waits while ``limit`` (its client's ``max_in_flight``) or more are in flight. Waiters
    sleep on a future of their own loop; every release wakes them all to re-check (no wake-up can be
    lost to a cancelled waiter, and clients with different limits each see their own). Thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active = 0
        self._waiters: collections.deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = (
            collections.deque()
        )

    @property
    def in_flight(self) -> int:
        """Requests holding a slot now."""
        with self._lock:
            return self._active

    async def acquire(self, limit: int) -> None:
        """Wait until fewer than ``limit`` requests are in flight, then take a slot."""
        loop = asyncio.get_running_loop()
        while True:
            with self._lock:
                if self._active < limit:
                    self._active += 1
                    return
                waiter = (loop, loop.create_future())
                self._waiters.append(waiter)
            try:
                await waiter[1]
            except BaseException:
                with self._lock:
                    if waiter in self._waiters:
                        self._waiters.remove(waiter)
                raise

    def release(self) -> None:
        """Give a slot back and wake every waiter."""
        with self._lock:
            self._active -= 1
            waiters, self._waiters = self._waiters, collections.deque()
        for loop, future in waiters:
            try:
                loop.call_soon_threadsafe(_wake, future)
            except RuntimeError:  # that loop is closed: nobody waits there any more
                pass

    @asynccontextmanager
    async def slot(self, limit: int) -> AsyncIterator[None]:
        """``async with limiter.slot(n):`` one request in flight."""
        await self.acquire(limit)
        try:
            yield
        finally:
            self.release()


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


_LIMITS: dict[str, ProviderLimit] = {}
_LIMITS_LOCK = threading.Lock()


def provider_limit(provider: str, api_base: str | None = None) -> ProviderLimit:
    """The process-wide in-flight limiter of one provider (and server, when ``api_base`` names one)."""
    key = f"{provider}|{api_base or ''}"
    with _LIMITS_LOCK:
        limiter = _LIMITS.get(key)
        if limiter is None:
            limiter = _LIMITS[key] = ProviderLimit()
        return limiter


@dataclass
class Completion:
    """One completion: the reply text, or why there is none, plus its accounting.

    `error` is set when the request failed (retries used up, malformed reply, replay miss); `text`
    is then None. A successful reply may still hold no code: see `code` and `no_code_reason`.
    Cached replies cost nothing here (`tokens_*` = 0, `cost_usd` = 0, `cached` = True).
    """

    text: str | None
    error: str | None = None
    model: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    price_known: bool = True  # False: litellm has no price for the model (cost_usd is 0)
    cached: bool = False
    latency_s: float = 0.0  # wall time of the call, retries and queueing included
    attempts: int = 0  # provider calls made (0 for a cache hit)
    finish_reason: str | None = None
    status: int | None = None  # HTTP status of the last failure, where there was one
    prompt_chars: int = 0
    key: str = ""  # the request's cache key

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def code(self) -> str | None:
        """The kernel source from the reply's fenced block (see `extract_code`), or None."""
        return extract_code(self.text, allow_unclosed=self.finish_reason != "length")

    @property
    def reply_chars(self) -> int:
        return len(self.text or "")

    def no_code_reason(self) -> str | None:
        """Why there is no code (for the attempt's lesson); None when there is code."""
        if self.error is not None:
            return self.error
        if self.code is not None:
            return None
        return missing_code_reason(self.text, self.finish_reason)

    def accounting(self) -> dict[str, Any]:
        """The `Proposal` accounting fields (prompt_chars ... cached) of this completion."""
        return {
            "prompt_chars": self.prompt_chars,
            "reply_chars": self.reply_chars,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "cost_usd": self.cost_usd,
            "cached": self.cached,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record (without the reply text, which is stored with the attempt)."""
        record = asdict(self)
        record.pop("text")
        record["reply_chars"] = self.reply_chars
        return record


def backoff_delay(
    retry: int, *, base_s: float, max_s: float, jitter: float, rng: random.Random
) -> float:
    """Seconds to wait before retry number `retry` (0 = first): min(max_s, base_s * 2**retry),
    less a random fraction of it up to `jitter`."""
    raw = min(max_s, base_s * (2.0**retry))
    return raw * (1.0 - jitter * rng.random())


def _retry_after(exc: BaseException) -> float | None:
    for headers in (
        getattr(getattr(exc, "response", None), "headers", None),
        getattr(exc, "litellm_response_headers", None),
    ):
        if not headers:
            continue
        try:
            value = headers.get("retry-after") or headers.get("Retry-After")
            if value is not None:
                return max(0.0, float(value))
        except (AttributeError, TypeError, ValueError):
            continue
    return None


def _normalize_messages(messages: Messages) -> list[dict[str, Any]]:
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    result = []
    for message in messages:
        if not isinstance(message, Mapping) or "role" not in message or "content" not in message:
            raise ValueError(f"each message needs 'role' and 'content'; got {message!r}")
        result.append(dict(message))
    if not result:
        raise ValueError("no messages to send")
    return result


def _chars(messages: list[dict[str, Any]]) -> int:
    total = 0
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            total += len(content)
        elif isinstance(content, list):
            total += sum(len(part.get("text", "")) for part in content if isinstance(part, Mapping))
    return total


def _reply_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return "".join(
            str(part.get("text", "")) if isinstance(part, Mapping) else str(part) for part in content
        )
    return str(content)


class LLMClient:
    """Chat completions for one model through `litellm.acompletion`.

    Every call returns a `Completion` except the failures no retry can fix (missing or rejected key,
    unknown model, no credit), which raise `LLMStopError` (a UserError) to stop the run. Retries use
    exponential backoff with seeded jitter (the delays depend only on the settings' `jitter_seed`,
    the request and the retry number, not on timing). At most `max_in_flight` requests are in flight
    to the provider (and `api_base`) at once from this whole process: clients of the same provider
    share the limit (`provider_limit`), whatever thread or event loop they run on. The ledger is exact
    under concurrency and may be shared between clients.

    Thread safety: use one client from one event loop at a time; the in-flight limit, the ledger and
    the reply cache may be shared across threads.
    """

    def __init__(
        self,
        settings: LLMSettings,
        *,
        api_key: str | None = None,
        ledger: UsageLedger | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        settings.check()
        self.settings = settings
        self.ledger = ledger if ledger is not None else UsageLedger()
        use_cache = settings.cache_path is not None and settings.cache_mode != "off"
        self.cache = ReplyCache(settings.cache_path) if use_cache else None  # type: ignore[arg-type]
        self._api_key = api_key
        self._sleep = sleep
        self._provider: str | None = None
        self._validated = False

    # ----------------------------------------------------------------- checks
    @property
    def model(self) -> str:
        return self.settings.model

    @property
    def provider(self) -> str:
        """The provider litellm routes the model to (e.g. "openai"); raises LLMStopError if none."""
        if self._provider is None:
            if not self.settings.model:
                raise LLMStopError(
                    "no model set: name one litellm routes, e.g. openai/gpt-4o, "
                    "anthropic/claude-sonnet-4-5 or ollama/qwen2.5-coder"
                )
            try:
                _, provider, _, _ = _litellm().get_llm_provider(
                    model=self.settings.model, api_base=self.settings.api_base
                )
            except Exception as exc:
                raise LLMStopError(
                    f"litellm cannot route model '{self.settings.model}' ({one_line(exc)}): "
                    "prefix it with its provider, e.g. openai/..., anthropic/..., ollama/..."
                ) from exc
            self._provider = str(provider)
        return self._provider

    def _key(self) -> str | None:
        if self._api_key:
            return self._api_key
        variable = self.settings.api_key_env
        if variable:
            value = os.environ.get(variable)
            if not value:
                raise LLMStopError(
                    f"no API key for model '{self.settings.model}': set {variable} "
                    "(named by the api_key_env setting)"
                )
            return value
        return None

    def validate(self) -> None:
        """Check the model string and its key before any request; raise LLMStopError if unusable."""
        if self._validated:
            return
        provider = self.provider
        if self._key() is None and provider not in _LOCAL_PROVIDERS:
            report = _litellm().validate_environment(
                model=self.settings.model, api_base=self.settings.api_base
            )
            missing = [str(name) for name in report.get("missing_keys", [])]
            if self.settings.api_base:
                missing = [m for m in missing if not m.endswith(("_API_BASE", "_BASE_URL"))]
            if missing:
                hint = " (any value works for a local server that checks no key)" if self.settings.api_base else ""
                raise LLMStopError(
                    f"no API key for model '{self.settings.model}': set {' and '.join(missing)} "
                    f"in the environment{hint}"
                )
        self._validated = True

    # ----------------------------------------------------------------- requests
    @property
    def in_flight_limit(self) -> ProviderLimit:
        """The process-wide limiter this client's requests go through (shared per provider and api_base)."""
        return provider_limit(self.provider, self.settings.api_base)

    async def complete(
        self,
        messages: Messages,
        *,
        seed: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        max_tokens: int | None = None,
    ) -> Completion:
        """One completion for `messages` (a prompt string or chat messages).

        Sampling arguments left None take the settings' values. `seed` is sent to providers that
        accept one and is always part of the cache key.
        """
        started = time.perf_counter()
        s = self.settings
        msgs = _normalize_messages(messages)
        sampling = {
            "temperature": s.temperature if temperature is None else temperature,
            "top_p": s.top_p if top_p is None else top_p,
            "max_tokens": s.max_tokens if max_tokens is None else max_tokens,
        }
        key = request_key(s.model, msgs, seed=seed, extra=s.extra, **sampling)
        base = {"model": s.model, "prompt_chars": _chars(msgs), "key": key}

        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None and (hit.error is None or s.cache_mode == "replay"):
                result = Completion(
                    text=hit.text,
                    error=hit.error,
                    cached=True,
                    finish_reason=hit.finish_reason,
                    latency_s=time.perf_counter() - started,
                    **base,
                )
                self.ledger.record(s.model, cached=True, failed=not result.ok)
                return result
            if s.cache_mode == "replay":
                self.ledger.record(s.model, failed=True)
                return Completion(
                    text=None,
                    error="no recorded reply for this request in the replay cache "
                    "(replay makes no provider calls)",
                    latency_s=time.perf_counter() - started,
                    **base,
                )

        self.validate()
        kwargs: dict[str, Any] = {
            "model": s.model,
            "messages": msgs,
            "timeout": s.timeout_s,
            "num_retries": 0,  # retries are ours, with backoff the ledger can count
            "max_retries": 0,  # and none inside the provider SDK
            "drop_params": True,  # a provider without `seed` (or top_p ...) just ignores it
            **{name: value for name, value in sampling.items() if value is not None},
            **s.extra,
        }
        if seed is not None and s.send_seed:
            kwargs["seed"] = seed
        if s.api_base:
            kwargs["api_base"] = s.api_base
        api_key = self._key()
        if api_key:
            kwargs["api_key"] = api_key

        result = await self._request(kwargs, key, base)
        result.latency_s = time.perf_counter() - started
        self.ledger.record(
            s.model,
            tokens_in=result.tokens_in,
            tokens_out=result.tokens_out,
            cost_usd=result.cost_usd,
            price_known=result.price_known,
            failed=not result.ok,
            provider_calls=result.attempts,
            billed=result.ok,
        )
        if self.cache is not None:
            self.cache.put(
                key,
                model=s.model,
                request={"messages": msgs, "seed": seed, **sampling},
                text=result.text,
                error=result.error,
                finish_reason=result.finish_reason,
                tokens_in=result.tokens_in,
                tokens_out=result.tokens_out,
                cost_usd=result.cost_usd,
            )
        return result

    async def _request(self, kwargs: dict[str, Any], key: str, base: dict[str, Any]) -> Completion:
        s = self.settings
        litellm = _litellm()
        guard_s = s.timeout_s + max(1.0, s.timeout_s / 2)  # in case a provider ignores `timeout`
        calls = 0
        while True:
            calls += 1
            try:
                async with self.in_flight_limit.slot(s.max_in_flight):
                    response = await asyncio.wait_for(litellm.acompletion(**kwargs), guard_s)
            except Exception as exc:  # CancelledError is not an Exception: it propagates
                action, reason, status = classify(
                    exc, model=s.model, provider=self.provider, api_key_env=s.api_key_env
                )
                log.debug("%s: attempt %d failed", s.model, calls, exc_info=True)
                if action == STOP:
                    self.ledger.record(s.model, failed=True, provider_calls=calls)
                    raise LLMStopError(reason, status=status) from exc
                if action == RETRY and calls <= s.max_retries:
                    rng = random.Random(f"{s.jitter_seed}:{key}:{calls}")
                    delay = backoff_delay(
                        calls - 1,
                        base_s=s.backoff_base_s,
                        max_s=s.backoff_max_s,
                        jitter=s.jitter,
                        rng=rng,
                    )
                    retry_after = _retry_after(exc)
                    if retry_after is not None:
                        delay = max(delay, min(retry_after, s.backoff_max_s))
                    log.info(
                        "%s: %s; retry %d/%d in %.2fs", s.model, reason, calls, s.max_retries, delay
                    )
                    await self._sleep(delay)
                    continue
                if action == RETRY:
                    reason = f"{reason} (gave up after {calls} attempts)"
                log.info("%s: request failed: %s", s.model, reason)
                return Completion(text=None, error=reason, attempts=calls, status=status, **base)
            return self._parse(response, calls, base)

    def _parse(self, response: Any, calls: int, base: dict[str, Any]) -> Completion:
        choices = getattr(response, "choices", None)
        if not choices:
            return Completion(
                text=None,
                error="malformed reply from the provider: no choices",
                attempts=calls,
                **base,
            )
        choice = choices[0]
        message = getattr(choice, "message", None)
        text = _reply_text(getattr(message, "content", None))
        usage = getattr(response, "usage", None)
        tokens_in = int(getattr(usage, "prompt_tokens", 0) or 0)
        tokens_out = int(getattr(usage, "completion_tokens", 0) or 0)
        cost, known = self._cost(response)
        return Completion(
            text=text,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            cost_usd=cost,
            price_known=known,
            attempts=calls,
            finish_reason=getattr(choice, "finish_reason", None),
            **base,
        )

    def _cost(self, response: Any) -> tuple[float, bool]:
        """(cost in USD, whether litellm knows the price); (0.0, False) for unpriced models."""
        try:
            cost = _litellm().completion_cost(completion_response=response)
        except Exception:  # model not in litellm's cost map
            return 0.0, False
        return (float(cost), True) if cost is not None else (0.0, False)

    # ----------------------------------------------------------------- lifecycle
    async def aclose(self) -> None:
        """Close the reply cache and litellm's connections for the running event loop.

        Call it when this loop's LLM work is done: it closes the pooled HTTP clients litellm keeps
        for the loop (shared by every litellm user on it), so no socket outlives the loop.
        """
        self.close()
        if "litellm" in sys.modules:
            await close_litellm_clients()

    def close(self) -> None:
        """Close the reply cache (synchronous part of `aclose`)."""
        if self.cache is not None:
            self.cache.close()

    async def __aenter__(self) -> LLMClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


async def close_litellm_clients() -> None:
    """Flush litellm's logging worker and close the HTTP clients it cached for the running loop.

    Uses litellm internals where present (1.7x+); any difference in layout makes this a no-op.
    """
    try:
        from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER

        await asyncio.wait_for(GLOBAL_LOGGING_WORKER.flush(), 5.0)
    except Exception:
        log.debug("litellm logging worker not flushed", exc_info=True)
    try:
        import litellm
        from litellm.caching.evicted_client_closer import running_loop_token
        from litellm.caching.in_memory_cache import InMemoryCache

        cache = litellm.in_memory_llm_clients_cache
        token = running_loop_token()
        if token is None:
            return
        suffix = f"-{token}"
        for cache_key in [k for k in list(cache.cache_dict) if str(k).endswith(suffix)]:
            client = cache.cache_dict.get(cache_key)
            InMemoryCache._remove_key(cache, cache_key)  # drop without scheduling a deferred close
            closer = getattr(client, "aclose", None) or getattr(client, "close", None)
            if closer is None:
                continue
            outcome = closer()
            if asyncio.iscoroutine(outcome):
                await outcome
    except Exception:
        log.debug("litellm clients not closed", exc_info=True)
