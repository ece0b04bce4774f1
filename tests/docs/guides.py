"""The commands the guides show: shell code blocks and inline code, each command with where it stands."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tests.docs.shell import Command, read

ROOT = Path(__file__).resolve().parents[2]
GUIDES = (
    "README.md",
    "docs/deployment.md",
    "docs/authentication.md",
    "docs/queries.md",
    "docs/migration.md",
    "docs/security.md",
    "docs/sentinel.md",
)
TOOLS = ("aws", "az", "keyreport", "make")
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.DOTALL | re.MULTILINE)
_SHELL = {"sh", "bash", "shell", "console"}
_INLINE = re.compile(r"(?<!`)`((?:[^`\n]|\n(?!\n))+)`(?!`)")  # within one paragraph
_HEADING = re.compile(r"^#+ (.*)$", re.MULTILINE)


@dataclass(frozen=True)
class Shown:
    """A command as a guide shows it."""

    doc: str
    line: int
    heading: str
    block: int  # which code block of the document; -1 for inline code in prose
    command: Command

    @property
    def words(self) -> list[str]:
        return self.command.words

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}: {' '.join(self.words)[:120]}"


def shown(doc: str, text: str) -> list[Shown]:
    """Every command of a document, in reading order: fenced shell blocks, and inline code that starts with a tool."""
    found: list[tuple[int, int, Command]] = []
    prose = text
    for number, fence in enumerate(_FENCE.finditer(text)):
        prose = prose[: fence.start()] + re.sub(r"[^\n]", " ", fence[0]) + prose[fence.end() :]
        if fence[1] in _SHELL:
            first = text.count("\n", 0, fence.start(2)) + 1
            try:
                found += [(c.line, number, c) for c in read(fence[2], first)]
            except (ValueError, IndexError, AssertionError) as error:
                raise AssertionError(f"{doc}:{first}: this shell block does not parse ({error!r})") from None
    for span in _INLINE.finditer(prose):
        line = text.count("\n", 0, span.start()) + 1
        found += [(line, -1, c) for c in _inline(span[1].replace("\n", " "), line)]
    headings = [(text.count("\n", 0, h.start()) + 1, h[1]) for h in _HEADING.finditer(prose)]
    return [Shown(doc, line, _heading(headings, line), block, c) for line, block, c in sorted(found, key=_order)]


def _inline(code: str, line: int) -> list[Command]:
    """Inline code that runs a tool (`aws …`, `X=$(az …)`); other inline code is prose and may not parse."""
    try:
        commands = read(code, line)
    except (ValueError, IndexError, AssertionError):
        if code.split(" ", 1)[0] in TOOLS:
            raise
        return []
    return [c for c in commands if len(c.words) > 1 and c.words[0] in TOOLS]


def _order(item: tuple[int, int, Command]) -> int:
    return item[0]


def _heading(headings: list[tuple[int, str]], line: int) -> str:
    above = [title for at, title in headings if at <= line]
    return above[-1] if above else ""


def all_shown() -> dict[str, list[Shown]]:
    return {doc: shown(doc, (ROOT / doc).read_text(encoding="utf-8")) for doc in GUIDES}
