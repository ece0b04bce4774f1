"""AWS IAM outbound identity federation: STS signs a short-lived JWT about the Lambda's role, and Entra
accepts it as the client assertion of an app that trusts the AWS account's issuer. Nothing is stored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from keyreport.errors import ConfigError, WebIdentityTokenUnavailable

if TYPE_CHECKING:
    from mypy_boto3_sts import STSClient

SIGNING_ALGORITHM = "RS256"
# Short-lived on purpose: the token only has to survive one exchange at the Entra token endpoint.
TOKEN_SECONDS = 300
MINIMUM_BOTO3 = "1.41"


def require_web_identity_support(sts: STSClient) -> None:
    """Fail before any call when the packaged boto3 predates GetWebIdentityToken (older Lambda runtimes)."""
    if not hasattr(sts, "get_web_identity_token"):
        raise ConfigError(
            [
                f"KEYREPORT_AZURE_AUTH=federated needs boto3 >= {MINIMUM_BOTO3} (sts:GetWebIdentityToken); this "
                f"function runs boto3 {boto3.__version__}: deploy the package built from requirements.lock, "
                "which carries its own boto3, instead of relying on the runtime's"
            ]
        )


class WebIdentityToken:
    """The ClientAssertionCredential callback: a fresh STS token for the cloud's token-exchange audience."""

    def __init__(self, sts: STSClient, audience: str, duration_seconds: int = TOKEN_SECONDS) -> None:
        require_web_identity_support(sts)
        self._sts = sts
        self._audience = audience
        self._duration = duration_seconds

    def __call__(self) -> str:
        try:
            response = self._sts.get_web_identity_token(
                Audience=[self._audience], SigningAlgorithm=SIGNING_ALGORITHM, DurationSeconds=self._duration
            )
        except ClientError as error:
            raise WebIdentityTokenUnavailable(self._explain(error)) from None
        except BotoCoreError as error:
            raise WebIdentityTokenUnavailable(
                f"cannot reach STS at {self._sts.meta.endpoint_url}: {type(error).__name__}: {error}"
            ) from None
        return response["WebIdentityToken"]

    def _explain(self, error: ClientError) -> str:
        code = error.response.get("Error", {}).get("Code", "")
        if code == "OutboundWebIdentityFederationDisabledException":
            return (
                "outbound identity federation is not enabled for this AWS account: run "
                "`aws iam enable-outbound-web-identity-federation` once, then trust the issuer it prints in Entra"
            )
        if code in ("AccessDenied", "AccessDeniedException"):
            return (
                "the function's role may not call sts:GetWebIdentityToken: allow it in the role's policy "
                f"(condition sts:IdentityTokenAudience = {self._audience}, sts:SigningAlgorithm = {SIGNING_ALGORITHM})"
            )
        message = error.response.get("Error", {}).get("Message", "")
        return f"sts:GetWebIdentityToken failed: {code or type(error).__name__}: {message}"[:300]
