"""The credential report is read row by row: one row that does not parse costs only its user."""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber

from keyreport.aws.credential_report import fetch_credential_report, parse_credential_report
from tests.unit.aws.test_inventory import HEADER, ROOT, T0, T1, USED, user_line


def parse(*lines: str, header: str = HEADER) -> tuple[dict[str, object], list[str]]:
    report = parse_credential_report("\n".join([header, *lines]).encode(), T1)
    return dict(report.rows), report.problems


def quoted(line: str) -> str:
    """The same row as AWS writes it when it quotes every field."""
    return ",".join(f'"{field}"' for field in line.split(","))


def test_unquoted_and_quoted_rows_read_the_same() -> None:
    plain, _ = parse(ROOT, user_line("alice", (T0, USED), None))
    quoted_rows, problems = parse(quoted(ROOT), quoted(user_line("alice", (T0, USED), None)), header=quoted(HEADER))
    assert plain == quoted_rows and not problems
    alice = quoted_rows["alice"]
    assert alice.slot_for(T0).last_used_date == USED  # type: ignore[attr-defined,union-attr]


def test_a_quoted_name_with_a_comma_is_one_field() -> None:
    line = user_line("a,b", (T0, USED), None).replace("a,b,arn", '"a,b","arn', 1).replace("user/a,b,", 'user/a,b",', 1)
    rows, problems = parse(ROOT, line)
    assert not problems
    assert rows["a,b"].arn == "arn:aws:iam::123456789012:user/a,b"  # type: ignore[attr-defined]


def test_an_unquoted_name_with_commas_is_realigned_by_its_arn() -> None:
    rows, problems = parse(ROOT, user_line("ops,team,x", (T0, USED), None), user_line("bob", None, None))
    assert not problems and set(rows) == {"<root_account>", "ops,team,x", "bob"}
    row = rows["ops,team,x"]
    assert row.arn.endswith("user/ops,team,x") and row.password_enabled is True  # type: ignore[attr-defined]
    assert row.slot_for(T0).last_used_service == "s3"  # type: ignore[attr-defined,union-attr]


def test_a_truncated_report_costs_only_the_cut_row() -> None:
    cut = user_line("carol", (T0, USED), None)[:70]
    rows, problems = parse(ROOT, user_line("alice", (T0, USED), None), cut)
    assert set(rows) == {"<root_account>", "alice"}
    assert len(problems) == 1 and "line 4" in problems[0] and "cut short" in problems[0]


def test_unreadable_key_columns_keep_the_password_and_mfa_flags() -> None:
    line = user_line("dave", (T0, USED), None).replace(T0.isoformat(), "yesterday-ish")
    rows, problems = parse(ROOT, line)
    dave = rows["dave"]
    assert (dave.password_enabled, dave.mfa_active, dave.slots_known) == (True, False, False)  # type: ignore[attr-defined]
    assert dave.slot_for(T0) is None  # type: ignore[attr-defined]
    assert problems == [
        "credential report line 3 (dave): key columns unreadable "
        "(Invalid isoformat string: 'yesterday-ish'): keys read one by one"
    ]


def test_a_row_that_cannot_be_realigned_is_skipped_with_the_reason() -> None:
    extra = user_line("eve", (T0, USED), None) + ",surplus"  # one field too many and no comma in the name
    rows, problems = parse(ROOT, extra)
    assert "eve" not in rows and "not realigned" in problems[0]


def test_mottos_report_has_no_root_row_and_says_so() -> None:
    moto_line = (
        "frank,arn:aws:iam::123456789012:user/frank,2020-01-01T00:00:00+00:00,false,not_supported,"
        "2020-01-01T00:00:00+00:00,not_supported,false,true,2024-03-01T10:00:00+00:00,N/A,not_supported,"
        "not_supported,false,N/A,N/A,not_supported,not_supported,false,N/A,false,N/A"
    )
    report = parse_credential_report(f"{HEADER}\n{moto_line}\n".encode(), T1)
    assert report.rows["frank"].slot_for(T0) is not None and not report.problems
    assert report.root_problem() == "the credential report has no <root_account> row: the root user's keys are unknown"


@pytest.mark.parametrize("content", [b"", b"\xff\xfe", b"not,a,report\n1,2,3\n"])
def test_content_that_is_no_report_at_all_is_a_value_error(content: bytes) -> None:
    with pytest.raises(ValueError, match="unreadable credential report"):
        parse_credential_report(content, T1)


def stubbed_iam() -> tuple[object, Stubber]:
    client = boto3.client("iam", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    return client, Stubber(client)


def test_an_unusable_report_is_an_error_and_leaves_the_root_keys_unknown() -> None:
    client, stub = stubbed_iam()
    stub.add_response("generate_credential_report", {"State": "COMPLETE"})
    stub.add_response("get_credential_report", {"Content": b"<html>proxy error</html>", "GeneratedTime": T1})
    with stub:
        outcome = fetch_credential_report(client, 5, sleep=lambda _: None)  # type: ignore[arg-type]
    assert outcome.report is None and not outcome.root_keys_known
    assert outcome.errors == [
        "credential report unusable: unreadable credential report: no header line naming the user and arn "
        "columns; the root user's keys are unknown"
    ]


def test_a_degraded_report_names_each_problem() -> None:
    client, stub = stubbed_iam()
    content = "\n".join([HEADER, ROOT, user_line("alice", (T0, USED), None)[:40]]).encode()
    stub.add_response("generate_credential_report", {"State": "COMPLETE"})
    stub.add_response("get_credential_report", {"Content": content, "GeneratedTime": datetime(2026, 1, 1, tzinfo=UTC)})
    with stub:
        outcome = fetch_credential_report(client, 5, sleep=lambda _: None)  # type: ignore[arg-type]
    assert outcome.root_keys_known and len(outcome.errors) == 1 and "line 3 skipped" in outcome.errors[0]
