"""The credential report is polled so that a report that becomes ready is noticed within half a second."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders

from keyreport.aws.credential_report import POLL_SECONDS, fetch_credential_report

LATENCY = 0.05  # each IAM call takes this long on the fake clock
CONTENT = b"user,arn,password_enabled,mfa_active\nalice,arn:aws:iam::123456789012:user/alice,true,false\n"


class ReportThatTakes:
    """IAM whose report becomes ready `seconds` after the first GenerateCredentialReport, on a fake clock."""

    def __init__(self, seconds: float, latency: float = LATENCY) -> None:
        self.seconds, self.latency = seconds, latency
        self.now = 0.0
        self.polls = 0
        self.noticed: float | None = None
        self.client = boto3.client("iam", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
        self.client.meta.events.register("before-call.iam.GenerateCredentialReport", self._generate)  # type: ignore[arg-type]
        self.client.meta.events.register("before-call.iam.GetCredentialReport", self._get)  # type: ignore[arg-type]

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.now += seconds

    def _answer(self, parsed: dict[str, Any]) -> tuple[AWSResponse, dict[str, Any]]:
        self.now += self.latency
        return AWSResponse("https://iam.amazonaws.com/", 200, HTTPHeaders(), None), parsed

    def _generate(self, **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        self.polls += 1
        answer = self._answer({"State": "INPROGRESS"})
        if self.now >= self.seconds:
            answer[1]["State"] = "COMPLETE"
            self.noticed = self.noticed if self.noticed is not None else self.now
        return answer

    def _get(self, **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        return self._answer({"Content": CONTENT, "GeneratedTime": datetime(2026, 11, 30, tzinfo=UTC)})


@pytest.mark.parametrize("seconds", [0.0, 0.2, 0.55, 9.99, 10.0, 37.3, 59.0])
def test_a_report_that_becomes_ready_is_noticed_within_half_a_second(seconds: float) -> None:
    iam = ReportThatTakes(seconds)
    report = fetch_credential_report(iam.client, 60, iam.sleep, lambda: iam.now).report
    assert report is not None and report.rows["alice"].password_enabled is True
    assert iam.noticed is not None and iam.noticed - seconds <= POLL_SECONDS + LATENCY
    assert iam.polls <= seconds / POLL_SECONDS + 2  # one poll per half second, no busy loop


def test_a_report_not_ready_within_the_wait_gives_up_after_a_bounded_number_of_polls() -> None:
    iam = ReportThatTakes(600)
    assert fetch_credential_report(iam.client, 60, iam.sleep, lambda: iam.now).report is None
    assert 60 / POLL_SECONDS - 2 <= iam.polls <= 60 / POLL_SECONDS + 1 and iam.now <= 60 + POLL_SECONDS


def test_polls_slower_than_the_interval_follow_each_other_without_a_pause() -> None:
    iam = ReportThatTakes(5, latency=0.7)
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        iam.sleep(seconds)

    assert fetch_credential_report(iam.client, 60, sleep, lambda: iam.now).report is not None
    assert slept and set(slept) == {0.0} and iam.noticed is not None and iam.noticed - 5 <= 0.7


def test_a_sleep_that_reports_a_stop_ends_the_polling() -> None:
    iam = ReportThatTakes(30)
    assert fetch_credential_report(iam.client, 60, lambda _: True, lambda: iam.now).report is None
    assert iam.polls == 1
