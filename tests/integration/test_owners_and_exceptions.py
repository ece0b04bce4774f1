"""Owners and exceptions end to end: the real handler reads the sandbox estate's owner and keyreport-exception
tags (GetAccountAuthorizationDetails over the moto server), ships them on the user rows, and the shipped
workspace functions (duckdb-kql) give every finding its owner and except exactly what each valid exception names,
as an independent reading of the same tags (sandbox/expected.py) says. Then the estate changes through IAM's own
API: an exception's expiry moved to yesterday, and a new key for the user whose old key is excepted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from keyreport import queries
from keyreport.records import ROOT_USER, mask_key_id
from sandbox.estate import EXCEPTION_CASES, EXCEPTION_TAG, _backend_for_arn, exception_users
from sandbox.stack import Stack
from scripts import render_alerts
from tests.integration.conftest import new_world
from tests.integration.test_current_state import run_complete
from tests.integration.test_query_results import Shipped


@pytest.fixture(scope="module")
def tagged(stack: Stack) -> Iterator[Shipped]:
    with pytest.MonkeyPatch.context() as patch:
        shipped = Shipped(new_world(stack, patch), set(), datetime.now(UTC), {})
        run_complete(shipped)
        yield shipped


def findings(shipped: Shipped) -> list[dict[str, Any]]:
    return shipped.workspace().run("KeyReport_Findings()", now=shipped.at).records()


def test_the_estate_carries_every_exception_case(tagged: Shipped) -> None:
    assert set(exception_users(tagged.world.estate)) == set(EXCEPTION_CASES)


def test_every_finding_of_a_user_carries_its_owner_and_no_other_tag_leaves_aws(tagged: Shipped) -> None:
    expected = tagged.expected
    rows = findings(tagged)
    owned = [r for r in rows if r["user_s"] not in ("", ROOT_USER)]
    assert {r["Owner"] for r in owned if r["Owner"]}, "the estate tags owners"
    for row in owned:
        assert row["Owner"] == expected.owner(row["user_s"]), row["Resource"]
    stored = json.dumps(tagged.world.stack.collector.rows("AWS_Access_Key_Report_Users_CL"), default=str)
    unrelated = {value for user in tagged.world.estate.users for key, value in user.tags if key == "cost-centre"}
    assert unrelated and not [value for value in unrelated if value in stored], "only owner and exception tags ship"


def test_tag_exceptions_except_exactly_what_they_name(tagged: Shipped) -> None:
    expected = tagged.expected
    rows = findings(tagged)
    shown = {(r["ControlId"], r["Resource"]) for r in rows if r["Excepted"]}
    wanted = {(control, resource) for control, found in expected.excepted(expected.run_time.date()).items()
              for resource in found}  # fmt: skip
    assert shown == wanted and shown, "the valid user-level and key-level exceptions, nothing else"
    users = exception_users(tagged.world.estate)
    key_user = users["valid_key"]
    other_keys = [k for k in tagged.world.estate.keys_of(key_user)][1:]
    for key in other_keys:  # the user's other key is not covered by its first key's exception
        assert ("key-rotation-90-days", f"{key_user} {mask_key_id(key.access_key_id)}") not in shown
    summary = {
        r["ControlId"]: (r["Failing"], r["Excepted"], r["Checked"])
        for r in tagged.workspace().run(queries.library()["compliance-summary"].text, now=tagged.at).records()
    }
    assert summary == expected.compliance()


def test_refused_and_expired_exceptions_are_listed_and_except_nothing(tagged: Shipped) -> None:
    users = exception_users(tagged.world.estate)
    listed = tagged.workspace().run("KeyReport_Exceptions()", now=tagged.at).records()
    status = {r["user_s"]: (r["Status"], r["Problem"]) for r in listed}
    assert status[users["valid_user"]] == ("active", "")
    assert status[users["valid_key"]] == ("active", "")
    assert status[users["expired"]][0] == "expired"
    for case in ("malformed", "no_expiry", "over_long"):
        state, problem = status[users[case]]
        assert state == "refused" and problem, case
    refused = {r["Resource"] for r in findings(tagged) if r["ControlId"] == "exception-valid" and r["Failing"]}
    assert {resource.split(" ")[0] for resource in refused} == {
        users[c] for c in ("malformed", "no_expiry", "over_long")
    }


def test_the_alert_rules_count_only_what_no_exception_covers(tagged: Shipped) -> None:
    expected = tagged.expected
    # The rotation rule, whose check the estate's exceptions except; the other rules run the same text narrowed to
    # another check (tests/queries/test_dashboards.py holds every rule to that form).
    for alert in render_alerts.ALERTS:
        if alert.control != "key-rotation-90-days":
            continue
        result = tagged.workspace().run(alert.library_query().text, now=tagged.at).records()
        failing, _, _ = expected.compliance().get(alert.control, (0, 0, 0))
        assert sum(r["FailingResources"] for r in result) == failing, alert.name


def test_an_exception_moved_to_yesterday_and_a_new_key_bring_findings_back(tagged: Shipped) -> None:
    iam = tagged.world.stack.aws.client("iam")
    users = exception_users(tagged.world.estate)
    lapsing, key_user = users["valid_user"], users["valid_key"]
    [tag] = [t for t in iam.list_user_tags(UserName=lapsing)["Tags"] if t["Key"].startswith(EXCEPTION_TAG)]
    yesterday = (tagged.expected.run_time - timedelta(days=1)).date().isoformat()
    words = [f"until={yesterday}" if word.startswith("until=") else word for word in tag["Value"].split(" ")]
    iam.tag_user(UserName=lapsing, Tags=[{"Key": tag["Key"], "Value": " ".join(words)}])
    # The user whose first key is excepted gets a new key in place of its other one, made old in moto.
    excepted, *others = iam.list_access_keys(UserName=key_user)["AccessKeyMetadata"]
    for key in others:
        iam.delete_access_key(UserName=key_user, AccessKeyId=key["AccessKeyId"])
    new = iam.create_access_key(UserName=key_user)["AccessKey"]["AccessKeyId"]
    arn = iam.get_user(UserName=key_user)["User"]["Arn"]
    [made] = [k for k in _backend_for_arn(arn).users[key_user].access_keys if k.access_key_id == new]
    made.create_date = made.create_date - timedelta(days=200)
    expected = run_complete(tagged)
    rows = findings(tagged)
    rotation = {r["Resource"]: r for r in rows if r["ControlId"] == "key-rotation-90-days"}
    lapsed = [r for resource, r in rotation.items() if resource.startswith(f"{lapsing} ")]
    assert lapsed and not [r for r in lapsed if r["Excepted"]], "an expired exception excepts nothing"
    fresh = rotation[f"{key_user} {mask_key_id(new)}"]
    assert fresh["Failing"] and not fresh["Excepted"], "a key's exception does not cover the user's new key"
    assert rotation[f"{key_user} {mask_key_id(excepted['AccessKeyId'])}"]["Excepted"]
    wanted = {(control, resource) for control, found in expected.excepted(expected.run_time.date()).items()
              for resource in found}  # fmt: skip
    assert {(r["ControlId"], r["Resource"]) for r in rows if r["Excepted"]} == wanted
