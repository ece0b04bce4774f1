"""Why a hop failed and what to change: AWS error codes with the policy statement to add, Entra AADSTS codes."""

from __future__ import annotations

import json
import re

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

from keyreport.errors import HopFailed, aws_error_code, first_line, network_failure

DENIED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError"})
BAD_CREDENTIALS = frozenset({"InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException", "SignatureDoesNotMatch"})
_AADSTS = re.compile(r"AADSTS(\d+)")


def statement(action: str, resource: str) -> str:
    """The IAM policy statement that grants `action` on `resource`, as it goes into the role's policy."""
    return json.dumps({"Effect": "Allow", "Action": action, "Resource": resource})


def aws_failure(error: BaseException, action: str, resource: str = "*", who: str = "the function's role") -> HopFailed:
    """A failed AWS call as a checklist line: the code, the likely cause and the change that cures it."""
    code = aws_error_code(error)
    detail = f"{action} answered {code}" if isinstance(error, ClientError) else f"{action}: {first_line(error)}"
    if code in DENIED:
        grant = statement(action, resource)
        return HopFailed(detail, f"{who} may not call {action}", f"add to {who}'s policy: {grant}")
    if code in BAD_CREDENTIALS or isinstance(error, NoCredentialsError):
        return HopFailed(
            detail,
            "the AWS credentials are missing, expired or for another partition",
            "run with the function's role (or a profile that has the same policy); refresh expired credentials",
        )
    network = network_failure(error)
    if network is not None:
        return HopFailed(detail, network.cause, f"{network.fix}; check the region and any AWS_ENDPOINT_URL* variable")
    if isinstance(error, EndpointConnectionError):
        return HopFailed(detail, "the AWS endpoint is not reachable", "check the region, VPC endpoints and egress")
    if isinstance(error, BotoCoreError):
        return HopFailed(detail, "the call did not complete", "check connectivity to AWS, then run check again")
    return HopFailed(detail, f"AWS refused {action}", "see the AWS error code above")


# Entra's answers to the token requests keyreport makes, by AADSTS code: (likely cause, fix).
AADSTS: dict[int, tuple[str, str]] = {
    7000215: (
        "wrong client secret: the secret stored is not a current secret of the app (often the secret's ID "
        "instead of its Value)",
        "create a client secret on the app registration and put its Value into KEYREPORT_AZURE_CLIENT_SECRET_ARN",
    ),
    7000222: ("the client secret has expired", "create a new client secret and store its Value in Secrets Manager"),
    700016: (
        "no app with AZURE_CLIENT_ID in the tenant AZURE_TENANT_ID",
        "use the Application (client) ID and Directory (tenant) ID from the app registration's overview",
    ),
    90002: (
        "the tenant AZURE_TENANT_ID does not exist in this cloud",
        "check AZURE_TENANT_ID and KEYREPORT_AZURE_CLOUD",
    ),
    70021: (
        "no federated credential of the app matches the token STS issued (issuer, subject, audience must all match)",
        "add a federated credential to the app with exactly the issuer, subject and audience shown by the STS line",
    ),
    700213: (
        "no federated credential of the app names this subject",
        "add a federated credential whose subject is the function's role ARN shown by the STS line",
    ),
    700027: (
        "the certificate that signed the assertion is not registered on the app, or its signature does not verify",
        "upload the certificate (for kms: the output of `keyreport kms-certificate`) to the app's certificates",
    ),
    700024: (
        "the client assertion is outside its valid time: this machine's clock is off (clock skew)",
        "synchronise the clock (NTP); Entra tolerates about 5 minutes",
    ),
    50027: ("Entra could not read the client assertion", "check KEYREPORT_AZURE_AUTH and the mode's inputs"),
    7000218: ("the request carried no client credential", "check KEYREPORT_AZURE_AUTH and the mode's inputs"),
    500011: (
        "the resource (token audience) is not in this tenant",
        "check KEYREPORT_AZURE_CLOUD: every Azure host and audience must be of one cloud",
    ),
    90033: ("Entra had a transient error", "run check again in a minute"),
}


def entra_failure(error: BaseException, audience: str, hint: str = "") -> HopFailed:
    """A token that Entra would not issue: its AADSTS code explained, else the error's first line."""
    text = first_line(error, 400)
    match = _AADSTS.search(text)
    if match is None:
        return HopFailed(f"no token for {audience}: {text}", "the sign-in did not reach Entra, or was refused", hint)
    code = int(match.group(1))
    cause, fix = AADSTS.get(code, (f"Entra refused the sign-in (AADSTS{code})", f"look up AADSTS{code}"))
    return HopFailed(f"no token for {audience}: AADSTS{code}", cause, f"{fix}{'; ' + hint if hint else ''}")


def input_unavailable(error: BaseException) -> HopFailed:
    """The credential's AWS-side input (client secret, PEM, KMS key, STS token) could not be had or used."""
    return HopFailed(
        first_line(error, 400),
        "the sign-in could not be prepared on the AWS side (Secrets Manager, KMS or STS)",
        "the message above names what to change (the secret, the key, or the role's policy)",
    )
