"""The end of a failed `keyreport run`: what happened to the records in a few lines, then the cause and the fix.

A person reads the last lines first, so they name the cause in words (the AADSTS code explained, the AWS
error, the host) and the change that cures it; the records that went nowhere are counted, not listed (with -v
they are in the JSON log one by one, and without it they are kept in a file, so none is lost).
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from keyreport.check.explain import AADSTS
from keyreport.sinks.data_collector import SWITCH

if TYPE_CHECKING:
    from keyreport.pipeline import RunResult
    from keyreport.settings import Settings

CHECK = "run `keyreport check`: it tries each hop of the run and names the one that fails"
_AADSTS = re.compile(r"AADSTS(\d+)")
_HOST = re.compile(
    r"https?://([\w.-]+(?::\d+)?)|host='([\w.-]+)'|\b([a-z0-9-]+(?:\.[a-z0-9-]+)+\.(?:com|net|io|us|cn))\b"
)

# (what the failure text contains, the cause in words, the fix): the first that matches is the cause.
_KNOWN: tuple[tuple[str, str, str], ...] = (
    ("refused the request itself", "the Data Collector API refused the requests themselves, not the key", SWITCH),
    (
        "rejected the signature",
        "wrong workspace key: the Key Vault secret does not hold this workspace's key (another's, or rotated since)",
        "copy the workspace's primary key (Agents > Primary key) into the Key Vault secret "
        "KEYREPORT_WORKSPACE_KEY_SECRET names",
    ),
    (
        "refused stream",
        "the Logs Ingestion API refused the uploads (403: the app lacks Monitoring Metrics Publisher on the rule; "
        "404: the rule or stream id is wrong)",
        "assign the role on the rule (azure/logs-ingestion.json does, given principalId) or fix KEYREPORT_DCR_ID",
    ),
    (
        "TLS verification",
        "TLS did not verify: a TLS-inspecting proxy whose CA is not trusted",
        "set KEYREPORT_CA_BUNDLE to the proxy's CA (verification stays on)",
    ),
    (
        "interrupted",
        "the run was interrupted before it finished",
        "run it again; `keyreport replay` ships what was spilled",
    ),
    (
        "deadline",
        "the run's time ran out (--timeout, or the Lambda's timeout) before every record was shipped",
        "give it more time (--timeout); `keyreport replay` ships what was spilled",
    ),
    ("AccessDenied", "AWS refused a call: the role lacks a permission", CHECK),
    (
        "connection",
        "a service could not be reached (refused, silent, or a name that does not resolve)",
        CHECK,
    ),
)


def cause_and_fix(texts: list[str]) -> tuple[str, str]:
    """The likely cause and its fix from what the run recorded (batch reasons, errors); the check as last resort."""
    joined = "\n".join(texts)
    code = _AADSTS.search(joined)
    if code is not None:
        cause, fix = AADSTS.get(int(code.group(1)), ("Entra refused the sign-in", f"look up AADSTS{code.group(1)}"))
        return f"Entra refused the sign-in, AADSTS{code.group(1)}: {cause}", fix
    for words, cause, fix in _KNOWN:
        if words.lower() in joined.lower():
            host = _host(joined)
            return (f"{cause} ({host})" if host and words == "connection" else cause), fix
    first = texts[0] if texts else "the run did not read or deliver every record"
    return first[:300], CHECK


def _host(text: str) -> str:
    found = _HOST.search(text)
    return next((group for group in found.groups() if group), "") if found else ""


def run_report(result: RunResult, settings: Settings, *, verbose: bool) -> list[str]:
    """The lines after a failed run's summary: where the records went, then `cause:` and `fix:` last."""
    summary, lines = result.summary, []
    if summary.spill_keys:
        first = f"s3://{settings.spill_bucket}/{summary.spill_keys[0]}"
        more = f" and {len(summary.spill_keys) - 1} more" if len(summary.spill_keys) > 1 else ""
        lines.append(f"spilled for `keyreport replay`: {len(summary.spill_keys)} batch(es): {first}{more}")
    if result.failed_batches:
        counts = Counter[str]()
        for batch in result.failed_batches:
            counts[batch.table.value] += len(batch.rows)
        kept = "in the JSON log above" if verbose else f"kept in {_keep(result)}"
        listed = ", ".join(f"{table}: {rows} row{'' if rows == 1 else 's'}" for table, rows in counts.items())
        lines.append(f"neither delivered nor spilled: {listed} ({kept})")
    texts = list(dict.fromkeys(result.reasons)) + list(summary.errors)
    shown = list(dict.fromkeys(summary.errors))
    lines += [f"error: {error}" for error in (shown if verbose else shown[:3])]
    if len(shown) > 3 and not verbose:
        lines.append(f"({len(shown) - 3} more errors: -v shows them all)")
    cause, fix = cause_and_fix(texts)
    return [*lines, f"cause: {cause}", f"fix:   {fix}"]


def _keep(result: RunResult) -> Path:
    """The rows no bucket took, one JSON line each, in a file only this user may read: none is lost."""
    path = Path(f"keyreport-undelivered-{result.summary.run_id}.jsonl").resolve()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        for batch in result.failed_batches:
            for row in batch.rows:
                file.write(json.dumps({"table": batch.table.value, "reason": batch.reason, "record": row}) + "\n")
    return path
