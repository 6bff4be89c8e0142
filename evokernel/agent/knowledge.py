"""The knowledge pack: Triton notes written by the team, stored as knowledge items at first use of a memory.

Notes live as text files in ``evokernel/agent/knowledge/``: a header of ``key: value`` lines
(title, backend, keywords), a ``---`` line, then the note. Knowledge items are retrieved by relevance
only and never receive Q updates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from evokernel.memory import Memory, NewItem

__all__ = ["Note", "PACK_VERSION", "load_notes", "ensure_knowledge"]

PACK_VERSION = "1"
NOTES_DIR = Path(__file__).with_name("knowledge")


@dataclass(frozen=True)
class Note:
    """One note of the pack."""

    name: str
    title: str
    backend: str
    keywords: tuple[str, ...]
    text: str


def _parse(path: Path) -> Note:
    header, sep, body = path.read_text(encoding="utf-8").partition("\n---\n")
    if not sep:
        raise ValueError(f"{path}: knowledge note without a '---' line after its header")
    fields: dict[str, str] = {}
    for line in header.splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return Note(
        name=path.stem,
        title=fields["title"],
        backend=fields.get("backend", "any"),
        keywords=tuple(k.strip() for k in fields.get("keywords", "").split(",") if k.strip()),
        text=body.strip(),
    )


def load_notes() -> list[Note]:
    """Every note shipped with the package, sorted by name."""
    return [_parse(p) for p in sorted(NOTES_DIR.glob("*.md"))]


def ensure_knowledge(memory: Memory) -> int:
    """Add the notes of this pack version that the memory does not hold yet; returns how many were added."""
    present = {
        (item.meta.get("note"), item.meta.get("pack")) for item in memory.items(kind="knowledge")
    }
    new = [
        NewItem(
            kind="knowledge",
            task_id="",
            task_name="",
            backend=note.backend,
            stage="",
            code=note.text,
            lesson=note.title,
            outcome={},
            reward=None,
            parent_id=None,
            run_id=None,
            meta={"note": note.name, "pack": PACK_VERSION},
            keywords=list(note.keywords),
        )
        for note in load_notes()
        if (note.name, PACK_VERSION) not in present
    ]
    if new:
        memory.add(new)
    return len(new)
