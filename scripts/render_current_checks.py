"""Renders the current-state twins of the functions that read or judge every snapshot: KeyReport_CurrentKeyRows
and KeyReport_CurrentUserRows (from KeyReport_KeyRows / KeyReport_UserRows: the current snapshots' rows, the scan
starting at the oldest of them), KeyReport_Findings (from KeyReport_FindingSnapshots) and
KeyReport_CurrentSetupKeys (from KeyReport_SetupKeys).

The judgement is written once, over every complete snapshot, for the trends. The current state must not pay for
history, so its twins judge the current rows only: the same text with the snapshot functions replaced by the
current-state ones (KeyReport_CurrentKeys, KeyReport_CurrentUsers: bounded by the current snapshots' times) and
the password policy read from the current run rows. `make render` writes them; tests/queries/test_dashboards.py
fails when a checked-in file differs.
"""

from __future__ import annotations

from pathlib import Path

from keyreport import queries
from scripts import arm

FUNCTIONS_FOLDER = arm.ROOT / "queries" / "functions"
# Every snapshot -> the current state (the same columns).
CURRENT_SOURCES = {
    "KeyReport_KeySnapshots()": "KeyReport_CurrentKeys()",
    "KeyReport_UserSnapshots()": "KeyReport_CurrentUsers()",
    "KeyReport_CompleteRuns()": "KeyReport_RunRows()",
    "KeyReport_SetupKeys()": "KeyReport_CurrentSetupKeys()",
}
FINDING_COLUMNS = (
    "AsOf, RunId_g, account_number_s, ControlId, Control, Severity, Resource, user_s, Owner, Credential, Failing,\n"
    "    Excepted, ExceptedUntil, ExceptionReason, ExceptionApprovedBy, ExceptionSource, ExceptionId, Stale, Days"
)
# Inserted before the judgement's final union (the lets of the body are in scope: `users`).
EXCEPTION_LETS = """\
// Exceptions (KeyReport_Exceptions): an active one covers its check (all: every check but exception-valid) for
// its user, or for one key when it names one (a new key of the user is not covered); the longest one wins.
let exceptions = KeyReport_Exceptions();
let covering = exceptions
    | where Status == "active"
    | extend Subject = user_s, Join = 1
    | join kind=inner (KeyReport_Controls() | where Resource != "exception" | project Covered = ControlId, Join = 1)
        on Join
    | where ControlId == "all" or ControlId == Covered
    | project account_number_s, Subject, ControlId = Covered, Key, ExceptedUntil, ExceptionReason,
        ExceptionApprovedBy = ApprovedBy, ExceptionSource, ExceptionId;
let keyExceptions = covering
    | where isnotempty(Key)
    | summarize arg_max(ExceptedUntil, ExceptionReason, ExceptionApprovedBy, ExceptionSource, ExceptionId)
        by account_number_s, Subject, ControlId, Credential = Key;
let userExceptions = covering
    | where isempty(Key)
    | summarize arg_max(ExceptedUntil, ExceptionReason, ExceptionApprovedBy, ExceptionSource, ExceptionId)
        by account_number_s, Subject, ControlId
    | project account_number_s, Subject, ControlId, UserUntil = ExceptedUntil, UserReason = ExceptionReason,
        UserApprovedBy = ExceptionApprovedBy, UserSource = ExceptionSource, UserExceptionId = ExceptionId;
let owners = users | project account_number_s, user_s, Owner = Owner_s;
"""
# Appended after the judgement: the exceptions' own check, then owners, exceptions and the account's Stale.
EXCEPTION_TAIL = """\
| union (exceptions
    | project AsOf, RunId_g, account_number_s, ControlId = "exception-valid", user_s, Credential = "exception",
        Resource = strcat(user_s, " ", ExceptionSource, " ", ExceptionId), Failing = Status == "refused",
        Days = int(null), SnapshotKey = strcat(ExceptionSource, " ", ExceptionId)
    | lookup kind=leftouter (KeyReport_Controls() | project ControlId, Control, Severity) on ControlId)
| extend Subject = iff(Credential == "policy", "<password_policy>", user_s)
| lookup kind=leftouter keyExceptions on account_number_s, Subject, ControlId, Credential
| lookup kind=leftouter userExceptions on account_number_s, Subject, ControlId
| extend ByUser = isnotnull(UserUntil) and (isnull(ExceptedUntil) or UserUntil > ExceptedUntil)
| extend Excepted = Failing and (ByUser or isnotnull(ExceptedUntil))
| extend
    ExceptedUntil = iff(not(Excepted), datetime(null), iff(ByUser, UserUntil, ExceptedUntil)),
    ExceptionReason = iff(not(Excepted), "", iff(ByUser, UserReason, ExceptionReason)),
    ExceptionApprovedBy = iff(not(Excepted), "", iff(ByUser, UserApprovedBy, ExceptionApprovedBy)),
    ExceptionSource = iff(not(Excepted), "", iff(ByUser, UserSource, ExceptionSource)),
    ExceptionId = iff(not(Excepted), "", iff(ByUser, UserExceptionId, ExceptionId))
| lookup kind=leftouter owners on account_number_s, user_s
| extend Owner = coalesce(Owner, "")
"""


