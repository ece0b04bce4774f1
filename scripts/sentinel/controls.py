"""The compliance map (queries/compliance.json) as the Sentinel content needs it: severity and MITRE per control."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from scripts import arm

COMPLIANCE_PATH = arm.ROOT / "queries" / "compliance.json"
SENTINEL_SEVERITIES = ("Informational", "Low", "Medium", "High")


@dataclass(frozen=True)
class Control:
    """One check keyreport makes, as the analytics rule of that check states it."""

    id: str  # kebab-case check id, e.g. root-access-key
    title: str
    severity: str  # High, Medium, Low or Informational
    remediation: str
    benchmarks: tuple[tuple[str, str], ...]  # (benchmark, control id), e.g. ("AWS FSBP", "IAM.4")
    tactics: tuple[str, ...]
    techniques: tuple[str, ...]

    def benchmark_text(self) -> str:
        """`CIS AWS Foundations v5.0 1.3, AWS FSBP IAM.4`: what the rule's description and tags name."""
        return ", ".join(f"{name} {control}" for name, control in self.benchmarks)


def _control(entry: dict[str, Any], source: Path) -> Control:
    try:
        mitre = entry["mitre"]
        control = Control(
            id=entry["id"],
            title=entry["title"],
            severity=entry["severity"],
            remediation=entry["remediation"],
            benchmarks=tuple(entry.get("benchmarks", {}).items()),
            tactics=tuple(mitre.get("tactics", ())),
            techniques=tuple(mitre.get("techniques", ())),
        )
    except (KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"{source}: a control lacks {error} or is not an object: {entry!r}") from None
    if control.severity not in SENTINEL_SEVERITIES:
        raise ValueError(f"{source}: {control.id}: severity {control.severity!r} is not one of {SENTINEL_SEVERITIES}")
    return control


def load(path: Path = COMPLIANCE_PATH) -> dict[str, Control]:
    """Every control of the map by id, in the map's order."""
    document: Any = json.loads(path.read_text(encoding="utf-8"))
    entries = document["controls"] if isinstance(document, dict) else document
    controls = [_control(entry, path) for entry in entries]
    return {control.id: control for control in controls}


@cache
def controls() -> dict[str, Control]:
    return load()
