"""What a provider error means for a run: stop it, retry the request, or fail this attempt.

The rule (the contract callers rely on; mirror it in docs/architecture.md when it changes):

- stop (raise `LLMStopError`, a `UserError`): nothing later in the run can succeed until the user
  changes something. Missing key (checked before any request), 401 bad key, 403 no access,
  404 unknown model or wrong `api_base` path, 402 / quota exhausted (429 `insufficient_quota`),
  a model string litellm cannot route, a parameter the provider refuses outright.
- retry (exponential backoff with seeded jitter, at most `max_retries` times; then fail): 429 rate
  limit, 408 / timeouts, 5xx server errors, connection failures.
- fail (no retry; the attempt is recorded as failed with a one-line reason): malformed JSON, empty
  `choices`, other 4xx (400 bad request, context window exceeded, content policy, 413, 422), and
  anything unexpected from litellm.

Classification looks at class names along the exception's MRO and its `status_code`, so it does not
depend on importing litellm (and works across litellm versions).
"""

from __future__ import annotations

import json
import re

from evokernel.errors import UserError

__all__ = ["LLMStopError", "STOP", "RETRY", "FAIL", "classify", "key_variable", "one_line"]

STOP = "stop"
RETRY = "retry"
FAIL = "fail"

# provider -> the environment variable litellm reads its key from (messages only; litellm reads it)
_KEY_VARIABLES = {
    "openai": "OPENAI_API_KEY",
    "text-completion-openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "gemini": "GEMINI_API_KEY",
    "azure": "AZURE_API_KEY",
    "mistral": "MISTRAL_API_KEY",
    "codestral": "CODESTRAL_API_KEY",
    "deepseek": "DEEPSEEK_API_KEY",
    "groq": "GROQ_API_KEY",
    "together_ai": "TOGETHERAI_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
    "xai": "XAI_API_KEY",
    "fireworks_ai": "FIREWORKS_AI_API_KEY",
    "cohere": "COHERE_API_KEY",
    "cohere_chat": "COHERE_API_KEY",
    "deepinfra": "DEEPINFRA_API_KEY",
    "perplexity": "PERPLEXITYAI_API_KEY",
    "huggingface": "HUGGINGFACE_API_KEY",
    "moonshot": "MOONSHOT_API_KEY",
    "dashscope": "DASHSCOPE_API_KEY",
    "cerebras": "CEREBRAS_API_KEY",
    "nvidia_nim": "NVIDIA_NIM_API_KEY",
    "bedrock": "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY",
    "vertex_ai": "GOOGLE_APPLICATION_CREDENTIALS",
}

_PREFIXES = re.compile(
    r"^(?:litellm\.\w+:\s*|\w*(?:Error|Exception)(?:\s*-)?:?\s*|OpenAIException\s*-\s*|APITimeoutError\s*-\s*)+"
)


class LLMStopError(UserError):
    """A provider failure no retry can fix (bad key, unknown model): the run stops with this message."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def key_variable(provider: str, api_key_env: str | None = None) -> str:
    """The environment variable that holds the key for `provider` (for messages)."""
    if api_key_env:
        return api_key_env
    return _KEY_VARIABLES.get(provider, f"the API key variable of provider '{provider}'")


def one_line(text: object, limit: int = 240) -> str:
    """The first meaningful line of an error text, without litellm's class-name prefixes."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    line = lines[0] if lines else ""
    line = _PREFIXES.sub("", line).strip() or line
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _status(exc: BaseException) -> int | None:
    for attr in ("status_code", "http_status"):
        value = getattr(exc, attr, None)
        try:
            if value is not None:
                return int(value)
        except (TypeError, ValueError):
            pass
    return None


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 10:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _error_codes(exc: BaseException) -> set[str]:
    """The provider's error `type` / `code` values (OpenAI-style body), along the chain."""
    codes: set[str] = set()
    for link in _chain(exc):
        body = getattr(link, "body", None)
        if isinstance(body, dict):
            inner = body.get("error", body)
            if isinstance(inner, dict):
                codes.update(str(inner[k]) for k in ("type", "code") if inner.get(k))
    return codes


def _malformed(exc: BaseException) -> bool:
    for link in _chain(exc):
        if isinstance(link, json.JSONDecodeError):
            return True
        text = str(link)
        if "Empty or invalid response" in text or "Invalid JSON" in text:
            return True
    return False


def classify(
    exc: BaseException, *, model: str, provider: str, api_key_env: str | None = None
) -> tuple[str, str, int | None]:
    """(action, one-line reason, HTTP status) for an exception raised by a completion request."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    status = _status(exc)
    detail = one_line(exc) or type(exc).__name__
    variable = key_variable(provider, api_key_env)

    if "UnsupportedParamsError" in names:
        return STOP, f"model '{model}' refuses a sampling setting: {detail}", status
    if "AuthenticationError" in names or status == 401:
        return (
            STOP,
            f"{provider} rejected the API key for model '{model}' (401): check {variable} ({detail})",
            401,
        )
    if "PermissionDeniedError" in names or status == 403:
        return (
            STOP,
            f"no access to model '{model}' (403): check that the key in {variable} may use it ({detail})",
            403,
        )
    if "NotFoundError" in names or status == 404:
        return (
            STOP,
            f"model '{model}' not found (404): check the model name and api_base ({detail})",
            404,
        )
    if "BudgetExceededError" in names or "PaymentRequiredError" in names or status == 402:
        return STOP, f"no credit left for model '{model}': {detail}", status
    if (status == 429 or "RateLimitError" in names) and "insufficient_quota" in _error_codes(exc):
        return STOP, f"quota exhausted for model '{model}' (429 insufficient_quota): {detail}", 429
    if "ContextWindowExceededError" in names:
        return FAIL, f"prompt too long for the context window of '{model}': {detail}", status
    if "ContentPolicyViolationError" in names:
        return FAIL, f"refused by the provider's content policy: {detail}", status
    if _malformed(exc):
        return FAIL, f"malformed reply from the provider: {detail}", status
    if "RateLimitError" in names or status == 429:
        return RETRY, f"rate limited (429): {detail}", 429
    if (
        "Timeout" in names
        or "APITimeoutError" in names
        or isinstance(exc, TimeoutError)
        or status in (408, 504)
    ):
        return RETRY, f"request timed out: {detail}", status
    if status is not None and status >= 500:
        return RETRY, f"server error ({status}): {detail}", status
    if "APIConnectionError" in names or isinstance(exc, ConnectionError):
        return RETRY, f"cannot reach the provider: {detail}", status
    if status is not None and 400 <= status < 500:
        return FAIL, f"request rejected ({status}): {detail}", status
    if "LiteLLMUnknownProvider" in names or "LLM Provider NOT provided" in str(exc):
        return STOP, f"litellm cannot route model '{model}': {detail}", status
    return FAIL, f"unexpected reply from the provider ({type(exc).__name__}: {detail})", status
