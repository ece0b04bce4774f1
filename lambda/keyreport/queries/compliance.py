"""The compliance map (queries/compliance.json): every check keyreport makes, with the benchmarks' own ids.

Query headers name a check by its id (`// control: key-rotation-90-days`); the renderers (workbook, alert and
Sentinel rules, KeyReport_Controls, docs) and `make demo` take titles, benchmark ids, severity, remediation and
MITRE ATT&CK from here, so an id can only be wrong in one place. `load` checks the file's shape and raises
LibraryError naming the entry and the field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

from keyreport.errors import LibraryError

MAP_FILE = "compliance.json"
SEVERITIES = ("High", "Medium", "Low", "Informational")  # Sentinel's; Security Hub's Critical is High here
RESOURCES = ("key", "password", "credential", "user", "root", "account", "exception")
# keyreport's own check of the exceptions people write: no benchmark has it, so it alone names none.
OWN_RESOURCE = "exception"
# Microsoft Sentinel's tactic names (analytics rule templates).
TACTICS = (
    "Reconnaissance", "ResourceDevelopment", "InitialAccess", "Execution", "Persistence", "PrivilegeEscalation",
    "DefenseEvasion", "CredentialAccess", "Discovery", "LateralMovement", "Collection", "Exfiltration",
    "CommandAndControl", "Impact",
)  # fmt: skip
_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_TECHNIQUE = re.compile(r"^T[0-9]{4}(?:\.[0-9]{3})?$")
_CONTROL_FIELDS = ("id", "title", "severity", "resource", "remediation", "benchmarks", "mitre")


@dataclass(frozen=True)
class Benchmark:
    name: str  # e.g. "CIS AWS Foundations v6.0": the key in each control's `benchmarks`
    label: str  # e.g. "CIS v6.0": how the ids are written in text ("CIS v6.0 2.13")
    id_pattern: re.Pattern[str]
    source: str


@dataclass(frozen=True)
class Mitre:
    tactics: tuple[str, ...]
    techniques: tuple[str, ...]


@dataclass(frozen=True)
class Control:
    """One check keyreport makes, and the benchmark ids it evidences."""

    id: str
    title: str
    severity: str
    resource: str  # what one finding row is about: key, password, credential (either), user, root, account
    remediation: str
    benchmarks: Mapping[str, str]  # benchmark name -> its id of this control, in the map's benchmark order
    labelled: tuple[str, ...]  # ("CIS v5.0 1.13", "CIS v6.0 2.13", "Security Hub IAM.3")
    mitre: Mitre

    @property
    def text(self) -> str:
        """The benchmark ids as one line: what KeyReport_Findings' Control column and the rules say."""
        return ", ".join(self.labelled)


@dataclass(frozen=True)
class ComplianceMap:
    benchmarks: tuple[Benchmark, ...]
    controls: Mapping[str, Control]  # by id, in the map's order

    def control(self, control_id: str, source: str = "compliance map") -> Control:
        if control_id not in self.controls:
            known = ", ".join(self.controls)
            raise LibraryError(f"{source}: unknown control {control_id!r} (the map has {known})")
        return self.controls[control_id]

    def ids(self, benchmark: str) -> dict[str, str]:
        """control id -> that benchmark's id, for the controls the benchmark has."""
        return {c.id: c.benchmarks[benchmark] for c in self.controls.values() if benchmark in c.benchmarks}


