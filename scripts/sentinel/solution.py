"""What names the solution: its id, version, connector, the tables it reads and its release notes."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from scripts import arm, schema

FOLDER = arm.ROOT / "azure" / "sentinel"
NAME = "keyreport AWS IAM access keys"
FILE_NAME = "KeyReport"  # Data/Solution_KeyReport.json, Workbooks/KeyReport.json ...
SOLUTION_ID = "keyreport.keyreport-aws-iam-access-keys"
PUBLISHER = "keyreport"
CONNECTOR_ID = "KeyReportAwsIamAccessKeys"
TABLES = (schema.KEYS_TABLE, schema.RUNS_TABLE, schema.USERS_TABLE)
CLOUDTRAIL_TABLE = "AWSCloudTrail"
# Sentinel's AWS connectors that fill AWSCloudTrail: the S3 one (current) and the older REST one.
CLOUDTRAIL_CONNECTORS = ("AWSS3", "AWS")
SUPPORT = {"name": "keyreport maintainers", "tier": "Community", "link": "https://github.com/keyreport/keyreport"}
_NAMESPACE = uuid.UUID("5b1f3e0a-7c2d-4e8f-9a6b-1d2c3e4f5a60")  # fixed: ids stay stable across renders

# Newest first; the first entry is the package's version.
RELEASES: tuple[tuple[str, str, str], ...] = (
    (
        "1.1.0",
        "2026-12-07",
        "Owners and exceptions: findings carry the IAM user's owner tag; exceptions from keyreport-exception user "
        "tags and the new KeyReportExceptions watchlist (created empty) except a check for a user or one key until "
        "their expiry; the analytics rules skip excepted findings; the exception-valid rule reports refused "
        "exceptions; the workbook's Owners and exceptions tab.",
    ),
    (
        "1.0.0",
        "2026-12-07",
        "First solution package: data connector with connectivity from the run table, the workspace functions as "
        "parsers, one analytics rule per compliance control (one alert per AWS account, account and IAM user "
        "entities, masked keys as custom details, incidents grouped by account), a collector-stopped rule, hunting "
        "queries (where each key is used from, joined to AWSCloudTrail), and the workbook. Replaces the loose "
        "Sentinel rules of queries/alerts/ (new rule ids).",
    ),
)
VERSION = RELEASES[0][0]


def stable_id(name: str) -> str:
    """A GUID that depends only on `name`: Sentinel tracks templates, rules and workbooks by it."""
    return str(uuid.uuid5(_NAMESPACE, name))


def relative(path: Path) -> str:
    """A file's path inside the solution folder, as Data/Solution_*.json lists it."""
    return path.relative_to(FOLDER).as_posix()


def metadata() -> dict[str, Any]:
    """SolutionMetadata.json: who publishes it and where it belongs in Content hub."""
    return {
        "publisherId": PUBLISHER,
        "offerId": SOLUTION_ID.split(".", 1)[1],
        "firstPublishDate": RELEASES[-1][1],
        "lastPublishDate": RELEASES[0][1],
        "providers": ["keyreport"],
        "categories": {"domains": ["Security - Cloud Security", "Identity", "Compliance"]},
        "support": SUPPORT,
    }


def release_notes() -> str:
    """ReleaseNotes.md, in the table form Azure-Sentinel solutions use."""
    lines = [
        "<!-- " + arm.generated_by(__file__) + " -->",
        "| **Version** | **Date Modified (DD-MM-YYYY)** | **Change History** |",
        "|---|---|---|",
    ]
    for version, date, change in RELEASES:
        year, month, day = date.split("-")
        lines.append(f"| {version} | {day}-{month}-{year} | {change} |")
    return "\n".join(lines) + "\n"
