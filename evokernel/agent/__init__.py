"""The agent: drafting/refining loop with value-driven memory, prompts, knowledge pack and proposers.

The public names (Agent, synthesize, AgentSettings, ...) are re-exported lazily by ``evokernel``.
"""
