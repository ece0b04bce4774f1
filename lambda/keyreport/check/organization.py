"""Organization mode's hops: listing the member accounts, and assuming the member role in one of them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from keyreport.aws.organization import SESSION_NAME, active_accounts
from keyreport.check.explain import aws_failure, statement
from keyreport.errors import HopFailed

if TYPE_CHECKING:
    from collections.abc import Callable

    from keyreport.aws.clients import AwsClients
    from keyreport.settings import OrganizationSettings


class OrganizationHops:
    def __init__(self, aws: AwsClients, organization: OrganizationSettings, account: str | None = None) -> None:
        self.aws = aws
        self.organization = organization
        self.account = account  # the member account to try; default: the first ACTIVE one that is not this one
        self.accounts: list[str] = []

    def hops(self) -> list[tuple[str, Callable[[], str]]]:
        return [
            ("organizations:ListAccounts", self.list_accounts),
            ("account queue", self.account_queue),
            ("member role", self.assume_member_role),
        ]

    def list_accounts(self) -> str:
        try:
            self.accounts = list(active_accounts(self.aws.client("organizations")))
        except (ClientError, BotoCoreError) as error:
            raise aws_failure(error, "organizations:ListAccounts") from None
        return f"{len(self.accounts)} ACTIVE account(s)"

    def account_queue(self) -> str:
        """The queue the orchestrator fills: reachable (nothing is sent; a message would start a member run)."""
        url = self.organization.queue_url
        region, account, name = _queue_parts(url)
        try:
            found = self.aws.client("sqs").get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
            )
        except (ClientError, BotoCoreError) as error:
            raise aws_failure(error, "sqs:GetQueueAttributes", f"arn:aws:sqs:{region}:{account}:{name}") from None
        waiting = found.get("Attributes", {}).get("ApproximateNumberOfMessages", "?")
        return f"{name} is reachable, {waiting} message(s) waiting"

    def assume_member_role(self) -> str:
        sts = self.aws.sts()
        own = sts.get_caller_identity()
        partition = own["Arn"].split(":")[1]
        member = self.account or next((a for a in self.accounts if a != own["Account"]), None)
        if member is None:
            return "not exercised: the organization has no member account besides this one"
        role = f"arn:{partition}:iam::{member}:role/{self.organization.member_role_name}"
        arguments = {"RoleArn": role, "RoleSessionName": SESSION_NAME}
        if self.organization.external_id:
            arguments["ExternalId"] = self.organization.external_id
        try:
            sts.assume_role(**arguments)  # type: ignore[arg-type]
        except (ClientError, BotoCoreError) as error:
            failure = aws_failure(error, "sts:AssumeRole", role)
            grant = statement("sts:AssumeRole", f"arn:{partition}:iam::*:role/{self.organization.member_role_name}")
            raise HopFailed(
                f"cannot assume {role}: {failure.detail}",
                "the member role is missing in that account, its trust policy does not name this function's role, "
                "or KEYREPORT_EXTERNAL_ID differs from the ExternalId its trust policy requires",
                "deploy cloudformation/member-role.yaml to the account (the StackSet) naming this function's role and "
                f"external id; the function's own policy needs {grant}",
            ) from None
        with_id = " with the external id" if self.organization.external_id else ""
        return f"assumed {role}{with_id}"


def _queue_parts(url: str) -> tuple[str, str, str]:
    """(region, account, name) of https://sqs.<region>.amazonaws.com/<account>/<name>."""
    host, _, path = url.removeprefix("https://").removeprefix("http://").partition("/")
    account, _, name = path.partition("/")
    region = host.split(".")[1] if host.startswith("sqs.") else "<region>"
    return region, account, name
