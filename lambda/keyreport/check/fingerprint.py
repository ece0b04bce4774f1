"""The fingerprint key's hop: the role reads the secret, and it is long enough to key fingerprints and spill MACs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from keyreport.check.explain import aws_failure
from keyreport.deployment_key import MIN_SECRET_CHARACTERS
from keyreport.errors import HopFailed

if TYPE_CHECKING:
    from keyreport.aws.clients import AwsClients


def read_fingerprint_key(aws: AwsClients, arn: str) -> str:
    try:
        value = aws.secretsmanager().get_secret_value(SecretId=arn).get("SecretString") or ""
    except (ClientError, BotoCoreError) as error:
        raise aws_failure(error, "secretsmanager:GetSecretValue", arn) from None
    if len(value.strip()) < MIN_SECRET_CHARACTERS:
        raise HopFailed(
            f"{arn} holds {len(value.strip())} characters",
            f"a fingerprint key needs at least {MIN_SECRET_CHARACTERS} characters (a SecretString)",
            "point KEYREPORT_FINGERPRINT_SECRET_ARN at the secret the stack generates (FingerprintSecret)",
        )
    return f"{arn}: readable, {len(value.strip())} characters (the value is not shown)"
