"""`keyreport …` against keyreport's own argparse parser, and `make …` against the Makefile's targets and variables."""

from __future__ import annotations

import argparse
import re
from functools import cache

from keyreport.cli import _parser
from keyreport.queries.catalogue import library
from tests.docs.guides import ROOT
from tests.docs.templates import check_cloudformation
from tests.docs.values import literal, pairs


@cache
def _subcommands() -> dict[str, argparse.ArgumentParser]:
    actions = [a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(actions[0].choices)


def check_keyreport(words: list[str], where: str, mention: bool) -> list[str]:
    top = {flag for action in _parser()._actions for flag in action.option_strings}  # --help, --version
    if len(words) == 2 and words[1] in top:
        return []
    if len(words) < 2 or words[1] not in _subcommands():
        return [] if mention and len(words) < 2 else [f"{where}: keyreport has no command {words[1:2]}"]
    parser = _subcommands()[words[1]]
    options = {flag: action for action in parser._actions for flag in action.option_strings}
    positionals = [a for a in parser._actions if not a.option_strings]
    problems, given, rest = _options(words[2:], options, where)
    if not mention:
        missing = [a for a in parser._actions if a.required and a.option_strings and not set(a.option_strings) & given]
        problems += [f"{where}: {a.option_strings[-1]} is required" for a in missing]
        if len(rest) != len(positionals):
            problems.append(f"{where}: takes {len(positionals)} positional argument(s), given {rest}")
    if words[1] == "query" and rest and literal(rest[0]) and rest[0] not in library():
        problems.append(f"{where}: no shipped query {rest[0]} (keyreport queries)")
    return problems


def _options(
    words: list[str], options: dict[str, argparse.Action], where: str
) -> tuple[list[str], set[str], list[str]]:
    problems: list[str] = []
    given: set[str] = set()
    rest: list[str] = []
    expect: argparse.Action | None = None
    for word in words:
        if expect is not None:
            if expect.choices and literal(word) and word not in expect.choices:
                problems.append(f"{where}: {expect.option_strings[-1]} {word} is not one of {list(expect.choices)}")
            expect = None
        elif word.startswith("-"):
            action = options.get(word)
            if action is None:
                problems.append(f"{where}: no option {word}")
                continue
            given.add(word)
            expect = action if action.nargs != 0 else None
        else:
            rest.append(word)
    return problems, given, rest


@cache
def _makefile() -> tuple[frozenset[str], frozenset[str]]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = {m[1] for m in re.finditer(r"^([A-Za-z][\w-]*)\s*:(?!=)", text, re.MULTILINE)}
    variables = set(re.findall(r"\$\(([A-Z_][A-Z0-9_]*)\)", text))
    return frozenset(targets), frozenset(variables)


def check_make(words: list[str], where: str) -> list[str]:
    targets, variables = _makefile()
    problems = []
    for word in words[1:]:
        if "=" in word:
            name = word.split("=", 1)[0]
            if name not in variables:
                problems.append(f"{where}: the Makefile reads no variable {name}")
        elif word not in targets:
            problems.append(f"{where}: the Makefile has no target {word} (make takes targets and VAR=value)")
    if "deploy" in words[1:]:
        given = [("CodeS3Bucket", "bucket"), ("CodeS3Key", "key")]  # `make deploy` passes these itself
        given += pairs([w.split("=", 1)[1] for w in words if w.startswith("PARAMS=")])
        problems += check_cloudformation("cloudformation/template.yaml", given, where, complete=True)
    return problems
