"""Find the candidate kernel in a model's reply: fenced code blocks, python preferred."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["CodeBlock", "code_blocks", "extract_code", "missing_code_reason"]

PYTHON_TAGS = frozenset({"python", "py", "python3", "py3"})

_OPEN = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")


@dataclass(frozen=True)
class CodeBlock:
    """One fenced block: its language tag (lower case, "" if none), body, and whether it was closed."""

    lang: str
    code: str
    closed: bool


def code_blocks(text: str) -> list[CodeBlock]:
    """Every fenced block (``` or ~~~) in reply order, by CommonMark's rules: a closing fence is at
    least as long as the opening one, and an indented fence's indentation is removed from its body."""
    blocks: list[CodeBlock] = []
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    fence = ""
    indent = 0
    lang = ""
    body: list[str] = []
    for line in lines:
        if not fence:
            match = _OPEN.match(line)
            if match:
                fence = match.group("fence")
                indent = len(match.group("indent"))
                info = match.group("info").strip()
                lang = info.split()[0].lower() if info else ""
                lang = lang.lstrip("{.").rstrip("}")
                body = []
            continue
        stripped = line.strip()
        if (
            len(line) - len(line.lstrip(" ")) <= 3
            and stripped
            and set(stripped) == {fence[0]}
            and len(stripped) >= len(fence)
        ):
            blocks.append(CodeBlock(lang, "\n".join(body), closed=True))
            fence = ""
            continue
        body.append(line[min(indent, len(line) - len(line.lstrip(" "))) :])
    if fence:
        blocks.append(CodeBlock(lang, "\n".join(body), closed=False))
    return blocks


def extract_code(text: str | None, *, allow_unclosed: bool = True) -> str | None:
    """The kernel source in a reply, or None when it has no usable fenced block.

    Python-tagged blocks (```python, ```py) win; among them the largest (the last on a tie), since
    models often show a snippet before the full program. Without one, the largest fenced block of any
    language. A block left open at the end of the reply counts only with `allow_unclosed` (pass False
    when the reply was cut off at max_tokens). The result ends with one newline.
    """
    if not text:
        return None
    blocks = [
        b for b in code_blocks(text) if b.code.strip() and (b.closed or allow_unclosed)
    ]
    if not blocks:
        return None
    python = [b for b in blocks if b.lang in PYTHON_TAGS]
    pool = python or blocks
    best = max(reversed(pool), key=lambda b: len(b.code.strip()))
    return best.code.strip("\n").rstrip() + "\n"


def missing_code_reason(text: str | None, finish_reason: str | None = None) -> str:
    """One line for the attempt's lesson when `extract_code` found nothing."""
    if not text or not text.strip():
        if finish_reason == "length":
            return "the reply was empty: max_tokens was used up before any text (raise max_tokens)"
        return "the reply was empty"
    blocks = code_blocks(text)
    if finish_reason == "length" and any(not b.closed for b in blocks):
        return "the reply was cut off at max_tokens inside its code block (raise max_tokens)"
    if blocks and all(not b.code.strip() for b in blocks):
        return "the reply's code blocks are empty"
    return "the reply has no fenced code block (expected ```python ... ```)"
