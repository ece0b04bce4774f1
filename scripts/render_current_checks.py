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
    "AsOf, RunId_g, account_number_s, ControlId, Control, Severity, Resource, user_s, Credential, Failing, Stale, Days"
)


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
        "user's key count), root or policy; Days what an age check judged. The compliance tab, the listings of",
        "failing credentials and the rules count these rows; its cost follows the current estate, not history.",
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
    return header + _body("KeyReport_FindingSnapshots").rstrip("\n") + "\n" + stale


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
