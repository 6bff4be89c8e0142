"""Code-block extraction from model replies (no network, no litellm)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evokernel.agent.llm import code_blocks, extract_code, missing_code_reason


def test_python_fence_is_preferred_over_a_larger_plain_block() -> None:
    reply = "```\n" + "long plain text\n" * 20 + "```\n```python\nx = 1\n```"
    assert extract_code(reply) == "x = 1\n"


@pytest.mark.parametrize("tag", ["python", "Python", "py", "python3", "{.python}"])
def test_python_tags(tag: str) -> None:
    reply = f"```\nmuch longer plain block here\n```\n```{tag}\ny = 2\n```"
    assert extract_code(reply) == "y = 2\n"


def test_largest_python_block_wins_and_ties_go_to_the_last() -> None:
    assert extract_code("```python\na = 1\n```\n```python\nb = 22\n```\n```python\nc = 1\n```") == "b = 22\n"
    assert extract_code("```python\na = 1\n```\n```python\nb = 2\n```") == "b = 2\n"


def test_tilde_fences_longer_fences_and_indentation() -> None:
    assert extract_code("~~~python\nt = 1\n~~~") == "t = 1\n"
    nested = "````markdown\n```python\ninner = 1\n```\n````"
    assert code_blocks(nested)[0].lang == "markdown"
    assert extract_code(nested) == "```python\ninner = 1\n```\n"
    assert extract_code("1. step\n   ```python\n   def f():\n       return 3\n   ```") == "def f():\n    return 3\n"


def test_crlf_and_surrounding_blank_lines() -> None:
    assert extract_code("```python\r\n\r\nimport triton\r\n\r\n```\r\n") == "import triton\n"


def test_indentation_inside_the_block_is_kept() -> None:
    code = "class ModelNew:\n    def forward(self, x):\n        return x\n"
    assert extract_code(f"```python\n{code}```") == code


def test_unclosed_block() -> None:
    reply = "```python\nimport triton\nx = 1"
    assert code_blocks(reply)[0].closed is False
    assert extract_code(reply) == "import triton\nx = 1\n"
    assert extract_code(reply, allow_unclosed=False) is None


@pytest.mark.parametrize("reply", [None, "", "just prose", "```python\n\n```", "inline `code` only"])
def test_no_code(reply: str | None) -> None:
    assert extract_code(reply) is None


@pytest.mark.parametrize(
    ("reply", "finish_reason", "reason"),
    [
        (None, "stop", "the reply was empty"),
        ("  ", "length", "the reply was empty: max_tokens was used up before any text (raise max_tokens)"),
        ("```python\nx = ", "length", "the reply was cut off at max_tokens inside its code block (raise max_tokens)"),
        ("```python\n```", "stop", "the reply's code blocks are empty"),
        ("I cannot help", "stop", "the reply has no fenced code block (expected ```python ... ```)"),
    ],
)
def test_missing_code_reasons(reply: str | None, finish_reason: str, reason: str) -> None:
    assert missing_code_reason(reply, finish_reason) == reason


_code_line = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="`~"), max_size=40
)


@given(
    lines=st.lists(_code_line, min_size=1, max_size=12).filter(lambda ls: "".join(ls).strip()),
    before=st.text(alphabet="abc .,\n", max_size=30),
    after=st.text(alphabet="abc .,\n", max_size=30),
)
def test_any_fenced_program_comes_back_exactly(lines: list[str], before: str, after: str) -> None:
    code = "\n".join(line.rstrip() for line in lines).strip("\n")
    if not code.strip():
        return
    reply = f"{before}\n```python\n{code}\n```\n{after}"
    assert extract_code(reply) == code.rstrip() + "\n"
