"""The usual AWS environment mistakes, said in one line with the fix."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, NoRegionError

from keyreport.errors import aws_credentials_problem, aws_problem


def client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "..."}}, "GetCallerIdentity")


@pytest.mark.parametrize(
    ("error", "says"),
    [
        (NoCredentialsError(), "no AWS credentials found: set AWS_PROFILE"),
        (NoRegionError(), "no AWS region: set AWS_REGION"),
        (client_error("ExpiredToken"), "AWS refused the credentials (ExpiredToken): they expired or are wrong"),
        (client_error("InvalidClientTokenId"), "AWS refused the credentials (InvalidClientTokenId)"),
    ],
)
def test_credential_mistakes_are_named_with_the_fix(error: Exception, says: str) -> None:
    assert (aws_credentials_problem(error) or "").startswith(says)
    assert aws_problem(error).startswith(says)


def test_other_errors_are_not_credential_mistakes() -> None:
    unreachable = EndpointConnectionError(endpoint_url="https://sts.example.invalid/")
    assert aws_credentials_problem(unreachable) is None
    assert aws_problem(unreachable).startswith("cannot reach the AWS endpoint (Could not connect")
    assert aws_credentials_problem(client_error("Throttling")) is None
    assert aws_problem(client_error("AccessDenied")).startswith("AWS: AccessDenied")
