"""Every check of the guides' commands, over document texts (the real ones, or a test's altered copies)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from functools import cache

from tests.docs import aws_cli, az_cli, local_tools, rules
from tests.docs.guides import GUIDES, ROOT, Shown, shown

Checker = Callable[[list[str], str, bool], list[str]]
TOOLS: dict[str, Checker] = {
    "aws": aws_cli.check,
    "az": az_cli.check,
    "keyreport": local_tools.check_keyreport,
    "make": lambda words, where, mention: local_tools.check_make(words, where),
}


@cache
def tracked() -> set[str]:
    """The repository's files (git's list, so a file left over in the work tree does not count)."""
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return set(listed.split())


def real() -> dict[str, str]:
    return {doc: (ROOT / doc).read_text(encoding="utf-8") for doc in GUIDES}


def problems(texts: dict[str, str]) -> list[str]:
    """All problems of these documents; the walk-through's variables count as kept for the others."""
    found: list[str] = []
    parsed = {doc: shown(doc, text) for doc, text in texts.items()}
    walkthrough = parsed.get(rules.WALKTHROUGH, [])
    kept = rules.assigned(walkthrough)
    for doc, items in parsed.items():
        found += _commands(items)
        found += _rules(doc, items, texts[doc], set() if doc == rules.WALKTHROUGH else kept)
        found += rules.prose(texts[doc], texts.get(rules.WALKTHROUGH, ""), doc)
        found += rules.files(texts[doc], doc, tracked())
    return found


def _commands(items: list[Shown]) -> list[str]:
    found: list[str] = []
    for item in items:
        checker = TOOLS.get(item.words[0]) if item.words else None
        if checker is not None:
            found += checker(item.words, item.where, item.block < 0)
    return found


def _rules(doc: str, items: list[Shown], text: str, kept: set[str]) -> list[str]:
    return (
        rules.partition(items)
        + rules.certificate_credentials(items)
        + rules.stack_sets(items, text)
        + rules.extensions(items)
        + rules.role_propagation(items)
        + rules.region(items, doc)
        + rules.kept_values(items, doc, kept)
        + rules.persisted(items, doc)
        + rules.arm_outputs(items)
        + rules.preview_api_versions(items)
        + rules.aws_cli_v2(items)
        + rules.roles_exist(items)
        + rules.query_ranges(text, doc)
    )
