"""The sinks' retry rules as tables: each row is an answer and the decision it must lead to."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

from keyreport.deadline import Deadline
from keyreport.sinks import data_collector, logs_ingestion
from keyreport.sinks.retry import Answer, Backoff, Decision, GiveUp, Halve, RefreshKey, Retry, retry_after_seconds

BACKOFF = Backoff(max_attempts=4, base_seconds=1, cap_seconds=8, rng=lambda: 1.0)
PLENTY = 3600.0


SIGNATURE = "InvalidAuthorization: An invalid signature was specified in the Authorization header"


@pytest.mark.parametrize(
    ("answer", "attempt", "key_refreshed", "remaining", "decision"),
    [
        (Answer(failure="tls"), 1, False, PLENTY, GiveUp("tls")),
        (Answer(403), 1, False, PLENTY, RefreshKey()),
        (Answer(403, detail=SIGNATURE), 2, True, PLENTY, GiveUp("signature")),
        # Not the documented signature refusal, even with a fresh key: the endpoint refuses the API itself.
        (Answer(403, detail="Forbidden"), 2, True, PLENTY, GiveUp("retired")),
        (Answer(410, detail="Gone"), 1, False, PLENTY, GiveUp("retired")),
        (Answer(400, detail="InactiveCustomer: The workspace has been closed."), 1, False, PLENTY, GiveUp("retired")),
        (Answer(404), 1, False, PLENTY, Halve()),
        (Answer(413), 1, False, PLENTY, Halve()),
        (Answer(400), 1, False, PLENTY, GiveUp("refused")),
        (Answer(401), 1, False, PLENTY, GiveUp("refused")),
        (Answer(429), 1, False, PLENTY, Retry(1.0)),
        (Answer(429, retry_after=7), 1, False, PLENTY, Retry(7.0)),
        (Answer(429, retry_after=70), 1, False, 60.0, GiveUp("exhausted")),
        (Answer(500), 3, False, PLENTY, Retry(4.0)),
        (Answer(503), 4, False, PLENTY, GiveUp("exhausted")),
        (Answer(408), 2, True, PLENTY, Retry(2.0)),
        (Answer(failure="connection"), 1, False, PLENTY, Retry(1.0)),
        (Answer(failure="connection"), 1, False, 0.5, GiveUp("exhausted")),
    ],
)
def test_data_collector_decisions(
    answer: Answer, attempt: int, key_refreshed: bool, remaining: float, decision: Decision
) -> None:
    assert data_collector.decide(answer, attempt, key_refreshed, BACKOFF, remaining) == decision


def _http_error(status: int, headers: dict[str, str] | None = None) -> HttpResponseError:
    class Response:
        def __init__(self) -> None:
            self.status_code = status
            self.reason = "x"
            self.headers = headers or {}

        def text(self) -> str:
            return ""

    response = Response()
    return HttpResponseError(message="refused", response=response)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("error", "answer"),
    [
        (_http_error(429, {"Retry-After": "3"}), Answer(429, retry_after=3.0)),
        (_http_error(403), Answer(403)),
        (ClientAuthenticationError("no token"), Answer(failure="no-token")),
        (ServiceRequestError("refused"), Answer(failure="connection")),
        (ServiceResponseError("reset"), Answer(failure="connection")),
        (ValueError("odd"), Answer(failure="unknown")),
    ],
)
def test_logs_ingestion_reads_the_sdk_errors(error: Exception, answer: Answer) -> None:
    assert logs_ingestion.answer_of(error) == answer


@pytest.mark.parametrize(
    ("answer", "attempt", "remaining", "decision"),
    [
        (Answer(failure="no-token"), 1, PLENTY, GiveUp("no-token")),
        (Answer(400), 1, PLENTY, GiveUp("refused")),
        (Answer(403), 1, PLENTY, GiveUp("refused")),
        (Answer(413), 1, PLENTY, GiveUp("refused")),
        (Answer(429, retry_after=2), 1, PLENTY, Retry(2.0)),
        (Answer(429, retry_after=90), 1, 30.0, GiveUp("exhausted")),
        (Answer(502), 2, PLENTY, Retry(2.0)),
        (Answer(504), 4, PLENTY, GiveUp("exhausted")),
        (Answer(failure="connection"), 1, PLENTY, Retry(1.0)),
        (Answer(failure="unknown"), 1, PLENTY, GiveUp("refused")),
    ],
)
def test_logs_ingestion_decisions(answer: Answer, attempt: int, remaining: float, decision: Decision) -> None:
    assert logs_ingestion.decide(answer, attempt, BACKOFF, remaining) == decision


def test_retry_after_in_seconds_or_http_date() -> None:
    assert retry_after_seconds({"Retry-After": "7"}) == 7
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 < (retry_after_seconds({"retry-after": later}) or 0) <= 30
    assert retry_after_seconds({}) is None and retry_after_seconds({"Retry-After": "soon"}) is None


def test_backoff_is_jittered_and_capped_and_the_server_wins() -> None:
    policy = Backoff(max_attempts=5, base_seconds=1, cap_seconds=8, rng=lambda: 1.0)
    assert [policy.delay(n, None) for n in range(1, 6)] == [1, 2, 4, 8, 8]
    assert policy.delay(1, 12.5) == 12.5
    assert Backoff(rng=lambda: 0.25).delay(3, None) == 1.0


def test_deadline_subtracts_the_margin() -> None:
    assert Deadline(lambda: 30_000, margin_seconds=20).remaining() == 10
    assert Deadline(lambda: 5_000, margin_seconds=20).remaining() == 0


@pytest.mark.parametrize(
    ("retry_after", "remaining", "expected"),
    [
        (86_400.0, math.inf, GiveUp("exhausted")),  # a workstation run has no deadline: the cap bounds it
        (301.0, math.inf, GiveUp("exhausted")),
        (300.0, math.inf, Retry(300.0)),
        (30.0, 10.0, GiveUp("exhausted")),  # past the deadline
        (5.0, 10.0, Retry(5.0)),
    ],
)
def test_a_retry_after_beyond_the_cap_or_the_deadline_gives_up(
    retry_after: float, remaining: float, expected: Retry | GiveUp
) -> None:
    assert Backoff().after(Answer(429, retry_after), 1, remaining) == expected
