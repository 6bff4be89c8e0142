"""The code model behind the LLM proposer: an async litellm client with retries, an in-flight
limit, a token/cost ledger, an on-disk reply cache, and code-block extraction.

Importing this package is cheap: litellm is imported on the first request.
"""

from __future__ import annotations

from evokernel.agent.llm.cache import ReplyCache, request_key
from evokernel.agent.llm.client import Completion, LLMClient, backoff_delay, close_litellm_clients
from evokernel.agent.llm.errors import LLMStopError, classify
from evokernel.agent.llm.extract import CodeBlock, code_blocks, extract_code, missing_code_reason
from evokernel.agent.llm.ledger import ModelUsage, UsageLedger
from evokernel.agent.llm.settings import LLMSettings

__all__ = [
    "LLMSettings",
    "LLMClient",
    "Completion",
    "LLMStopError",
    "UsageLedger",
    "ModelUsage",
    "ReplyCache",
    "request_key",
    "backoff_delay",
    "close_litellm_clients",
    "classify",
    "CodeBlock",
    "code_blocks",
    "extract_code",
    "missing_code_reason",
]
