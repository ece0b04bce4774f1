"""KQL of the Logs Ingestion side, analysed by Microsoft's Kusto language service (tests/queries/kusto.py):
the rule's transformations turn each stream into exactly its table, and the migration guide's queries hold."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from typing import Any

import pytest

from scripts import arm, render_logs_ingestion
from tests import schema
from tests.queries import kusto

# Stream declaration type -> Kusto scalar type of the column `source` exposes to the transformation.
STREAM_TO_KUSTO = {"string": "string", "real": "real", "boolean": "bool", "datetime": "datetime", "long": "long"}
TABLE_TO_KUSTO = {"string": "string", "real": "real", "boolean": "bool", "dateTime": "datetime", "guid": "guid"}


def run_checker(tables: dict[str, list[tuple[str, str]]], queries: dict[str, str]) -> dict[str, Any]:
    node = shutil.which("node")
    assert node is not None, "the KQL checks need Node.js (see tests/queries)"
    request = {"tables": tables, "queries": [{"id": key, "text": text} for key, text in queries.items()]}
    done = subprocess.run(
        [node, str(kusto.CHECKER)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=kusto.HERE,
    )
    return {result["id"]: result for result in json.loads(done.stdout)["results"]}


@pytest.mark.parametrize("table", [schema.KEYS_TABLE, schema.RUNS_TABLE, schema.USERS_TABLE])
def test_transformation_turns_the_stream_into_exactly_the_table(table: str) -> None:
    template = json.loads(render_logs_ingestion.TEMPLATE_PATH.read_text())
    [rule] = [r for r in template["resources"] if r["type"] == "Microsoft.Insights/dataCollectionRules"]
    stream = rule["properties"]["streamDeclarations"][f"Custom-{table}"]["columns"]
    [flow] = [f for f in rule["properties"]["dataFlows"] if f["outputStream"] == f"Custom-{table}"]
    [table_resource] = [
        r for r in template["resources"] if r.get("properties", {}).get("schema", {}).get("name") == table
    ]
    expected = [(c["name"], TABLE_TO_KUSTO[c["type"]]) for c in table_resource["properties"]["schema"]["columns"]]

    source = [(c["name"], STREAM_TO_KUSTO[c["type"]]) for c in stream]
    result = run_checker({"source": source}, {"transform": flow["transformKql"]})["transform"]

    assert [d for d in result["diagnostics"] if d["severity"] == "Error"] == []
    assert [(c["name"], c["type"]) for c in result["columns"]] == expected  # names, order and types


def migration_queries() -> dict[str, str]:
    text = (arm.ROOT / "docs" / "migration.md").read_text()
    blocks = re.findall(r"```kusto\n(.*?)```", text, flags=re.DOTALL)
    return {f"migration.md#{index}": block for index, block in enumerate(blocks, start=1)}


def test_the_migration_guides_queries_are_valid_against_the_tables() -> None:
    queries = migration_queries()
    assert len(queries) >= 4
    analyses = kusto.analyse(queries)
    errors = [analysis.error_report() for analysis in analyses.values() if analysis.errors]
    assert errors == []
