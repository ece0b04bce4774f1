"""The data connector definition (Data Connectors/KeyReport.json): the three tables, connectivity from the run
table, and the set-up steps. It is a `GenericUI` connector: keyreport's Lambda pushes the rows, Sentinel only
shows the connector's state and how to set it up.
"""

from __future__ import annotations

from typing import Any

from scripts import schema
from scripts.sentinel import solution

# Connected when a complete run arrived within the expected cadence: a daily schedule plus slack, the same
# 26 hours the collector-stopped rule waits for.
CADENCE = "26h"
CONNECTIVITY_QUERY = (
    "KeyReport_CompleteRuns()\n"
    "| summarize LastCompleteRun = max(loggedDate_t)\n"
    f"| project IsConnected = LastCompleteRun > ago({CADENCE})"
)
_ROWS = {
    schema.KEYS_TABLE: "Access key rows",
    schema.RUNS_TABLE: "Run summaries",
    schema.USERS_TABLE: "IAM user rows",
}
SETUP_STEPS: tuple[tuple[str, str], ...] = (
    (
        "1. Create the tables and the data collection rule",
        "Deploy `azure/logs-ingestion.json` of the keyreport repository into the workspace's resource group: it "
        "creates the three custom tables, a data collection rule and the role assignment for the collector's "
        "Entra application (see docs/deployment.md). Workspaces that still take the HTTP Data Collector API get "
        "the tables created by the first run instead.",
    ),
    (
        "2. Deploy the collector in AWS",
        "Deploy `cloudformation/template.yaml` (`make deploy`) in the management account (or a single account), "
        "with the workspace, data collection rule and sign-in mode of step 1. It runs daily and ships one run "
        "summary per account, one row per IAM user and one row per access key (masked: first 4 and last 4 "
        "characters).",
    ),
    (
        "3. Check the path end to end",
        "Run `keyreport check` with the stack's settings: it proves every hop (AWS read, Entra sign-in, ingestion) "
        "without shipping a row. The connector shows Connected once a complete run arrived within "
        f"{CADENCE}.",
    ),
    (
        "4. Optional: CloudTrail for 'where is this key used from'",
        "Connect Microsoft Sentinel's Amazon Web Services S3 connector (table AWSCloudTrail) for the hunting query "
        "and workbook tab that join each key to its calls.",
    ),
)


def definition() -> dict[str, Any]:
    """The connector's UI configuration, as Data Connectors/*.json hold it."""
    return {
        "id": solution.CONNECTOR_ID,
        "title": "keyreport: AWS IAM access keys",
        "publisher": solution.PUBLISHER,
        "descriptionMarkdown": (
            "keyreport inventories every IAM user and access key of an AWS account or Organization on a schedule "
            "and ships them to this workspace: key ages, last use, console passwords and MFA, per account and run. "
            "Key ids are masked; the full id never leaves AWS."
        ),
        "graphQueriesTableName": schema.KEYS_TABLE,
        "graphQueries": [{"metricName": label, "legend": table, "baseQuery": table} for table, label in _ROWS.items()],
        "sampleQueries": [
            {
                "description": "Current access keys (latest complete run of each account)",
                "query": "KeyReport_CurrentKeys()\n| take 10",
            },
            {
                "description": "Last run per account",
                "query": f"{schema.RUNS_TABLE}\n| summarize arg_max(TimeGenerated, *) by account_number_s",
            },
        ],
        "dataTypes": [
            {
                "name": table,
                "lastDataReceivedQuery": f"{table}\n| summarize Time = max(TimeGenerated)\n| where isnotempty(Time)",
            }
            for table in solution.TABLES
        ],
        "connectivityCriterias": [{"type": "IsConnectedQuery", "value": [CONNECTIVITY_QUERY]}],
        "availability": {"status": 1, "isPreview": False},
        "permissions": {
            "resourceProvider": [
                {
                    "provider": "Microsoft.OperationalInsights/workspaces",
                    "permissionsDisplayText": "read and write permissions on the workspace are required.",
                    "providerDisplayName": "Workspace",
                    "scope": "Workspace",
                    "requiredPermissions": {"read": True, "write": True, "delete": False},
                }
            ],
            "customs": [
                {
                    "name": "AWS",
                    "description": "Permission to deploy a CloudFormation stack (Lambda, IAM role, Secrets "
                    "Manager, S3) in the account that is inventoried, or the Organization's management account.",
                },
                {
                    "name": "Entra ID",
                    "description": "An app registration the collector signs in as (federated credential, "
                    "certificate or secret), with Monitoring Metrics Publisher on the data collection rule.",
                },
            ],
        },
        "instructionSteps": [{"title": title, "description": text} for title, text in SETUP_STEPS],
    }


def api_config() -> dict[str, Any]:
    """The definition as the dataConnectors API takes it (kind GenericUI): Azure-Sentinel's connector files name
    the criteria `connectivityCriterias` and carry an `id`; the API names them `connectivityCriteria`, and the id
    is the resource's name."""
    config = {key: value for key, value in definition().items() if key != "id"}
    config["connectivityCriteria"] = config.pop("connectivityCriterias")
    return config


def queries() -> dict[str, str]:
    """Every query in the definition, by where it sits (the Kusto checks analyse each)."""
    found = {"connectivity": CONNECTIVITY_QUERY}
    document = definition()
    found.update({f"graph:{q['legend']}": q["baseQuery"] for q in document["graphQueries"]})
    found.update({f"sample:{i}": q["query"] for i, q in enumerate(document["sampleQueries"])})
    found.update({f"lastData:{d['name']}": d["lastDataReceivedQuery"] for d in document["dataTypes"]})
    return found
