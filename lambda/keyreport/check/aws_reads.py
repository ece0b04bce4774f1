"""AWS hops of every run: who the function is, each IAM read the inventory makes (one cheap call each), the report."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from keyreport.check.explain import aws_failure
from keyreport.errors import HopFailed, aws_error_code
from keyreport.records import mask_key_id

if TYPE_CHECKING:
    from collections.abc import Callable

    from keyreport.aws.clients import AwsClients

REPORT_POLL_SECONDS = (1.0, 2.0, 4.0, 0.0)
_REPORT_STATES = {"ReportInProgress": "being generated", "ReportNotPresent": "not generated yet"}


class AwsReads:
    """One account's hops; later hops use what earlier ones found (a user to list keys of, a key to ask about)."""

    def __init__(self, aws: AwsClients, who: str = "the function's role") -> None:
        self.aws = aws
        self.who = who
        self.account = ""
        self.partition = "aws"
        self.user: str | None = None
        self.key_id: str | None = None

    def hops(self) -> list[tuple[str, Callable[[], str]]]:
        return [
            ("aws identity", self.identity),
            ("iam:ListUsers", self.list_users),
            ("iam:ListAccessKeys", self.list_access_keys),
            ("iam:GetAccessKeyLastUsed", self.last_used),
            ("iam:GetAccountAuthorizationDetails", self.user_tags),
            ("credential report", self.credential_report),
        ]

    def _call(self, action: str, call: Callable[[], Any], resource: str = "*") -> Any:
        try:
            return call()
        except (ClientError, BotoCoreError) as error:
            raise aws_failure(error, action, resource, self.who) from None

    def _users_resource(self) -> str:
        return f"arn:{self.partition}:iam::{self.account or '<account id>'}:user/*"

    def identity(self) -> str:
        found = self._call("sts:GetCallerIdentity", self.aws.sts().get_caller_identity)
        self.account, arn = found["Account"], found["Arn"]
        self.partition = arn.split(":")[1]
        return f"account {self.account} as {arn}"

    def list_users(self) -> str:
        iam = self.aws.client("iam")
        users = self._call("iam:ListUsers", lambda: iam.list_users(MaxItems=1))["Users"]
        self.user = users[0]["UserName"] if users else None
        return "IAM users can be listed" + ("" if users else " (the account has none)")

    def list_access_keys(self) -> str:
        if self.user is None:
            return "not exercised: no IAM user to list keys of"
        iam, user = self.aws.client("iam"), self.user
        keys = self._call(
            "iam:ListAccessKeys", lambda: iam.list_access_keys(UserName=user, MaxItems=1), self._users_resource()
        )["AccessKeyMetadata"]
        self.key_id = keys[0]["AccessKeyId"] if keys else None
        return "access keys can be listed"

    def last_used(self) -> str:
        if self.key_id is None:
            return "not exercised: no access key to ask about"
        iam, key_id = self.aws.client("iam"), self.key_id
        self._call(
            "iam:GetAccessKeyLastUsed", lambda: iam.get_access_key_last_used(AccessKeyId=key_id), self._users_resource()
        )
        return f"last use can be read (asked about {mask_key_id(key_id)})"

    def user_tags(self) -> str:
        """The owner and exception tags' read (one user's page): without it runs ship no owner and no exception."""
        iam = self.aws.client("iam")
        self._call(
            "iam:GetAccountAuthorizationDetails",
            lambda: iam.get_account_authorization_details(Filter=["User"], MaxItems=1),
        )
        return "users' owner and exception tags can be read (1,000 users a call)"

    def credential_report(self) -> str:
        """The report's state: generated on request (what every run does first), then its age."""
        iam = self.aws.client("iam")
        for wait in REPORT_POLL_SECONDS:  # a few seconds, as IAM takes for a small account; the run waits 60 s
            state = self._call("iam:GenerateCredentialReport", iam.generate_credential_report)["State"]
            if state == "COMPLETE":
                break
            time.sleep(wait)
        else:
            return f"generation {state.lower()}: the run waits for it (up to 60 s) or reads last use key by key"
        try:
            generated = iam.get_credential_report()["GeneratedTime"]
        except ClientError as error:
            if aws_error_code(error) in _REPORT_STATES:
                return f"report {_REPORT_STATES[aws_error_code(error)]}: the run waits for it"
            raise aws_failure(error, "iam:GetCredentialReport", "*", self.who) from None
        except BotoCoreError as error:
            raise aws_failure(error, "iam:GetCredentialReport", "*", self.who) from None
        age = datetime.now(UTC) - generated.astimezone(UTC)
        if age.total_seconds() < -300:
            raise HopFailed(
                f"the report claims to be generated {-age} in the future",
                "this machine's clock is behind AWS's (clock skew)",
                "synchronise the clock (NTP)",
            )
        return f"complete, generated {_age(age.total_seconds())} ago (a run reuses one up to 4 hours old)"


def _age(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h" if minutes < 48 * 60 else f"{minutes // 1440} days"
