"""One Kusto analyser run per session (node loads the language service once) over every KQL we ship."""

from __future__ import annotations

import json

import pytest

from keyreport import queries
from scripts import render_alerts, render_workbook
from scripts.sentinel import variants
from tests.queries import kusto, sentinel

# Deliberately broken queries: the checker must report each as an Error (proof that it can fail).
BROKEN: dict[str, str] = {
    "broken:unknown-column": "AWS_Access_Key_Report_CL | where KeyAge_d > 90",
    "broken:unknown-table": "AWS_Access_Key_Report | take 10",
    "broken:syntax": "AWS_Access_Key_Report_CL | where Status_s == ",
    "broken:type": "AWS_Access_Key_Report_CL | where CreateDate_t > 90 and strlen(KeyAgeDays_d) > 1",
    "broken:bad-function": "AWS_Access_Key_Report_CL | summarize arg_maxx(TimeGenerated, *) by KeyFingerprint_s",
}


def embedded_queries() -> dict[str, str]:
    """Every query inside the generated workbook and alert rules, as checked in, by where it sits."""
    found: dict[str, str] = {}
    workbook = json.loads(render_workbook.WORKBOOK_PATH.read_text())
    for item in workbook["items"]:
        if item["type"] == 3:
            found[f"workbook:{item['name']}"] = item["content"]["query"]
    template = json.loads(render_workbook.WORKBOOK_TEMPLATE_PATH.read_text())
    for item in template["variables"]["workbookContent"]["items"]:
        if item["type"] == 3:
            found[f"azure/workbook.json:{item['name']}"] = item["content"]["query"]
    for resource in json.loads(render_alerts.ALERTS_TEMPLATE_PATH.read_text())["resources"]:
        for index, condition in enumerate(resource["properties"]["criteria"]["allOf"]):
            found[f"azure/alerts.json:{resource['name']}:{index}"] = condition["query"]
    return found


@pytest.fixture(scope="session")
def analysis() -> dict[str, kusto.Analysis]:
    library = {query.id: query.text for query in queries.library().values()}
    functions = {f"function:{function.id}": function.text for function in queries.functions().values()}
    # The Sentinel variants (queries/sentinel/), with what Sentinel defines declared: a watchlist without items.
    sentinel_variants = {f"sentinel-function:{name}": function.text for name, function in variants.variants().items()}
    return kusto.analyse(
        {**library, **functions, **sentinel_variants, **embedded_queries(), **BROKEN},
        functions={**kusto.declared_functions(), **sentinel.functions()},
        tables=sentinel.tables(),
    )
