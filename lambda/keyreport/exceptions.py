"""Exceptions a user's IAM tags grant: the `keyreport-exception` grammar, parsed and checked (pure, no I/O).

One tag, one exception (IAM has one value per key):

    keyreport-exception[-<suffix>] = <control> [key=<masked key id>] until=<YYYY-MM-DD> by=<approver> reason=<text>

- the tag key is `keyreport-exception` or `keyreport-exception-<suffix>`, in any case; any other tag key that
  starts with `keyreport-` is reported as a malformed exception tag (the prefix is keyreport's), never ignored;
- `<control>` first: a control id of the compliance map (`key-rotation-90-days`), a CIS id (`CIS-1.13` of
  v5.0, `CIS-2.13` of v6.0), a Security Hub id (`IAM.3`), or `all`; in any case;
- then `key=`, `until=` and `by=` in any order (names in any case), each at most once; `reason=` last, taking
  the rest of the value;
- `key=` (optional) narrows the exception to one key, by its masked id as the rows show it (`AKIA...WXYZ`);
  it must name a current key of the user, so a new key (another id) is never covered by an old exception;
- `until=` (required) a real date, at most `max_days` (KEYREPORT_MAX_EXCEPTION_DAYS) after the run's UTC date;
  a date already past is no problem here: the workspace marks the exception expired against now();
- `by=` and `reason=` (required) non-empty.

Whatever is wrong goes into `problem` (a short sentence; "" when valid): the exception then grants nothing, and
the row still shows it. A full access key id pasted anywhere in a value is masked before it goes anywhere.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any

ALL_CONTROLS = "all"
EXCEPTION_TAG = re.compile(r"keyreport-exception(?:-.+)?", re.IGNORECASE | re.DOTALL)
RESERVED_PREFIX = "keyreport-"  # tag keys keyreport reads; one it does not understand is reported
MASKED_KEY = re.compile(r"[A-Z0-9]{4}\.\.\.[A-Z0-9]{4}")
# What an access key id (or any other IAM unique id: AKIA..., ASIA..., AIDA...) looks like: "A" and 15 or more
# upper-case letters and digits, wherever it stands (glued to other text too).
_FULL_ID = re.compile(r"A[A-Z0-9]{15,}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_REASON = re.compile(r"(?:^|\s)reason=", re.IGNORECASE)
_NAMED = ("key", "until", "by")
_KEY_RESOURCES = {"key", "credential"}  # controls one key can fail
_QUOTE = 40
GRAMMAR = "<control> [key=<masked key id>] until=<YYYY-MM-DD> by=<approver> reason=<text>"
FIELDS = ("Tag", "Value", "Control", "Key", "Until", "ApprovedBy", "Reason", "Problem")
MAX_JSON_CHARS = 30_000  # the Exceptions column stays under the Data Collector's 32 KB per value


@dataclass(frozen=True)
class ExceptionTag:
    """One exception tag, parsed; `problem` empty when it is valid. Every text here is safe to ship."""

    tag: str
    value: str
    control: str = ""
    key: str = ""
    until: str = ""
    approved_by: str = ""
    reason: str = ""
    problem: str = ""

    @property
    def valid(self) -> bool:
        return not self.problem

    def fields(self) -> dict[str, str]:
        """The contract's object (queries/schema.json, Exceptions_s)."""
        values = (self.tag, self.value, self.control, self.key, self.until, self.approved_by, self.reason)
        return dict(zip(FIELDS, (*values, self.problem), strict=True))


def is_exception_tag(key: str) -> bool:
    """A tag key this module parses: the exception keys, and any other of keyreport's prefix (to report it)."""
    return key.casefold().startswith(RESERVED_PREFIX)


def mask_ids(text: str) -> str:
    """`text` with every full key id (or other IAM unique id) masked as the rows mask key ids."""
    return _FULL_ID.sub(lambda found: f"{found[0][:4]}...{found[0][-4:]}", text)


def _quoted(text: str) -> str:
    text = mask_ids(text)
    return repr(text if len(text) <= _QUOTE else text[:_QUOTE] + "...")


@cache
def shipped_aliases() -> Mapping[str, str]:
    """Aliases of the shipped compliance map (loaded on the first exception tag, not at import)."""
    from keyreport.queries import compliance  # noqa: PLC0415 - most runs meet no exception tag

    return control_aliases(compliance.load())


def control_aliases(compliance_map: Any) -> dict[str, str]:
    """Every way a tag may name a control (case-folded) -> the control id; "" for a name two controls claim.

    A CIS id is written `CIS-<id>` (v5.0 ids are 1.x, v6.0 ids 2.x); other benchmarks' ids (Security Hub's
    `IAM.3`) as they are.
    """
    aliases: dict[str, str] = {ALL_CONTROLS: ALL_CONTROLS}
    labels = {benchmark.name: benchmark.label for benchmark in compliance_map.benchmarks}
    for control in compliance_map.controls.values():
        names = [control.id]
        for benchmark, benchmark_id in control.benchmarks.items():
            cis = labels.get(benchmark, "").upper().startswith("CIS")
            names.append(f"CIS-{benchmark_id}" if cis else benchmark_id)
        for name in names:
            folded = name.casefold()
            aliases[folded] = control.id if aliases.get(folded, control.id) == control.id else ""
    return aliases


