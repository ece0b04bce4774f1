"""Renders azure/exceptions-watchlist.json: the Microsoft Sentinel watchlist of exceptions, and the function that
reads it.

For a workspace with Microsoft Sentinel on, the template creates the watchlist KeyReportExceptions empty (the CSV
header only; the SOC adds the items) and saves the Sentinel variant of KeyReport_WatchlistExceptions
(queries/sentinel/) under the saved search name azure/functions.json gives the base one, so it replaces it. The
Sentinel solution (scripts/sentinel/package.py) deploys the same watchlist and the same variant. `make render`
writes the template; tests/azure/test_watchlist_template.py fails when the checked-in file differs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scripts import arm, render_functions
from scripts.sentinel import variants

TEMPLATE_PATH = arm.ROOT / "azure" / "exceptions-watchlist.json"
FUNCTION = "KeyReport_WatchlistExceptions"
ALIAS = "KeyReportExceptions"  # the watchlist's alias: _GetWatchlist('KeyReportExceptions'), its resource name
# The CSV columns, in order; every value is a string. The items' search key is the IAM user name.
COLUMNS = ("Account", "User", "Control", "Key", "Until", "ApprovedBy", "Reason")
SEARCH_KEY = "User"
# The stable API whose models azure-mgmt-securityinsight 1.0.0 carries (its operations speak 2021-10-01; the
# stable specification: Azure/azure-rest-api-specs, specification/securityinsights/resource-manager/
# Microsoft.SecurityInsights/stable/2021-10-01/Watchlists.json); tests/azure/test_watchlist_template.py holds the
# watchlist to those models.
WATCHLIST_API = "2021-10-01"
WATCHLIST_TYPE = "Microsoft.SecurityInsights/watchlists"
CREATE_WATCHLIST = "createWatchlist"
DESCRIPTION = (
    "keyreport's exceptions: accepted risks for its findings, each with an expiry, a reason and an approver. One "
    "item per exception, every value text: Account (the 12-digit AWS account id), User (the IAM user name; "
    "<root_account> for the root user, <password_policy> for the account's password policy), Control (a check id "
    "of keyreport's compliance map such as key-rotation-90-days, a CIS id such as CIS-2.13, a Security Hub id such "
    "as IAM.3, or all), Key (the masked access key id as keyreport shows it, AKIA...WXYZ, or empty for every "
    "credential of the user), Until (the last day it holds, YYYY-MM-DD), ApprovedBy and Reason. The workspace "
    "function KeyReport_WatchlistExceptions reads it; KeyReport_Findings applies the exceptions that hold."
)


def header() -> str:
    """The CSV the watchlist is created from: the header line, no item."""
    return ",".join(COLUMNS) + "\r\n"


def watchlist_properties() -> dict[str, Any]:
    """The watchlist's properties: created from a local CSV of the header alone, searched by user."""
    return {
        "displayName": "keyreport exceptions",
        "provider": "keyreport",
        "source": "Local file",
        "description": DESCRIPTION,
        "itemsSearchKey": SEARCH_KEY,
        "contentType": "text/csv",
        "numberOfLinesToSkip": 0,
        "rawContent": header(),
    }


def watchlist_resource() -> dict[str, Any]:
    """The watchlist as an extension resource of the workspace, created unless createWatchlist is false."""
    return {
        "condition": f"[parameters('{CREATE_WATCHLIST}')]",
        "type": WATCHLIST_TYPE,
        "apiVersion": WATCHLIST_API,
        "name": ALIAS,
        "scope": "[format('Microsoft.OperationalInsights/workspaces/{0}', parameters('workspaceName'))]",
        "properties": watchlist_properties(),
    }


def create_watchlist_parameter() -> dict[str, Any]:
    return arm.parameter(
        "bool",
        f"Create the watchlist {ALIAS}, empty (the CSV header alone). Set false when deploying again over a "
        "watchlist that holds items: the deployment would send its header-only content again.",
        default=True,
    )


def render() -> dict[str, Any]:
    """The whole deployment template."""
    return arm.template(
        f"The Microsoft Sentinel watchlist {ALIAS} (keyreport's exceptions: accepted risks with an expiry, a reason "
        f"and an approver), created empty, and the workspace function {FUNCTION} that reads it, in place of the "
        "one azure/functions.json deploys (which returns no rows). Needs Microsoft Sentinel on the workspace; deploy "
        "after azure/functions.json, and again after each deployment of it.",
        __file__,
        parameters={
            "workspaceName": arm.parameter(
                "string",
                "Name of the existing Log Analytics workspace, Microsoft Sentinel on (in this resource group).",
            ),
            CREATE_WATCHLIST: create_watchlist_parameter(),
        },
        resources=[watchlist_resource(), render_functions.function_resource(variants.variants()[FUNCTION])],
    )


def rendered() -> dict[Path, str]:
    """The file this module generates, and its content."""
    return {TEMPLATE_PATH: arm.json_text(render())}
