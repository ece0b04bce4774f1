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
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable

from keyreport.errors import LibraryError, UnknownQuery

VISUALIZATIONS = ("table", "timechart", "barchart", "tiles")
REQUIRED_KEYS = ("id", "title", "description", "visualization", "timespan", "local")
LOCAL_ENGINE = "duckdb-kql"

_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_KEY_LINE = re.compile(r"^// ?([a-z]+):\s*(.*)$")
_CONTINUATION = re.compile(r"^//\s{2,}(\S.*)$")
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

    @property
    def runs_locally(self) -> bool:
        return self.local == LOCAL_ENGINE

    @property
    def not_local_reason(self) -> str | None:
        return None if self.runs_locally else self.local.removeprefix("no:").strip()


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
        if key not in REQUIRED_KEYS:
            raise LibraryError(f"{source}:{number}: unknown header key {key!r} (known: {', '.join(REQUIRED_KEYS)})")
        if key in header:
            raise LibraryError(f"{source}:{number}: header key {key!r} given twice")
        header[key] = value.strip()
    missing = [name for name in REQUIRED_KEYS if not header.get(name)]
    if missing:
        raise LibraryError(f"{source}: header lacks {', '.join(missing)}")
    body = "\n".join(lines[body_start:]).strip()
    if not body:
        raise LibraryError(f"{source}: no query after the header")
    return Query(
        id=_checked_id(header["id"], source),
        title=header["title"],
        description=header["description"],
        visualization=_checked_visualization(header["visualization"], source),
        timespan=_checked_timespan(header["timespan"], source),
        local=_checked_local(header["local"], source),
        text=body + "\n",
        source=source,
    )


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


def library_folder() -> Traversable:
    return files("keyreport") / "kql"


@cache
def library() -> dict[str, Query]:
    """Every shipped query by id, in file-name order."""
    entries = sorted((entry for entry in library_folder().iterdir() if entry.name.endswith(".kql")), key=_name)
    queries = [parse(entry.read_text(encoding="utf-8"), entry.name) for entry in entries]
    return {query.id: query for query in queries}


def _name(entry: Traversable) -> str:
    return entry.name


def find(name: str) -> Query:
    queries = library()
    if name in queries:
        return queries[name]
    raise UnknownQuery(name, list(queries))