def parse(
    tag: str,
    value: str,
    *,
    today: date,
    max_days: int,
    keys: Collection[str] | None = None,
    aliases: Mapping[str, str] | None = None,
    resources: Mapping[str, str] | None = None,
) -> ExceptionTag:
    """The exception `tag` = `value` grants, checked as of `today` (the run's UTC date).

    `keys`: the masked ids of the user's current keys (None: not known, `key=` then is not checked against
    them). `aliases`/`resources`: the compliance map's (default: the shipped map's).
    """
    if aliases is None:
        aliases = shipped_aliases()
    if resources is None:
        resources = _shipped_resources()
    shown = mask_ids(value)
    problems: list[str] = []
    if not EXCEPTION_TAG.fullmatch(tag):
        problems.append(f"tag key {_quoted(tag)} is not keyreport-exception or keyreport-exception-<suffix>")
    head, reason = _split_reason(value)
    words = head.split()
    found: dict[str, str] = {}
    control = ""
    if not words or "=" in words[0]:
        problems.append(f"malformed: no control first (expected {GRAMMAR})" if value.strip() else "empty value")
    else:
        control = _control(words.pop(0), aliases, problems)
    for word in words:
        name, sep, text = word.partition("=")
        if not sep or name.casefold() not in _NAMED:
            problems.append(f"malformed: unexpected {_quoted(word)} (expected {GRAMMAR})")
        elif name.casefold() in found:
            problems.append(f"malformed: {name.casefold()}= given twice")
        else:
            found[name.casefold()] = text
    key = _key(found.get("key"), keys, problems)
    if key and control and control != ALL_CONTROLS and resources.get(control) not in _KEY_RESOURCES:
        problems.append(f"key= does not apply: {control} is not a check of single keys")
    until = _until(found.get("until"), today, max_days, problems)
    approver = found.get("by", "")
    if not approver:
        problems.append("no approver (by=)")
    if reason is None or not reason.strip():
        problems.append("no reason (reason=, last)")
    return ExceptionTag(
        tag=mask_ids(tag),
        value=shown,
        control=control,
        key=key,
        until=until,
        approved_by=mask_ids(approver),
        reason=mask_ids((reason or "").strip()),
        problem="; ".join(problems),
    )


def _split_reason(value: str) -> tuple[str, str | None]:
    found = _REASON.search(value)
    if found is None:
        return value, None
    return value[: found.start()], value[found.end() :]


def _control(word: str, aliases: Mapping[str, str], problems: list[str]) -> str:
    control = aliases.get(word.casefold())
    if control is None:
        problems.append(f"unknown control {_quoted(word)}: a control id, CIS-<id>, IAM.<n> or all")
        return ""
    if not control:
        problems.append(f"ambiguous control {_quoted(word)}: two controls claim it, name the control id")
    return control


def _key(text: str | None, keys: Collection[str] | None, problems: list[str]) -> str:
    if text is None:
        return ""
    if not MASKED_KEY.fullmatch(text):
        if _FULL_ID.fullmatch(text):
            problems.append("key= must be the masked id (AKIA...WXYZ, as the rows show it), never the full key id")
        else:
            problems.append(f"key= {_quoted(text)} is not a masked key id (AKIA...WXYZ)")
        return ""
    if keys is not None:
        matching = sum(key == text for key in keys)
        if matching == 0:
            problems.append(f"key= {text} is no current key of the user (deleted or rotated: a new key is not covered)")
        elif matching > 1:
            problems.append(f"key= {text} names two keys of the user: it cannot tell them apart")
    return text


def _until(text: str | None, today: date, max_days: int, problems: list[str]) -> str:
    if text is None or not text:
        problems.append("no expiry (until=YYYY-MM-DD)")
        return ""
    try:
        if not _DATE.fullmatch(text):
            raise ValueError
        until = date.fromisoformat(text)
    except ValueError:
        problems.append(f"until= {_quoted(text)} is not a date (YYYY-MM-DD)")
        return ""
    days = (until - today).days
    if days > max_days:
        problems.append(f"over-long: until= is {days} days away, more than the {max_days} allowed")
    return until.isoformat()


@cache
def _shipped_resources() -> Mapping[str, str]:
    from keyreport.queries import compliance  # noqa: PLC0415 - see shipped_aliases

    return {control.id: control.resource for control in compliance.load().controls.values()}


def as_json(exceptions: list[ExceptionTag]) -> str:
    """The Exceptions column: a compact JSON array, within MAX_JSON_CHARS (IAM allows 50 tags of 256 characters:
    whatever would not fit is said in one last object's Problem instead of making the row too large)."""
    objects: list[dict[str, str]] = []
    size = 2
    for number, exception in enumerate(exceptions):
        entry = exception.fields()
        text = _compact(entry)
        if size + len(text) + 1 > MAX_JSON_CHARS - 200:
            left = len(exceptions) - number
            objects.append({name: "" for name in FIELDS} | {"Problem": f"{left} more exception tags not shown"})
            break
        objects.append(entry)
        size += len(text) + 1
    return _compact(objects)


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
