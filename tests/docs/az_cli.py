"""`az …` commands against az_commands.json, the pinned options of azure-cli's own parsers (source inside)."""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

from tests.docs.guides import ROOT
from tests.docs.templates import check_arm
from tests.docs.values import literal, pairs, placeholder, query_problems

# Values whose form az checks only when it sends them: the form azure-cli's help states.
FORMS = {
    ("monitor log-analytics workspace table update", "--columns"): (r"[^=\s]+=[^=\s]+", "name=type"),
}


@cache
def table() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((ROOT / "tests/docs/az_commands.json").read_text(encoding="utf-8"))
    return document


def command_name(words: list[str]) -> str:
    """The longest run of leading words that is an az command in the table ('' when none is)."""
    commands = table()["commands"]
    plain = words[1 : next((i for i, w in enumerate(words) if w.startswith("-")), len(words))]
    for n in range(len(plain), 0, -1):
        if " ".join(plain[:n]) in commands:
            return " ".join(plain[:n])
    return ""


def check(words: list[str], where: str, mention: bool) -> list[str]:
    name = command_name(words)
    if not name:
        return [
            f"{where}: not an az command of {table()['source']}; a new one? refresh tests/docs/az_commands.json "
            "as README.md (Development) says"
        ]
    spec = table()["commands"][name]["options"]
    flags = {flag: flag for flag in spec} | {alias: flag for flag, s in spec.items() for alias in s.get("aliases", [])}
    given, problems = _split(words[1 + len(name.split()) :], spec, flags, where)
    if not mention and "--ids" not in given:
        needed = sorted(flag for flag, s in spec.items() if s.get("required") and flag not in given)
        problems += [f"{where}: {flag} is required" for flag in needed]
    for flag, values in given.items():
        problems += _values(name, flag, spec.get(flag, {}), values, where)
    problems += query_problems(given, where)
    if name == "deployment group create" and given.get("--template-file"):
        problems += check_arm(given["--template-file"][0], pairs(given.get("--parameters", [])), where)
    return problems


def _split(
    words: list[str], spec: dict[str, Any], flags: dict[str, str], where: str
) -> tuple[dict[str, list[str]], list[str]]:
    given: dict[str, list[str]] = {}
    problems: list[str] = []
    flag = ""
    for word in words:
        if word.startswith("-") and not re.fullmatch(r"-\d+", word):
            flag = flags.get(word, "")
            if not flag:
                problems.append(f"{where}: no option {word}")
                continue
            given[flag] = []
            flag = "" if spec[flag].get("nargs") == 0 else flag
        elif flag and (spec[flag].get("nargs") in ("+", "*") or not given[flag] or flag == "--parameters"):
            given[flag].append(word)
        else:
            problems.append(f"{where}: {word} is not an option's value")
    return given, problems


def _values(name: str, flag: str, spec: dict[str, Any], values: list[str], where: str) -> list[str]:
    problems = []
    for value in values:
        if spec.get("choices") and literal(value) and value.lower() not in [c.lower() for c in spec["choices"]]:
            problems.append(f"{where}: {flag} {value} is not one of {spec['choices']}")
        form = FORMS.get((name, flag))
        if form and (literal(value) or placeholder(value)) and not re.search(form[0], value):
            problems.append(f"{where}: {flag} takes {form[1]}, not {value}")
    return problems
