"""Real-world IAM conditions on top of moto: per-call latency and IAM's per-API throttling.

Both hook botocore's event system of the session under test, the way a network or IAM itself would act
on the requests: the product's code runs unmodified.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import boto3
from botocore.awsrequest import AWSPreparedRequest, AWSResponse

from sandbox.aws_faults import error_response, query_action


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


class IamConditions:
    """Counts every IAM request; adds `latency` seconds to each; throttles each API to `rate`/s (burst)."""

    def __init__(self, latency: float = 0.0, rate: float | None = None, burst: float = 100) -> None:
        self.latency = latency
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
        return None if allowed else error_response(request, "Throttling", "Rate exceeded")