def parse(text: str, source: str = MAP_FILE) -> ComplianceMap:
    """The map's JSON text -> ComplianceMap; any shape error raises LibraryError naming where."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise LibraryError(f"{source}: not JSON: {error}") from None
    if not isinstance(document, dict):
        raise LibraryError(f"{source}: expected an object with benchmarks and controls")
    benchmarks = tuple(
        _benchmark(entry, f"{source}: benchmarks[{n}]") for n, entry in enumerate(_list(document, "benchmarks", source))
    )
    by_name = {benchmark.name: benchmark for benchmark in benchmarks}
    if len(by_name) != len(benchmarks):
        raise LibraryError(f"{source}: a benchmark name is given twice")
    controls: dict[str, Control] = {}
    for n, entry in enumerate(_list(document, "controls", source)):
        control = _control(entry, f"{source}: controls[{n}]", by_name)
        if control.id in controls:
            raise LibraryError(f"{source}: control {control.id!r} is given twice")
        controls[control.id] = control
    _unique_ids(controls.values(), benchmarks, source)
    return ComplianceMap(benchmarks, controls)


@cache
def load() -> ComplianceMap:
    """The shipped map (package data next to the .kql files)."""
    return parse((files("keyreport") / "kql" / MAP_FILE).read_text(encoding="utf-8"))


def _list(document: Mapping[str, Any], key: str, source: str) -> list[Any]:
    value = document.get(key)
    if not isinstance(value, list) or not value:
        raise LibraryError(f"{source}: {key} must be a non-empty list")
    return value


def _text(entry: Mapping[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise LibraryError(f"{where}: {key} must be a non-empty string")
    return value


def _benchmark(entry: Any, where: str) -> Benchmark:
    if not isinstance(entry, dict):
        raise LibraryError(f"{where}: expected an object")
    try:
        pattern = re.compile(_text(entry, "idPattern", where))
    except re.error as error:
        raise LibraryError(f"{where}: idPattern: {error}") from None
    return Benchmark(_text(entry, "name", where), _text(entry, "label", where), pattern, _text(entry, "source", where))


def _control(entry: Any, where: str, benchmarks: Mapping[str, Benchmark]) -> Control:
    if not isinstance(entry, dict):
        raise LibraryError(f"{where}: expected an object")
    unknown = sorted(set(entry) - set(_CONTROL_FIELDS))
    if unknown:
        raise LibraryError(f"{where}: unknown field {unknown[0]!r} (known: {', '.join(_CONTROL_FIELDS)})")
    control_id = _text(entry, "id", where)
    where = f"{where} ({control_id})"
    if not _ID.fullmatch(control_id):
        raise LibraryError(f"{where}: id must be lowercase words joined by dashes")
    severity, resource = _text(entry, "severity", where), _text(entry, "resource", where)
    if severity not in SEVERITIES:
        raise LibraryError(f"{where}: severity {severity!r} is not one of {', '.join(SEVERITIES)}")
    if resource not in RESOURCES:
        raise LibraryError(f"{where}: resource {resource!r} is not one of {', '.join(RESOURCES)}")
    ids = _benchmark_ids(entry.get("benchmarks"), where, benchmarks, own=resource == OWN_RESOURCE)
    ordered = {name: ids[name] for name in benchmarks if name in ids}
    labelled = tuple(f"{benchmarks[name].label} {value}" for name, value in ordered.items())
    return Control(
        control_id,
        _text(entry, "title", where),
        severity,
        resource,
        _text(entry, "remediation", where),
        ordered,
        labelled,
        _mitre(entry.get("mitre"), where),
    )


def _benchmark_ids(value: Any, where: str, benchmarks: Mapping[str, Benchmark], *, own: bool) -> dict[str, str]:
    if own:
        if value != {}:
            own_check = f"a check of resource {OWN_RESOURCE!r} is keyreport's own"
            raise LibraryError(f"{where}: {own_check}: benchmarks must be {{}}")
        return {}
    if not isinstance(value, dict) or not value:
        raise LibraryError(f"{where}: benchmarks must name at least one benchmark's id")
    for name, benchmark_id in value.items():
        if name not in benchmarks:
            raise LibraryError(f"{where}: unknown benchmark {name!r} (known: {', '.join(benchmarks)})")
        if not isinstance(benchmark_id, str) or not benchmarks[name].id_pattern.fullmatch(benchmark_id):
            raise LibraryError(
                f"{where}: {name} id {benchmark_id!r} does not match {benchmarks[name].id_pattern.pattern}"
            )
    return dict(value)


def _mitre(value: Any, where: str) -> Mitre:
    if not isinstance(value, dict):
        raise LibraryError(f"{where}: mitre must be an object with tactics and techniques")
    tactics, techniques = value.get("tactics"), value.get("techniques")
    if not isinstance(tactics, list) or not tactics or not all(t in TACTICS for t in tactics):
        raise LibraryError(f"{where}: mitre tactics must be Sentinel tactic names ({', '.join(TACTICS)})")
    if (
        not isinstance(techniques, list)
        or not techniques
        or not all(isinstance(t, str) and _TECHNIQUE.fullmatch(t) for t in techniques)
    ):
        raise LibraryError(f"{where}: mitre techniques must be ATT&CK ids such as T1078 or T1078.004")
    return Mitre(tuple(tactics), tuple(techniques))


def _unique_ids(controls: Any, benchmarks: tuple[Benchmark, ...], source: str) -> None:
    """Two checks may not claim the same benchmark id: the map would then say one control twice."""
    for benchmark in benchmarks:
        seen: dict[str, str] = {}
        for control in controls:
            benchmark_id = control.benchmarks.get(benchmark.name)
            if benchmark_id is None:
                continue
            if benchmark_id in seen:
                raise LibraryError(
                    f"{source}: {benchmark.label} {benchmark_id} is claimed by {seen[benchmark_id]} and {control.id}"
                )
            seen[benchmark_id] = control.id
