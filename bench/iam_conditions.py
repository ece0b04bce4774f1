"""Real-world IAM conditions on top of moto: per-call latency, IAM's per-API throttling, a slow credential report.

All hook botocore's event system of the session under test, the way a network or IAM itself would act
on the requests: the product's code runs unmodified. `MotoCpu` measures the CPU moto spends answering, so
that the product's share of a process's CPU time can be told apart.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import boto3
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.compat import HTTPHeaders
from moto.core.models import botocore_stubber

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


class MotoCpu:
    """Thread CPU time spent in moto's request handling while active (moto answers every request, even
    those answered here first: botocore takes the first answer, but calls every before-send handler)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._lock = threading.Lock()
        self._original: Any = None

    def __enter__(self) -> MotoCpu:
        self._original = original = botocore_stubber.process_request

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                spent = time.thread_time() - started
                with self._lock:
                    self.seconds += spent

        botocore_stubber.process_request = timed  # type: ignore[method-assign]
        return self

    def __exit__(self, *_: object) -> None:
        botocore_stubber.process_request = self._original  # type: ignore[method-assign]


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
