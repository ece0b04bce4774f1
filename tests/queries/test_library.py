"""The KQL library: headers, Microsoft's analyser against queries/schema.json, and the local engine's reach."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from keyreport import queries
from sandbox.local_kql import LocalUnsupported, LocalWorkspace, StoredTable
from tests import schema
from tests.queries import kusto
from tests.queries.conftest import BROKEN

LIBRARY = queries.library()
FUNCTIONS = queries.functions()
ORIGINAL_KEY_AGE = (
    "AWS_Access_Key_Report_CL | extend key_age = datetime_diff('day',now(),CreateDate_t) | project Age=key_age,"
    "AccessKey=AccessKeyId_s, User=user_s | where Age > 90 | sort by Age"
)
ORIGINAL_CREATIONS = (
    "AWS_Access_Key_Report_CL | make-series AccessKeys=count() default=0 on CreateDate_t from "
    "datetime(2019-01-01) to datetime(2020-01-01) step 1d"
)
REQUIRED = {
    "rotation-due",  # active keys older than 90 days
    "never-used",
    "stale-keys",  # unused for 90+ days
    "inactive-keys",
    "two-active-keys",
    "root-keys",
    "last-use-by-service",  # and region
    "key-creations-per-day",  # make-series
    "rotation-compliance",  # over time, per account
    "ingestion-last-run",
    "ingestion-records-per-run",
    "ingestion-stopped",
    "original-key-age",
    "original-creations-2019",
}


@pytest.mark.parametrize("query_id", sorted(LIBRARY))
def test_every_shipped_query_passes_the_kusto_analyser(query_id: str, analysis: dict[str, kusto.Analysis]) -> None:
    result = analysis[query_id]
    assert not result.errors, "\n" + result.error_report()
    assert result.columns, f"{query_id}: the analyser found no result columns"


@pytest.mark.parametrize("query_id", sorted(BROKEN))
def test_the_analyser_check_fails_on_a_broken_query(query_id: str, analysis: dict[str, kusto.Analysis]) -> None:
    result = analysis[query_id]
    assert result.errors, f"{query_id} should have been reported as an error"
    report = result.error_report()
    assert report.startswith(f"{query_id}: line 1, column "), report  # id and position, for the pytest output


def test_a_broken_querys_report_points_at_the_mistake(analysis: dict[str, kusto.Analysis]) -> None:
    report = analysis["broken:unknown-column"].error_report()
    assert "line 1, column 34" in report and "KeyAge_d" in report, report


def test_the_library_holds_what_the_issue_asks_for() -> None:
    assert set(LIBRARY) >= REQUIRED


def test_the_original_reports_queries_ship_verbatim() -> None:
    assert LIBRARY["original-key-age"].text.strip() == ORIGINAL_KEY_AGE
    assert LIBRARY["original-creations-2019"].text.strip() == ORIGINAL_CREATIONS


def test_key_queries_start_from_the_current_state_functions() -> None:
    # The current state is defined once: no query picks its own newest row per key or reads the table itself.
    raw = {"ingestion-records-per-run"}  # counts records per run on purpose
    raw.add("key-use-cloudtrail")  # joins each key's snapshot history (when it went inactive) to AWSCloudTrail
    for query in LIBRARY.values():
        if query.id.startswith("original") or query.id in raw or query.id.startswith("ingestion"):
            continue
        assert re.match(r"(let \w+ = KeyReport_\w+\(\).*;\n)?KeyReport_\w+\(\)\n", query.text), query.id
        assert "by KeyFingerprint_s" not in query.text and "AWS_Access_Key_Report_CL" not in query.text, query.id
    for name in ("KeyReport_CurrentKeys", "KeyReport_CurrentUsers", "KeyReport_LatestRuns"):
        assert "KeyReport_CurrentRuns()" in FUNCTIONS[name].text, name
    # Runs are ordered and dated by the collector's own run time, never by TimeGenerated (replaced by the
    # ingestion time when more than two days old) nor ingestion_time().
    for function in FUNCTIONS.values():
        assert "arg_max(TimeGenerated" not in function.text.replace("arg_max(TimeGenerated, *) by RunId_g", ""), (
            function.id
        )
        assert "ingestion_time()" not in function.text, function.id
    assert "RunTime = loggedDate_t" in FUNCTIONS["KeyReport_RunRows"].text
    assert 'Status_s == "ok"' in FUNCTIONS["KeyReport_RunRows"].text


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_function_passes_the_kusto_analyser(name: str, analysis: dict[str, kusto.Analysis]) -> None:
    result = analysis[f"function:{name}"]
    assert not result.errors, "\n" + result.error_report()
    assert result.columns, f"{name}: the analyser found no result columns"


def test_a_query_calling_an_undeclared_function_fails_the_analyser() -> None:
    text = "KeyReport_CurrentKeys() | count"
    assert not kusto.analyse({"call": text})["call"].errors
    assert kusto.analyse({"call": text}, functions={})["call"].errors


def test_thresholds_are_defined_once() -> None:
    [thresholds] = [f for f in FUNCTIONS.values() if "RotationDays = 90" in f.text]
    assert thresholds.id == "KeyReport_Thresholds"
    for text in [
        *(q.text for q in LIBRARY.values() if not q.id.startswith("original")),
        *(f.text for f in FUNCTIONS.values() if f is not thresholds),
    ]:
        assert not re.search(r"\b(90|45|7)d\b|> ?(90|45|7)\b", text), text


def test_functions_call_only_shipped_functions_callees_first() -> None:
    assert queries.calls("KeyReport_CurrentKeys() | count") == [
        "KeyReport_Thresholds",
        "KeyReport_RunRows",
        "KeyReport_CurrentRuns",
        "KeyReport_CurrentKeyRows",
        "KeyReport_CurrentKeys",
    ]
    assert queries.calls("print KeyReport_Nothing()") == []


def test_queries_only_use_declared_columns(analysis: dict[str, kusto.Analysis]) -> None:
    declared = {name for table in kusto.declared_tables().values() for name, _ in table}
    assert declared >= set(schema.columns(schema.KEYS_TABLE)) | set(schema.columns(schema.RUNS_TABLE))
    # The analyser knows only the declared tables: a clean analysis means no other column is read.
    assert all(not analysis[query_id].errors for query_id in LIBRARY)


def test_analysed_schema_is_schema_json() -> None:
    declared = {**schema.tables(), **schema.external_tables()}
    tables = kusto.declared_tables()
    assert set(tables) == set(declared) and "AWSCloudTrail" in tables
    for name, columns in tables.items():
        assert [c for c, _ in columns] == [c["name"] for c in declared[name]]


# -- headers --------------------------------------------------------------------------------------------


def test_every_header_is_complete() -> None:
    for query in LIBRARY.values():
        assert query.source == f"{query.id}.kql"
        assert query.title and query.description.endswith("."), query.id
        assert query.visualization in queries.VISUALIZATIONS
        assert timedelta(hours=1) <= query.timespan <= timedelta(days=90), query.id
        assert query.runs_locally or query.not_local_reason, query.id
        assert not query.text.lstrip().startswith("//"), query.id


GOOD = "// id: x\n// title: T\n// description: D\n// visualization: table\n// timespan: P1D\n// local: duckdb-kql\nT\n"
COMPLIANT = GOOD.replace("// local: duckdb-kql\n", "// local: duckdb-kql\n// control: key-rotation-90-days\n")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (GOOD.replace("// title: T\n", ""), "x.kql: header lacks title"),
        (GOOD.replace("P1D", "one day"), "x.kql: timespan 'one day' is not an ISO 8601 duration"),
        (GOOD.replace("table", "pie"), "x.kql: visualization 'pie' is not one of table, timechart, barchart, tiles"),
        (GOOD.replace("duckdb-kql", "maybe"), "x.kql: local must be 'duckdb-kql' or 'no: <why"),
        (GOOD.replace("// id: x", "// id: X_1"), "x.kql: id 'X_1' must be lowercase words joined by dashes"),
        (GOOD.replace("// id: x", "// id: y"), "x.kql: id 'y' must match the file name (y.kql)"),
        (GOOD.replace("// title: T", "// owner: me"), "x.kql:2: unknown header key 'owner'"),
        (GOOD.replace("// title: T", "// title: T\n// title: U"), "x.kql:3: header key 'title' given twice"),
        (GOOD.replace("// title: T", "// Title T"), "x.kql:2: expected `// key: value` in the header"),
        (GOOD.replace("T\n", "\n").replace("// title: \n", "// title: T\n"), "x.kql: no query after the header"),
        (COMPLIANT.replace("key-rotation-90-days", "rotation"), "x.kql: unknown control 'rotation' (the map has"),
        (COMPLIANT.replace("key-rotation-90-days", "CIS v5.0 1.13"), "x.kql: unknown control 'CIS v5.0 1.13'"),
        (COMPLIANT.replace("// control:", "// controls:"), "x.kql:7: unknown header key 'controls'"),
    ],
)
def test_a_malformed_header_is_refused_with_file_and_reason(text: str, problem: str) -> None:
    with pytest.raises(queries.LibraryError) as caught:
        queries.parse(text, "x.kql")
    assert str(caught.value).startswith(problem), str(caught.value)


def test_a_compliance_header_takes_ids_severity_and_remediation_from_the_map() -> None:
    query = queries.parse(COMPLIANT, "x.kql")
    assert query.control_ids == ("key-rotation-90-days",)
    assert query.controls == ("CIS v5.0 1.13", "CIS v6.0 2.13", "Security Hub IAM.3")
    assert query.severity == "Medium" and query.remediation and query.remediation.startswith("Create a second key")
    both = queries.parse(COMPLIANT.replace("key-rotation-90-days", "key-rotation-90-days, root-access-key"), "x.kql")
    assert both.severity == "High"  # the highest of its checks
    assert both.controls[-1] == "Security Hub IAM.4"


FUNCTION = "// id: KeyReport_X\n// title: T\n// description: D.\n// local: duckdb-kql\nT\n"


@pytest.mark.parametrize(
    ("text", "source", "problem"),
    [
        (FUNCTION, "KeyReport_Y.kql", "KeyReport_Y.kql: function 'KeyReport_X' must match the file name"),
        (FUNCTION.replace("KeyReport_X", "current_keys"), "current_keys.kql", "current_keys.kql: function name"),
        (FUNCTION.replace("// local", "// timespan: P1D\n// local"), "KeyReport_X.kql", "KeyReport_X.kql:4: unknown"),
        (FUNCTION.replace("// title: T\n", ""), "KeyReport_X.kql", "KeyReport_X.kql: header lacks title"),
    ],
)
def test_a_malformed_function_file_is_refused(text: str, source: str, problem: str) -> None:
    with pytest.raises(queries.LibraryError) as caught:
        queries.parse_function(text, source)
    assert str(caught.value).startswith(problem), str(caught.value)


def test_a_function_is_defined_as_duckdb_kql_and_the_workspace_take_it() -> None:
    function = queries.parse_function(FUNCTION, "KeyReport_X.kql")
    assert function.definition() == "function KeyReport_X() {\nT\n}"


def test_header_continuation_lines_join_the_description() -> None:
    text = GOOD.replace("// description: D\n", "// description: first part\n//   second part.\n")
    assert queries.parse(text, "x.kql").description == "first part second part."


def test_an_unknown_query_name_suggests_the_close_ones() -> None:
    with pytest.raises(queries.UnknownQuery, match=r"no query named 'rotaton-due'\. Did you mean: rotation-due"):
        queries.find("rotaton-due")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("P2D", timedelta(days=2)), ("PT26H", timedelta(hours=26)), ("p1dt6h30m", timedelta(days=1, hours=6, minutes=30))],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert queries.parse_duration(text) == expected
    assert queries.parse_duration(queries.format_duration(expected)) == expected


@pytest.mark.parametrize("text", ["", "P", "PT", "2d", "P-1D", "P0D", "PT1.5H"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        queries.parse_duration(text)


# -- the local engine (duckdb-kql) ----------------------------------------------------------------------


def empty_workspace() -> LocalWorkspace:
    """Both tables with every declared column and no rows: enough to translate and type each query."""
    return LocalWorkspace(
        StoredTable(name, {c: t for c, t in columns if c != "TimeGenerated"}, [])
        for name, columns in kusto.declared_tables().items()
    )


@pytest.mark.parametrize("query_id", sorted(q.id for q in LIBRARY.values() if q.runs_locally))
def test_local_queries_run_and_return_the_columns_kusto_would(
    query_id: str, analysis: dict[str, kusto.Analysis]
) -> None:
    result = empty_workspace().run(LIBRARY[query_id].text)
    kusto_columns = analysis[query_id].columns
    assert result.column_names == [name for name, _ in kusto_columns]
    assert [c.type for c in result.columns] == [kind for _, kind in kusto_columns]


@pytest.mark.parametrize("query_id", sorted(q.id for q in LIBRARY.values() if not q.runs_locally))
def test_queries_marked_not_local_are_refused_by_the_engine(query_id: str) -> None:
    # When duckdb-kql learns the construct, this fails: then the header must say `local: duckdb-kql`.
    with pytest.raises(LocalUnsupported, match="cannot run this query"):
        empty_workspace().run(LIBRARY[query_id].text)
