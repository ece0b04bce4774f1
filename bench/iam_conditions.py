"""Real-world IAM conditions on top of moto: per-call latency, IAM's per-API throttling, a slow credential report.

All hook botocore's event system of the session under test, the way a network or IAM itself would act
on the requests: the product's code runs unmodified.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import boto3
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.compat import HTTPHeaders
from botocore.handlers import BUILTIN_HANDLERS
from moto.core.responses import ActionResult
from moto.iam.responses import IamResponse

from sandbox.aws_faults import error_response, query_action

_IN_PROGRESS = (
    b'<GenerateCredentialReportResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">'
    b"<GenerateCredentialReportResult><State>INPROGRESS</State></GenerateCredentialReportResult>"
    b"<ResponseMetadata><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ResponseMetadata>"
    b"</GenerateCredentialReportResponse>"
)


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data


class TokenBucket:
    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.updated = burst, time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


def iam_page(response: IamResponse, items: list[Any]) -> tuple[list[Any], dict[str, Any]]:
    """The page of `items` a request asks for, as IAM pages a list: MaxItems (default 100, at most 1,000) from the
    Marker; with IsTruncated, and the next Marker when there is more."""
    start = int(response._get_param("Marker") or 0)
    size = min(int(response._get_param("MaxItems") or 100), 1000)
    more: dict[str, Any] = {"IsTruncated": start + size < len(items)}
    if more["IsTruncated"]:
        more["Marker"] = str(start + size)
    return items[start : start + size], more


@contextlib.contextmanager
def answering(action: str, handler: Callable[[IamResponse], ActionResult]) -> Iterator[None]:
    """moto's IAM answers `action` (its IamResponse method name) with `handler` while in the block."""
    original = getattr(IamResponse, action)
    setattr(IamResponse, action, handler)
    try:
        yield
    finally:
        setattr(IamResponse, action, original)


def iam_paging() -> contextlib.AbstractContextManager[None]:
    """ListUsers in pages of MaxItems (IAM's default 100, at most 1,000) with a Marker, as IAM pages it: moto
    returns every user in one page, which makes a run hold 5,000 users at once where IAM never would."""

    def list_users(self: IamResponse) -> ActionResult:
        users, more = iam_page(self, list(self.backend.list_users(self._get_param("PathPrefix"), None, None)))
        return ActionResult({"Users": users, **more})

    return answering("list_users", list_users)


class IamConditions:
    """Counts every IAM request; adds `latency` seconds to each; throttles each API to `rate`/s (burst)."""

    def __init__(
        self, latency: float = 0.0, rate: float | None = None, burst: float = 100, report_seconds: float = 0.0
    ) -> None:
        """`report_seconds`: the credential report is INPROGRESS until this long after the first request."""
        self.latency = latency
        self.report_seconds = report_seconds
        self._report_asked: float | None = None
        self.rate, self.burst = rate, burst
        self._lock = threading.Lock()
        self._buckets: dict[str, TokenBucket] = {}
        self.calls: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()
        self.in_flight = self.peak_in_flight = 0

    def install(self, session: boto3.Session) -> boto3.Session:
        # First, so these run before moto's own before-send handler answers the request.
        session.events.register_first("before-send.iam", self._before_send)  # type: ignore[arg-type]
        return session

    def install_everywhere(self) -> None:
        """For every session made from now on in this process, such as the member-account sessions the
        product makes itself; first, like `install`, so that it answers before moto does."""
        BUILTIN_HANDLERS.insert(0, ("before-send.iam", self._before_send))

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    def _before_send(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        action = query_action(request)
        with self._lock:
            self.calls[action] += 1
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            allowed = True
            if self.rate is not None:
                bucket = self._buckets.setdefault(action, TokenBucket(self.rate, self.burst))
                allowed = bucket.take()
                if not allowed:
                    self.throttled[action] += 1
        try:
            time.sleep(self.latency)  # the round trip, throttled or not
        finally:
            with self._lock:
                self.in_flight -= 1
        if not allowed:
            return error_response(request, "Throttling", "Rate exceeded")
        if action == "GenerateCredentialReport" and self._report_pending():
            headers = HTTPHeaders()
            headers["Content-Type"] = "text/xml"
            return AWSResponse(request.url, 200, headers, _Body(_IN_PROGRESS))
        return None  # moto's own before-send handler answers

    def _report_pending(self) -> bool:
        """The first request starts the report; it is INPROGRESS until `report_seconds` later, then moto's."""
        with self._lock:
            now = time.monotonic()
            if self._report_asked is None:
                self._report_asked = now
            return now - self._report_asked < self.report_seconds
