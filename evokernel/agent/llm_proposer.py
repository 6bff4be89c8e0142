"""The LLM proposer: prompts from evokernel.agent.prompts, completions through the litellm client."""

from __future__ import annotations

from evokernel.agent.llm import LLMClient, LLMSettings, UsageLedger
from evokernel.agent.prompts import build_messages
from evokernel.agent.types import Proposal, ProposalRequest

__all__ = ["LLMProposer"]


class LLMProposer:
    """Asks a code model for each candidate; provider failures become failed proposals, never exceptions.

    The failures no retry can fix (missing or rejected key, unknown model) raise LLMStopError, a
    UserError, which stops the run with one clear line.
    """

    name = "llm"

    def __init__(
        self,
        settings: LLMSettings,
        *,
        max_code_chars: int = 6000,
        client: LLMClient | None = None,
        ledger: UsageLedger | None = None,
    ) -> None:
        self.client = client if client is not None else LLMClient(settings, ledger=ledger)
        self.max_code_chars = max_code_chars

    @property
    def ledger(self) -> UsageLedger:
        """Tokens and cost of every request made so far."""
        return self.client.ledger

    def validate(self) -> None:
        """Check the model and its key before the first attempt (raises LLMStopError)."""
        self.client.validate()

    async def propose(self, request: ProposalRequest) -> Proposal:
        """One prompt, one completion, the code block of the reply."""
        messages = build_messages(request, max_code_chars=self.max_code_chars)
        completion = await self.client.complete(messages, seed=request.seed)
        code = completion.code if completion.ok else None
        return Proposal(
            code=code,
            error=None if code is not None else completion.no_code_reason(),
            meta={"model": completion.model or self.client.model, "provider_failed": not completion.ok},
            **completion.accounting(),
        )

    async def aclose(self) -> None:
        """Close the provider connections."""
        await self.client.aclose()
