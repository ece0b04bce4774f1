"""The check's pure parts: failures explained, JWT claims read for display only, hop lines, timeouts."""

from __future__ import annotations

import base64
import json
import threading

import pytest
from azure.core.exceptions import ClientAuthenticationError
from botocore.exceptions import ClientError, EndpointConnectionError

from keyreport.check.explain import AADSTS, aws_failure, entra_failure, statement
from keyreport.check.report import FAIL, PASS, Hop, Report, run_hop
from keyreport.check.sign_in import jwt_claims
from keyreport.errors import HopFailed


def client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}}, "ListUsers")


def test_a_denied_action_names_the_statement_to_add() -> None:
    failure = aws_failure(client_error("AccessDenied"), "iam:ListUsers")
    assert failure.detail == "iam:ListUsers answered AccessDenied"
    assert json.loads(failure.fix.split(": ", 1)[1]) == {"Effect": "Allow", "Action": "iam:ListUsers", "Resource": "*"}
    assert statement("s3:PutObject", "arn:aws:s3:::b/*") == (
        '{"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::b/*"}'
    )


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        (client_error("ExpiredToken"), "the AWS credentials are missing, expired or for another partition"),
        (EndpointConnectionError(endpoint_url="https://iam.amazonaws.com"), "the AWS endpoint is not reachable"),
        (client_error("Throttling"), "AWS refused iam:ListUsers"),
    ],
)
def test_other_aws_failures_have_their_own_cause(error: Exception, cause: str) -> None:
    assert aws_failure(error, "iam:ListUsers").cause == cause


def test_an_aadsts_code_is_explained_and_an_unknown_one_named() -> None:
    known = entra_failure(ClientAuthenticationError("Authentication failed: AADSTS7000215: Invalid client secret"), "X")
    assert (known.detail, (known.cause, known.fix)) == ("no token for X: AADSTS7000215", AADSTS[7000215])
    unknown = entra_failure(ClientAuthenticationError("AADSTS123456: something new"), "X", "hint")
    assert unknown.cause == "Entra refused the sign-in (AADSTS123456)" and unknown.fix.endswith("; hint")
    silent = entra_failure(ClientAuthenticationError("connection refused"), "X")
    assert silent.detail == "no token for X: connection refused"


def test_jwt_claims_are_read_only_from_a_well_formed_token() -> None:
    payload = base64.urlsafe_b64encode(json.dumps({"tid": "t", "appid": "a"}).encode()).decode().rstrip("=")
    assert jwt_claims(f"header.{payload}.signature") == {"tid": "t", "appid": "a"}
    for garbage in ("", "no-dots", "a.!!!.c", "a." + base64.urlsafe_b64encode(b"[1]").decode() + ".c"):
        assert jwt_claims(garbage) == {}


def test_a_hop_line_and_the_report_verdict() -> None:
    failed = Hop("data collector", FAIL, "answered 403", 12, "wrong key", "copy it")
    report = Report([Hop("clock", PASS, "within 1 s", 3), failed])
    assert report.lines() == [
        "✓ clock: within 1 s (3 ms)",
        "✗ data collector: answered 403 (12 ms)",
        "    cause: wrong key",
        "    fix:   copy it",
        "keyreport check: 1 of 2 hops did not pass",
    ]
    with_more = Report([failed, Hop("clock", PASS, "within 1 s", 3)])
    assert with_more.lines()[-2:] == ["  first failure: data collector: wrong key", "  fix: copy it"]
    assert not report.passed and not Report().passed  # no hop at all proves nothing
    assert report.as_dict()["hops"][1]["fix"] == "copy it"


def test_run_hop_reports_failures_exceptions_and_silence() -> None:
    def refuse() -> str:
        raise HopFailed("no", "because", "do this")

    def crash() -> str:
        raise KeyError("boom")

    release = threading.Event()
    assert run_hop("a", lambda: "fine", 1).status == PASS
    assert (run_hop("b", refuse, 1).cause, run_hop("b", refuse, 1).fix) == ("because", "do this")
    assert run_hop("c", crash, 1).detail == "KeyError: 'boom'"
    silent = run_hop("d", lambda: str(release.wait(5)), 0.2)
    release.set()
    assert (silent.status, silent.detail) == (FAIL, "no answer within 0.2 s") and silent.milliseconds < 2000