LOOKBACK_LET = "let lookback = toscalar(thresholds | project StateLookbackDays) * 1d;\n"
LOOKBACK_FILTER = "| where TimeGenerated > now() - lookback\n"
# A row's TimeGenerated is its run time, or a later ingestion time: the current rows are at or after the oldest
# current snapshot. Filtering the table itself (not the judged rows) lets the engine prune the scan by time.
CURRENT_ROWS_LETS = (
    "let currentRuns = KeyReport_CurrentRuns() | where isnotnull(AsOf);\n"
    "let since = toscalar(currentRuns | summarize min(AsOf));\n"
)
CURRENT_ROWS_FILTER = "| where TimeGenerated >= since and RunId_g in ((currentRuns | project RunId_g))\n"


def current_rows(source: str, name: str, what: str) -> str:
    text = queries.functions()[source].text
    if LOOKBACK_FILTER not in text or LOOKBACK_LET not in text:
        raise ValueError(f"{source} no longer filters by its look-back as {LOOKBACK_LET + LOOKBACK_FILTER!r}")
    description = (
        f"The {what} rows of the snapshots in KeyReport_CurrentRuns (every run of them, rows delivered twice",
        f"included), judged as {source} judges them; the scan starts at the oldest current snapshot, so its",
        "cost follows the current estate, not the look-back.",
    )
    header = _header(name, f"The {what} rows of the current snapshots, judged", description, source)
    return header + CURRENT_ROWS_LETS + text.replace(LOOKBACK_LET, "").replace(LOOKBACK_FILTER, CURRENT_ROWS_FILTER)


def _body(source: str) -> str:
    text = queries.functions()[source].text
    for snapshot, current in CURRENT_SOURCES.items():
        text = text.replace(snapshot, current)
    return text


def _header(name: str, title: str, description: tuple[str, ...], source: str) -> str:
    lines = [f"// id: {name}", f"// title: {title}", "// description: " + description[0]]
    lines += [f"//   {line}" for line in description[1:]]
    lines += [f"//   Generated from {source}.kql by scripts/render_current_checks.py (`make render`): do not edit."]
    return "\n".join([*lines, "// local: duckdb-kql", ""])


def findings() -> str:
    description = (
        "The checks of KeyReport_FindingSnapshots on the current state only (KeyReport_CurrentKeys and",
        "KeyReport_CurrentUsers: each user's latest complete snapshot), with the account's Stale. ControlId is the",
        "check's id in queries/compliance.json, Control its benchmark ids (CIS AWS Foundations v5.0 and v6.0, AWS",
        "Security Hub), Resource begins with the user name, Credential is password, the masked key id, keys (the",
        "user's key count), root, policy or exception; Days what an age check judged. Owner is the user's owner",
        "tag. Excepted: a failing row an active exception of KeyReport_Exceptions covers (ExceptedUntil, its",
        "reason, approver, source and id); each exception is a row of its own check, exception-valid, failing",
        "while it is refused. The compliance tab, the listings of failing credentials and the rules count these",
        "rows, the rules only those not excepted; its cost follows the current estate, not history.",
    )
    stale = (
        "| lookup kind=leftouter (KeyReport_LatestRuns() | project account_number_s, Stale) on account_number_s\n"
        "| extend Stale = coalesce(Stale, true)\n"
        f"| project {FINDING_COLUMNS}\n"
    )
    header = _header(
        "KeyReport_Findings",
        "The compliance of each account's current state: one row per check and resource, pass or fail",
        description,
        "KeyReport_FindingSnapshots",
    )
    body = _body("KeyReport_FindingSnapshots").rstrip("\n") + "\n"
    final = body.rfind("\nunion\n")
    if final < 0:
        raise ValueError("KeyReport_FindingSnapshots no longer ends with one union of its checks")
    return header + body[: final + 1] + EXCEPTION_LETS + body[final + 1 :] + EXCEPTION_TAIL + stale


def current_setup_keys() -> str:
    description = (
        "The keys of KeyReport_SetupKeys in the current state only (KeyReport_CurrentKeys and",
        "KeyReport_CurrentUsers): active, never used, created with their user, while the user has a console",
        "password. UserCreated is the user's creation time.",
    )
    header = _header(
        "KeyReport_CurrentSetupKeys",
        "Keys set up with their user and never used, of console users, as they are now",
        description,
        "KeyReport_SetupKeys",
    )
    return header + _body("KeyReport_SetupKeys")


def rendered() -> dict[Path, str]:
    return {
        FUNCTIONS_FOLDER / "KeyReport_CurrentKeyRows.kql": current_rows(
            "KeyReport_KeyRows", "KeyReport_CurrentKeyRows", "key"
        ),
        FUNCTIONS_FOLDER / "KeyReport_CurrentUserRows.kql": current_rows(
            "KeyReport_UserRows", "KeyReport_CurrentUserRows", "IAM user"
        ),
        FUNCTIONS_FOLDER / "KeyReport_Findings.kql": findings(),
        FUNCTIONS_FOLDER / "KeyReport_CurrentSetupKeys.kql": current_setup_keys(),
    }
