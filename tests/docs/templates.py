"""Parameters the guides pass to the CloudFormation and ARM templates, against the templates' own constraints."""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

from tests.cloudformation.cfn import load
from tests.docs.guides import ROOT
from tests.docs.values import literal, placeholder


@cache
def cloudformation(path: str) -> dict[str, Any]:
    parameters: dict[str, Any] = load(ROOT / path)["Parameters"]
    return parameters


@cache
def arm(path: str) -> dict[str, Any]:
    template: dict[str, Any] = json.loads((ROOT / path).read_text(encoding="utf-8"))
    return template


def check_cloudformation(path: str, given: list[tuple[str, str]], where: str, complete: bool) -> list[str]:
    """Every name exists, every literal value passes the template's own checks, and nothing required is missing."""
    if not (ROOT / path).is_file():
        return [f"{where}: template {path} does not exist"]
    spec = cloudformation(path)
    problems = [f"{where}: {path} has no parameter {name}" for name, _ in given if name not in spec]
    for name, value in given:
        if name in spec and literal(value):
            problems += [f"{where}: {name}={value}: {why}" for why in _cfn_value(spec[name], value)]
    if complete:
        missing = sorted(set(spec) - {n for n, _ in given} - {n for n, s in spec.items() if "Default" in s})
        problems += [f"{where}: {path} needs {name}, which is not given" for name in missing]
    return problems


def _cfn_value(spec: dict[str, Any], value: str) -> list[str]:
    problems = []
    if "AllowedValues" in spec and value not in [str(v) for v in spec["AllowedValues"]]:
        problems.append(f"not one of {spec['AllowedValues']}")
    if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
        problems.append(f"does not match AllowedPattern {spec['AllowedPattern']}")
    if not spec.get("MinLength", 0) <= len(value) <= spec.get("MaxLength", 1 << 20):
        problems.append("has a length outside MinLength/MaxLength")
    if spec.get("Type") == "Number":
        if not re.fullmatch(r"-?\d+(\.\d+)?", value):
            problems.append("is not a number")
        elif not spec.get("MinValue", float("-inf")) <= float(value) <= spec.get("MaxValue", float("inf")):
            problems.append("is outside MinValue/MaxValue")
    return problems


def check_arm(path: str, given: list[tuple[str, str]], where: str) -> list[str]:
    if not (ROOT / path).is_file():
        return [f"{where}: template {path} does not exist"]
    spec = arm(path)["parameters"]
    problems = [f"{where}: {path} has no parameter {name}" for name, _ in given if name not in spec]
    for name, value in given:
        if name in spec:
            problems += [f"{where}: {name}={value}: {why}" for why in _arm_value(name, spec[name], value)]
    missing = sorted(set(spec) - {n for n, _ in given} - {n for n, s in spec.items() if "defaultValue" in s})
    return problems + [f"{where}: {path} needs {name}, which is not given" for name in missing]


def _arm_value(name: str, spec: dict[str, Any], value: str) -> list[str]:
    """ARM parameters carry a type and allowed values; a `…ResourceId(s)` one takes resource ids, not GUIDs."""
    says = str(spec.get("metadata", {}).get("description", "")).lower()
    if placeholder(value) and "resource id" in says and "resource id" not in value.lower():
        return [
            f"the template wants a resource id ({spec['metadata']['description']}); the placeholder does not say so"
        ]
    if not literal(value):
        return []
    if "allowedValues" in spec and value not in [str(v) for v in spec["allowedValues"]]:
        return [f"not one of {spec['allowedValues']}"]
    kind = spec.get("type", "string").lower()
    if kind == "bool" and value not in ("true", "false"):
        return ["a bool parameter takes true or false"]
    if kind == "int" and not re.fullmatch(r"-?\d+", value):
        return ["an int parameter takes a whole number"]
    if kind == "array" and not value.startswith("["):
        return ["an array parameter takes a JSON array"]
    return []
