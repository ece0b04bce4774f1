"""Every exception keyreport raises on purpose, and how an SDK error is put into a message.

SDK messages name resources (ARNs, hosts, secret names), never secret values, so their first line is
safe to log and to store in a run row.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ReadTimeoutError,
    SSOError,
    TokenRetrievalError,
)

if TYPE_CHECKING:
    from keyreport.records import RunSummary


class ConfigError(Exception):
    """Every configuration problem at once, phrased for the person who set the variables."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"keyreport is not configured correctly:\n{lines}")


class SecretUnavailable(Exception):
    """A secret could not be fetched or is not usable; the message never contains the secret."""

    environment = False  # True when the cause is the environment's AWS credentials or region (exit 2)


class WebIdentityTokenUnavailable(SecretUnavailable):
    """STS did not issue a web identity token; the message says what to change on the AWS side."""


class KmsKeyUnusable(SecretUnavailable):
    """The KMS key cannot sign for keyreport; the message says why and what to change."""


class ClientCertificateUnusable(SecretUnavailable):
    """The PEM in Secrets Manager cannot be used as a client certificate; the message never quotes it."""


class CertificateProblem(ValueError):
    """What is wrong with a certificate or PEM bundle, phrased for the person who made it."""


class UserGone(Exception):
    """IAM answered NoSuchEntity for the user being re-read: it does not exist (any more)."""


class KeysChanging(Exception):
    """A user's listed key was deleted before its last use was read, at every attempt: the user is changing now."""


class SpillError(Exception):
    """The spill bucket could not take or give back a batch.

    `maybe_written` names the object when S3 may have stored it all the same (the request went out, the
    answer never came): its rows are then logged too, naming that key, and a replay may deliver them again.
    """

    def __init__(self, message: str, *, maybe_written: str | None = None) -> None:
        super().__init__(message)
        self.maybe_written = maybe_written


class DeadlineReached(Exception):
    """A network call not started, or a retry not made, because the run's deadline has passed."""


class SpillRejected(Exception):
    """A spill object that is not an authentic, well-formed batch: quarantined, never delivered.

    The message says what is wrong and never quotes the object's content.
    """


class AccountUnreachable(Exception):
    """The member role could not be assumed: the account is reported as failed, the others go on."""


class RunFailed(Exception):
    """Raised after a run that did not read or deliver every record, so Lambda retries and alarms fire."""

    def __init__(self, summary: RunSummary) -> None:
        self.summary = summary
        super().__init__(
            f"keyreport run {summary.run_id} for account {summary.account_id} {summary.status}: "
            f"{summary.shipped} shipped, {summary.failed} failed, {summary.spilled} spilled"
            + (f"; {summary.errors[0]}" if summary.errors else "")
        )


@dataclass
class HopFailed(Exception):
    """A hop that did not pass: what was seen, the likely cause and what to change (never a secret)."""

    detail: str
    cause: str = ""
    fix: str = ""

    def __str__(self) -> str:
        return self.detail


class LibraryError(ValueError):
    """A query file that does not follow the header format; the message names the file and the line."""


