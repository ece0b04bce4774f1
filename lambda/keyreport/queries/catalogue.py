"""The shipped KQL library: one `.kql` file per query, each opening with a header of `// key: value` lines.

The files live in the repository's `queries/` folder; `keyreport/kql` is a link to it, so the same files
are package data of the installed package and of the Lambda zip (one source, nothing to keep in step).

    // id: rotation-due                      stable name, = the file name; `keyreport query rotation-due`
    // title: Active keys older than 90 days
    // description: One or more sentences;
    //   continuation lines are indented.
    // visualization: table                  table, timechart, barchart or tiles
    // timespan: P2D                         default time range (ISO 8601 duration)
    // local: duckdb-kql                     runs on the local engine, or `no: <why not>`
    // control: key-rotation-90-days         optional: the checks of the compliance map (queries/compliance.json)
                                             whose failures it lists; their benchmark ids, severity and
                                             remediation come from the map

`functions/<Name>.kql` hold the workspace functions the queries start from (`KeyReport_CurrentKeys()` ...):
the body only, under the same header without `visualization` and `timespan`; the id is the function's name.
azure/functions.json deploys them as workspace functions (saved searches with a function alias).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable

from keyreport.errors import LibraryError, UnknownQuery
from keyreport.queries import compliance

VISUALIZATIONS = ("table", "timechart", "barchart", "tiles")
REQUIRED_KEYS = ("id", "title", "description", "visualization", "timespan", "local")
COMPLIANCE_KEYS = ("control",)  # map ids (queries/compliance.json), comma-separated
FUNCTION_KEYS = ("id", "title", "description", "local")
SEVERITIES = compliance.SEVERITIES
LOCAL_ENGINE = "duckdb-kql"
FUNCTIONS_FOLDER = "functions"
EXTERNAL_TABLES_FILE = "cloudtrail.json"  # tables other connectors fill that queries join (AWSCloudTrail)

_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_KEY_LINE = re.compile(r"^// ?([a-z]+):\s*(.*)$")
_CONTINUATION = re.compile(r"^//\s{2,}(\S.*)$")
_FUNCTION_NAME = re.compile(r"^KeyReport_[A-Z][A-Za-z]*$")
_CALL = re.compile(r"\b(KeyReport_[A-Za-z]+)\(\)")
_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")


@dataclass(frozen=True)
class Query:
    id: str
    title: str
    description: str
    visualization: str
    timespan: timedelta
    local: str  # LOCAL_ENGINE, or "no: <reason>"
    text: str  # the query itself, header removed
    source: str  # file name, for messages
    control_ids: tuple[str, ...] = ()  # checks of the compliance map whose failures the query lists

    @property
    def checks(self) -> tuple[compliance.Control, ...]:
        controls = compliance.load().controls
        return tuple(controls[control_id] for control_id in self.control_ids)

    @property
    def controls(self) -> tuple[str, ...]:
        """The benchmark ids of its checks: ("CIS v5.0 1.13", "CIS v6.0 2.13", "Security Hub IAM.3")."""
        return tuple(label for check in self.checks for label in check.labelled)

    @property
    def severity(self) -> str | None:
        """The highest severity of its checks (None for a query that lists no control's failures)."""
        levels = [compliance.SEVERITIES.index(check.severity) for check in self.checks]
        return compliance.SEVERITIES[min(levels)] if levels else None

    @property
    def remediation(self) -> str | None:
        return " ".join(check.remediation for check in self.checks) or None

    @property
    def runs_locally(self) -> bool:
        return self.local == LOCAL_ENGINE

    @property
    def not_local_reason(self) -> str | None:
        return None if self.runs_locally else self.local.removeprefix("no:").strip()


@dataclass(frozen=True)
class Function:
    """A workspace function the queries call: `KeyReport_CurrentKeys()` and the like (no parameters)."""

    id: str  # the function's name
    title: str
    description: str
    local: str
    text: str  # the body, header removed
    source: str

    def definition(self) -> str:
        """As a stored function is written for duckdb-kql (and `.create-or-alter function`)."""
        return f"function {self.id}() {{\n{self.text}}}"


def parse_duration(text: str) -> timedelta:
    """An ISO 8601 duration in days, hours, minutes and seconds (P14D, PT26H, P1DT12H)."""
    canonical = text.strip().upper()
    match = _DURATION.fullmatch(canonical)
    if not match or canonical.endswith(("P", "T")):
        raise ValueError(f"{text!r} is not an ISO 8601 duration such as P2D, PT12H or P1DT6H")
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    duration = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    if duration <= timedelta(0):
        raise ValueError(f"{text!r} is not a positive duration")
    return duration


def format_duration(duration: timedelta) -> str:
    seconds = int(duration.total_seconds())
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    time = "".join(f"{value}{unit}" for value, unit in ((hours, "H"), (minutes, "M"), (seconds, "S")) if value)
    return "P" + (f"{days}D" if days else "") + (f"T{time}" if time else "")


def parse(text: str, source: str) -> Query:
    """One query file's text -> Query; `source` (the file name) must be `<id>.kql`."""
    header, body = _split(text, source, REQUIRED_KEYS + COMPLIANCE_KEYS, REQUIRED_KEYS)
    control_ids = _checked_controls(header, source)
    return Query(
        id=_checked_id(header["id"], source),
        title=header["title"],
        description=header["description"],
        visualization=_checked_visualization(header["visualization"], source),
        timespan=_checked_timespan(header["timespan"], source),
        local=_checked_local(header["local"], source),
        text=body,
        source=source,
        control_ids=control_ids,
    )


def parse_function(text: str, source: str) -> Function:
    """One function file's text -> Function; `source` must be `<Name>.kql`, Name = KeyReport_<Word...>."""
    header, body = _split(text, source, FUNCTION_KEYS, FUNCTION_KEYS)
    name = header["id"]
    if not _FUNCTION_NAME.fullmatch(name):
        raise LibraryError(f"{source}: function name {name!r} must be KeyReport_ and a PascalCase word")
    if source != f"{name}.kql":
        raise LibraryError(f"{source}: function {name!r} must match the file name ({name}.kql)")
    return Function(name, header["title"], header["description"], _checked_local(header["local"], source), body, source)


def _split(text: str, source: str, allowed: tuple[str, ...], required: tuple[str, ...]) -> tuple[dict[str, str], str]:
    """The `// key: value` header (checked against `allowed` and `required`) and the KQL after it."""
    lines = text.splitlines()
    header: dict[str, str] = {}
    key: str | None = None
    body_start = len(lines)
    for number, line in enumerate(lines, start=1):
        if not line.startswith("//"):
            body_start = number - 1
            break
        continuation = _CONTINUATION.fullmatch(line)
        if continuation and key is not None:
            header[key] += " " + continuation.group(1).strip()
            continue
        match = _KEY_LINE.fullmatch(line)
        if not match:
            raise LibraryError(f"{source}:{number}: expected `// key: value` in the header, found {line!r}")
        key, value = match.groups()
        if key not in allowed:
            raise LibraryError(f"{source}:{number}: unknown header key {key!r} (known: {', '.join(allowed)})")
        if key in header:
            raise LibraryError(f"{source}:{number}: header key {key!r} given twice")
        header[key] = value.strip()
    missing = [name for name in required if not header.get(name)]
    if missing:
        raise LibraryError(f"{source}: header lacks {', '.join(missing)}")
    body = "\n".join(lines[body_start:]).strip()
    if not body:
        raise LibraryError(f"{source}: no query after the header")
    return header, body + "\n"


def _checked_controls(header: dict[str, str], source: str) -> tuple[str, ...]:
    if not header.get("control"):
        return ()
    ids = tuple(part.strip() for part in header["control"].split(","))
    the_map = compliance.load()
    for control_id in ids:
        the_map.control(control_id, source)
    return ids


def _checked_id(value: str, source: str) -> str:
    if not _ID.fullmatch(value):
        raise LibraryError(f"{source}: id {value!r} must be lowercase words joined by dashes")
    if source != f"{value}.kql":
        raise LibraryError(f"{source}: id {value!r} must match the file name ({value}.kql)")
    return value


def _checked_visualization(value: str, source: str) -> str:
    if value not in VISUALIZATIONS:
        raise LibraryError(f"{source}: visualization {value!r} is not one of {', '.join(VISUALIZATIONS)}")
    return value


def _checked_timespan(value: str, source: str) -> timedelta:
    try:
        return parse_duration(value)
    except ValueError as error:
        raise LibraryError(f"{source}: timespan {error}") from None


def _checked_local(value: str, source: str) -> str:
    if value == LOCAL_ENGINE or (value.startswith("no:") and value.removeprefix("no:").strip()):
        return value
    raise LibraryError(f"{source}: local must be {LOCAL_ENGINE!r} or 'no: <why the local engine cannot run it>'")


@cache
def external_tables() -> dict[str, list[dict[str, str]]]:
    """Tables a query may join that keyreport does not write (AWSCloudTrail): name -> columns (name, type)."""
    declared = json.loads((library_folder() / EXTERNAL_TABLES_FILE).read_text(encoding="utf-8"))
    return {declared["table"]: declared["columns"]}


def library_folder() -> Traversable:
    return files("keyreport") / "kql"


@cache
def library() -> dict[str, Query]:
    """Every shipped query by id, in file-name order."""
    entries = sorted((entry for entry in library_folder().iterdir() if entry.name.endswith(".kql")), key=_name)
    queries = [parse(entry.read_text(encoding="utf-8"), entry.name) for entry in entries]
    return {query.id: query for query in queries}


@cache
def functions() -> dict[str, Function]:
    """Every shipped workspace function by name, in file-name order."""
    folder = library_folder() / FUNCTIONS_FOLDER
    entries = sorted((entry for entry in folder.iterdir() if entry.name.endswith(".kql")), key=_name)
    parsed = [parse_function(entry.read_text(encoding="utf-8"), entry.name) for entry in entries]
    return {function.id: function for function in parsed}


def calls(text: str) -> list[str]:
    """The shipped functions `text` calls, directly or through another function, callees first."""
    known = functions()
    ordered: list[str] = []

    def visit(body: str) -> None:
        for name in dict.fromkeys(_CALL.findall(body)):
            if name in known and name not in ordered:
                visit(known[name].text)
                ordered.append(name)

    visit(text)
    return ordered


def _name(entry: Traversable) -> str:
    return entry.name


def find(name: str) -> Query:
    queries = library()
    if name in queries:
        return queries[name]
    raise UnknownQuery(name, list(queries))
