"""IAM's (and STS's) own error responses, injected on the wire in front of moto (moto has no throttling,
outages or denied roles).

`IamFaults.install(session)` hooks botocore's `before-send` event: a planned fault answers the request
with the HTTP status and XML error body the service itself sends, so the product's clients, botocore's retry
modes and the inventory see exactly what a throttled or failing IAM looks like. Nothing in the product
is patched; requests without a planned fault go to moto untouched.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import boto3
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.compat import HTTPHeaders

_ERROR = (
    '<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>{kind}</Type>'
    "<Code>{code}</Code><Message>{message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
)
STATUS = {
    "Throttling": 400,
    "AccessDenied": 403,
    "NoSuchEntity": 404,
    "ServiceFailure": 500,
    "ServiceUnavailable": 503,
    "ReportInProgress": 404,
}


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


def query_action(request: AWSPreparedRequest) -> str:
    """The operation of a query-protocol request (IAM, STS): its form's `Action`."""
    return parse_qs(_body(request).decode()).get("Action", [""])[0]


def _body(request: AWSPreparedRequest) -> bytes:
    return request.body if isinstance(request.body, bytes) else str(request.body or "").encode()


def error_response(request: AWSPreparedRequest, code: str, message: str | None = None) -> AWSResponse:
    """The answer IAM (or STS) itself gives for error `code`: its HTTP status and XML error body."""
    status = STATUS.get(code, 400)
    xml = _ERROR.format(
        kind="Receiver" if status >= 500 else "Sender",
        code=code,
        message=message or f"{code} (sandbox fault)",
        request_id="00000000-0000-0000-0000-000000000000",
    )
    headers = HTTPHeaders()
    headers["Content-Type"] = "text/xml"
    return AWSResponse(request.url, status, headers, _Body(xml.encode()))


class IamFaults:
    """Faults for a query-protocol service: "iam" (default) or "sts"."""

    def __init__(self, service: str = "iam") -> None:
        self.service = service
        self._lock = threading.Lock()
        self._plan: dict[str, deque[str]] = {}
        self._always: dict[str, str] = {}
        self._matching: list[tuple[str, str, str]] = []
        self.calls: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()

    def fail(self, action: str, code: str, count: int = 1) -> None:
        """Answer the next `count` calls of `action` (e.g. "ListAccessKeys") with IAM error `code`."""
        with self._lock:
            self._plan.setdefault(action, deque()).extend([code] * count)

    def fail_always(self, action: str, code: str) -> None:
        with self._lock:
            self._always[action] = code

    def fail_when(self, action: str, code: str, body_contains: str) -> None:
        """Always answer `action` with `code` when the request names `body_contains` (e.g. one account)."""
        with self._lock:
            self._matching.append((action, code, body_contains))

    def install(self, session: boto3.Session) -> boto3.Session:
        session.events.register_first(f"before-send.{self.service}", self._before_send)  # type: ignore[arg-type]
        return session

    def _before_send(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        action = query_action(request)
        with self._lock:
            self.calls[action] += 1
            queue = self._plan.get(action)
            code = queue.popleft() if queue else self._always.get(action)
            text = _body(request).decode(errors="replace")
            for matching_action, matching_code, needle in self._matching:
                if code is None and matching_action == action and needle in text:
                    code = matching_code
            if code is None:
                return None
            self.injected[action] += 1
        return error_response(request, code)


_REST_ERROR = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
    "<RequestId>0000000000000000</RequestId><HostId>sandbox</HostId></Error>"
)


def deny(session: boto3.Session, service: str, operation: str, code: str = "AccessDenied") -> boto3.Session:
    """Answer every `operation` of a REST-XML service (S3: "s3", "PutObject") as it answers a denied caller:
    403 with its XML error body. The request never reaches moto, so nothing is written."""

    def answer(request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        headers = HTTPHeaders()
        headers["Content-Type"] = "application/xml"
        body = _REST_ERROR.format(code=code, message="Access Denied")
        return AWSResponse(request.url, 403, headers, _Body(body.encode()))

    session.events.register_first(f"before-send.{service}.{operation}", answer)  # type: ignore[arg-type]
    return session