class UnknownQuery(LookupError):
    """`keyreport query NAME` with a name the library does not have; suggests close ones."""

    def __init__(self, name: str, known: list[str]) -> None:
        close = difflib.get_close_matches(name, known, n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        super().__init__(f"no query named {name!r}.{hint} `keyreport queries` lists them all.")


def aws_error_code(error: BaseException) -> str:
    """The AWS error code of a ClientError ("AccessDenied", "Throttling"); any other error by its type."""
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code")
        if code:
            return str(code)
    return type(error).__name__


def first_line(error: BaseException, limit: int = 300) -> str:
    """The first line of what an error says (an Azure SDK error's `message` when it has one)."""
    text = str(getattr(error, "message", None) or error).strip()
    return text.splitlines()[0][:limit] if text else type(error).__name__


# AWS's answers to credentials that expired or are wrong (STS, IAM and the other query/JSON services).
_REJECTED_CREDENTIALS = frozenset(
    {
        "ExpiredToken",
        "ExpiredTokenException",
        "RequestExpired",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "InvalidAccessKeyId",
    }
)


def aws_credentials_problem(error: BaseException) -> str | None:
    """One line, with the fix, when `error` means the AWS credentials or region are missing or refused."""
    if isinstance(error, NoCredentialsError):
        return (
            "no AWS credentials found: set AWS_PROFILE (and sign in, e.g. `aws sso login`) or "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    if isinstance(error, NoRegionError):
        return "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION), e.g. AWS_REGION=us-east-1"
    if isinstance(error, TokenRetrievalError | SSOError):
        return f"the AWS sign-in expired ({first_line(error, 200)}): sign in again, e.g. `aws sso login`"
    code = aws_error_code(error)
    if code in _REJECTED_CREDENTIALS:
        return f"AWS refused the credentials ({code}): they expired or are wrong; sign in again or refresh them"
    return None


def aws_hint(error: BaseException) -> str | None:
    """aws_problem's line for the usual environment mistakes (credentials, region, endpoint), else None."""
    if aws_credentials_problem(error) or isinstance(error, EndpointConnectionError):
        return aws_problem(error)
    return None


def aws_problem(error: BaseException) -> str:
    """One line about an AWS SDK error, with what to check for the usual environment mistakes."""
    problem = aws_credentials_problem(error)
    if problem:
        return problem
    if isinstance(error, EndpointConnectionError):
        return (
            f"cannot reach the AWS endpoint ({first_line(error, 200)}): check the network or proxy, "
            "AWS_REGION, and any AWS_ENDPOINT_URL* variable"
        )
    if isinstance(error, ReadTimeoutError):
        return f"the AWS endpoint did not answer in time ({first_line(error, 200)})"
    if isinstance(error, ClientError | BotoCoreError):
        return f"AWS: {aws_error_code(error)}: {first_line(error, 200)}"
    return first_line(error)


@dataclass(frozen=True)
class NetworkFailure:
    """Why a connection failed, told apart: refused (something answered no), silent, a name, or TLS."""

    kind: str  # "refused", "silent", "name", "tls"
    host: str

    @property
    def cause(self) -> str:
        return {
            "refused": f"{self.host} refused the connection: nothing listens at that address and port (a wrong "
            "endpoint or port), or a firewall rejects it",
            "silent": f"{self.host} did not answer: packets are dropped on the way (a firewall, no route or NAT, "
            "a proxy) or the service is down",
            "name": f"{self.host} does not resolve: the name is wrong, or it needs a private DNS zone",
            "tls": f"TLS to {self.host} did not verify: a TLS-inspecting proxy whose CA is not trusted",
        }[self.kind]

    @property
    def fix(self) -> str:
        return {
            "refused": "check the endpoint setting (host and port) and the firewall's rules",
            "silent": "check egress from where keyreport runs (VPC route, NAT, security group, proxy)",
            "name": "check the endpoint setting's spelling; from a VPC, the private DNS zone of the endpoint",
            "tls": "set KEYREPORT_CA_BUNDLE to the proxy's CA (verification stays on)",
        }[self.kind]


_NETWORK_WORDS = (
    ("tls", ("CERTIFICATE_VERIFY_FAILED", "SSLError", "certificate verify failed")),
    ("refused", ("Connection refused", "ConnectionRefusedError", "[Errno 111]")),
    ("name", ("Name or service not known", "nodename nor servname", "NameResolutionError", "Failed to resolve")),
    ("silent", ("timed out", "Timeout", "TimeoutError")),
)


def network_failure(error: BaseException, host: str = "") -> NetworkFailure | None:
    """What a connection error comes down to, from the error and everything it wraps; None when not a network one.

    The SDKs wrap the socket's error several times over (botocore's `kwargs["error"]`, urllib3's `reason`,
    requests' and azure-core's chained causes); the innermost says refused, silent, a name or TLS.
    """
    seen: list[BaseException] = []
    pending: list[object] = [error]
    while pending and len(seen) < 20:
        item = pending.pop()
        if not isinstance(item, BaseException) or any(item is s for s in seen):
            continue
        seen.append(item)
        kwargs = getattr(item, "kwargs", None)
        pending += [
            item.__cause__,
            item.__context__,
            getattr(item, "reason", None),
            getattr(item, "inner_exception", None),
            *item.args,
            kwargs.get("error") if isinstance(kwargs, dict) else None,
        ]
        host = host or str(getattr(item, "host", "") or (kwargs or {}).get("endpoint_url", "") or "")
    text = " ".join(f"{type(e).__name__}: {e}" for e in seen)
    kinds = [kind for kind, words in _NETWORK_WORDS if any(word in text for word in words)]
    if isinstance(error, ConnectionRefusedError) or any(isinstance(e, ConnectionRefusedError) for e in seen):
        kinds.insert(0, "refused")
    if "://" in host:
        host = urlparse(host).netloc or host
    return NetworkFailure(kinds[0], host or "the endpoint") if kinds else None
