"""Secrets never reach a worker: the child environment is scrubbed and verdict text is redacted."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["is_secret_name", "clean_env", "secret_values", "redact"]

# Any variable whose name contains one of these words is a secret.
_SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "PRIVATE", "COOKIE", "SESSION")

# Provider variables that litellm (and the clouds behind it) read, secret-looking or not
# (endpoints, org ids, regions and profiles identify accounts too).
_PROVIDER_PREFIXES = (
    "OPENAI_", "AZURE_", "ANTHROPIC_", "CLAUDE_", "AWS_", "BEDROCK_", "SAGEMAKER_", "GOOGLE_", "GEMINI_",
    "VERTEX", "PALM_", "COHERE_", "CO_API", "HUGGINGFACE", "HF_", "GROQ_", "MISTRAL_", "CODESTRAL_",
    "TOGETHER", "REPLICATE_", "DEEPSEEK_", "XAI_", "OPENROUTER_", "OR_SITE", "OR_APP", "LITELLM_",
    "FIREWORKS", "PERPLEXITY", "PERPLEXITYAI", "DATABRICKS_", "WATSONX_", "WX_", "NVIDIA_NIM", "NIM_",
    "VOYAGE_", "ANYSCALE_", "CLOUDFLARE_", "CF_", "AI21_", "NLP_CLOUD", "ALEPH_ALPHA", "ALEPHALPHA",
    "DEEPINFRA", "CEREBRAS_", "SAMBANOVA_", "OLLAMA_", "VLLM_API", "GITHUB_", "GH_", "GITLAB_",
    "DASHSCOPE_", "QWEN_", "MOONSHOT_", "ZHIPU", "BAICHUAN", "VOLCENGINE", "ARK_", "FRIENDLIAI",
    "NEBIUS", "NOVITA", "HYPERBOLIC", "JINA_", "INFINITY_", "PREDIBASE", "BASETEN", "CLARIFAI",
    "LANGFUSE_", "LANGSMITH_", "LANGCHAIN_", "HELICONE_", "WANDB_", "NETRC", "KUBECONFIG",
)
_EXACT = {"SSH_AUTH_SOCK", "GPG_AGENT_INFO", "DOCKER_HOST", "DOCKER_CONFIG", "XAUTHORITY", "API_BASE", "API_VERSION"}


def is_secret_name(name: str) -> bool:
    """True for a variable a candidate must never see."""
    upper = name.upper()
    if upper in _EXACT or any(word in upper for word in _SECRET_WORDS) or "AUTH" in upper:
        return True
    return upper.startswith(_PROVIDER_PREFIXES)


def clean_env(env: Mapping[str, str] | None = None, **extra: str) -> dict[str, str]:
    """A copy of ``env`` (default os.environ) without secrets, with ``extra`` set on top."""
    source = os.environ if env is None else env
    out = {k: v for k, v in source.items() if not is_secret_name(k)}
    out.update(extra)
    return out


def secret_values(env: Mapping[str, str] | None = None, min_len: int = 6) -> list[str]:
    """Values of the secret variables of ``env`` (longest first), for redaction."""
    source = os.environ if env is None else env
    values = {v for k, v in source.items() if is_secret_name(k) and len(v) >= min_len}
    return sorted(values, key=len, reverse=True)


def redact(obj: Any, secrets: list[str], mask: str = "[redacted]") -> Any:
    """Replace every occurrence of any secret in the strings of a JSON-like object."""
    if not secrets:
        return obj
    pattern = re.compile("|".join(re.escape(s) for s in secrets))

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return pattern.sub(mask, value)
        if isinstance(value, dict):
            return {walk(k): walk(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(walk(v) for v in value)
        return value

    return walk(obj)
