"""What the templates must say, written down once: the role's grants per mode, and sample parameter values."""

from __future__ import annotations

import base64
import datetime as dt
from functools import cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

# What each Azure sign-in mode adds to the role, and nothing more (the specification of least privilege).
ALWAYS = {
    "iam:ListUsers",
    "iam:GenerateCredentialReport",
    "iam:GetCredentialReport",
    "iam:ListAccessKeys",
    "iam:GetAccessKeyLastUsed",
    "iam:GetAccountSummary",  # root MFA and password (aws/posture.py)
    "iam:ListVirtualMFADevices",  # the root's MFA: virtual or hardware
    "iam:GetAccountPasswordPolicy",
    "iam:GetUser",  # the event path's re-read of one user
    "iam:GetLoginProfile",
    "iam:ListMFADevices",
    "iam:GetAccountAuthorizationDetails",  # every user's owner and exception tags, 1,000 users a call
    "iam:ListUserTags",  # the event path's re-read of one user's tags
    "s3:PutObject",
    "s3:DeleteObject",  # keyreport check's probe, under keyreport/check/ only
    "secretsmanager:GetSecretValue",  # the fingerprint key
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "sqs:SendMessage",
}
FOR_MODE = {
    "federated": {"sts:GetWebIdentityToken"},
    "kms": {"kms:Sign", "kms:GetPublicKey"},
    "certificate": {"secretsmanager:GetSecretValue"},
    "secret": {"secretsmanager:GetSecretValue"},
}
# IamEvents=enabled: the event queue's trigger, and `keyreport check`'s reads of the event path.
FOR_EVENTS = {
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "cloudtrail:DescribeTrails",
    "cloudtrail:GetTrailStatus",
    "cloudtrail:GetEventSelectors",
    "events:ListRuleNamesByTarget",
    "events:DescribeRule",
    "lambda:ListEventSourceMappings",
}
FOR_ORGANIZATION = {
    "organizations:ListAccounts",
    "sqs:SendMessage",
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sts:AssumeRole",
}
# Actions without a resource type: IAM only accepts "*" for them.
UNSCOPED = {
    "iam:ListUsers",
    "iam:GetAccountSummary",
    "iam:ListVirtualMFADevices",
    "iam:GetAccountPasswordPolicy",
    "iam:GenerateCredentialReport",
    "iam:GetCredentialReport",
    "iam:GetAccountAuthorizationDetails",
    "sts:GetWebIdentityToken",
    "organizations:ListAccounts",
    "cloudtrail:DescribeTrails",
    "lambda:ListEventSourceMappings",
}


@cache
def signing_certificate() -> str:
    """A self-signed certificate as one line of base64 DER, like `keyreport kms-certificate` prints."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "keyreport")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode()


def sample() -> dict[str, str]:
    """Values a real deployment would pass, valid for every mode at once."""
    return {
        "CodeS3Bucket": "keyreport-artifacts",
        "CodeS3Key": "keyreport/lambda-0123abcd.zip",
        "DceEndpoint": "https://keyreport-dcr-a1b2.westeurope-1.ingest.monitor.azure.com",
        "DcrImmutableId": "dcr-0123456789abcdef0123456789abcdef",
        "WorkspaceId": "5a2c9e1f-7b4d-4c3a-8e6f-1b9d2a7c4e0f",
        "KeyVaultUrl": "https://kv-keyreport.vault.azure.net",
        "WorkspaceKeySecretName": "la-workspace-key",
        "AzureTenantId": "8c1f4e2a-6b3d-4f7e-9a1c-2d5e8f0b3a6c",
        "AzureClientId": "4e9b2c7d-1a3f-4e8b-b6c5-7d0e2f1a9c3b",
        "AzureClientSecretArn": "arn:aws:secretsmanager:eu-west-1:111122223333:secret:keyreport/client-secret-AbCdEf",
        "AzureCertificateArn": "arn:aws:secretsmanager:eu-west-1:111122223333:secret:keyreport/certificate-AbCdEf",
        "AzureSigningKeyArn": "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "AzureSigningCertificate": signing_certificate(),
        "OrganizationId": "o-a1b2c3d4e5",
        "MemberRoleExternalId": "0123456789abcdef0123",
    }
