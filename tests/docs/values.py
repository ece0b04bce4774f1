"""What a guide's argument values are: literal, a placeholder for the reader, or known only at run time."""

from __future__ import annotations

import re

import jmespath
from jmespath.exceptions import JMESPathError

from tests.docs.shell import SUBSTITUTION

_PLACEHOLDER = re.compile(r"<[^<>]+>|\.\.\.|…")


def dynamic(value: str) -> bool:
    """A shell variable or a command's output: its value is not on the page."""
    return "$" in value or SUBSTITUTION in value


def placeholder(value: str) -> bool:
    """`<old keyId>`, `o-...`: the reader fills it in."""
    return bool(_PLACEHOLDER.search(value))


def literal(value: str) -> bool:
    return not dynamic(value) and not placeholder(value)


def resolve(value: str, known: dict[str, str]) -> str:
    """Substitutes variables the guide set to a literal earlier, so their values are checked where they are used."""

    def one(match: re.Match[str]) -> str:
        return known.get(match[1], match[0])

    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", one, value)


def pairs(words: list[str]) -> list[tuple[str, str]]:
    """`K=V K2=V2` (what --parameter-overrides, make's PARAMS and az's --parameters take)."""
    found = []
    for word in words:
        for part in re.split(r"\s+(?=[A-Za-z_]\w*=)", word.strip()):  # PARAMS="A=1 B=2" is one shell word
            if "=" in part:
                key, value = part.split("=", 1)
                found.append((key, value))
    return found


def shorthand(value: str) -> dict[str, str]:
    """The AWS CLI's shorthand syntax for one structure: `Key=Value,Key2=Value2`."""
    return dict(part.split("=", 1) for part in value.split(",") if "=" in part)


def query_problems(given: dict[str, list[str]], where: str) -> list[str]:
    """`--query` takes JMESPath, in the AWS CLI and az alike: a literal one must compile."""
    problems = []
    for value in given.get("--query", [])[:1]:
        if literal(value):
            try:
                jmespath.compile(value)
            except JMESPathError as error:
                problems.append(f"{where}: --query {value} is not JMESPath ({str(error).splitlines()[0]})")
    return problems
