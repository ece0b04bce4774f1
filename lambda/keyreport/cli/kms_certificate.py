"""`keyreport kms-certificate`: the certificate to register in Entra for KEYREPORT_AZURE_AUTH=kms, signed inside KMS."""

from __future__ import annotations

import argparse
import base64
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import hashes, serialization

from keyreport.aws.clients import AwsClients
from keyreport.cli.common import aws_session, help_for
from keyreport.errors import ConfigError
from keyreport.identity.kms_certificate import MAX_DAYS, build_certificate, parse_subject
from keyreport.identity.kms_key import KmsSigningKey

if TYPE_CHECKING:
    from keyreport.cli.common import Commands


def add_to(commands: Commands) -> None:
    command = commands.add_parser(
        "kms-certificate",
        help="make the certificate to register in Entra for KEYREPORT_AZURE_AUTH=kms (signed inside KMS)",
        **help_for(
            "Builds a self-signed X.509 certificate for an AWS KMS RSA signing key and has KMS sign it: the key it "
            "certifies never leaves KMS. Upload the certificate to the Entra app registration. Reads only boto3's "
            "own variables (AWS_PROFILE, AWS_REGION, ...).",
            "0 written, 1 KMS refused, 2 usage or configuration, 130 interrupted",
        ),
    )
    command.add_argument("--key-id", required=True, help="KMS key id, ARN or alias (RSA_*, usage SIGN_VERIFY)")
    command.add_argument("--subject", default="CN=keyreport", help="distinguished name (default CN=keyreport)")
    command.add_argument("--days", type=int, default=365, help=f"validity in days, 1 to {MAX_DAYS} (default 365)")
    command.add_argument("--out", required=True, type=Path, help="where to write the certificate (PEM)")
    command.set_defaults(handler=kms_certificate)


def kms_certificate(args: argparse.Namespace) -> int:
    try:
        subject = parse_subject(args.subject)
        if not 1 <= args.days <= MAX_DAYS:
            raise ValueError(f"--days must be between 1 and {MAX_DAYS}")
    except ValueError as error:
        raise ConfigError([str(error)]) from None
    key = KmsSigningKey(AwsClients(aws_session()).kms(), args.key_id)
    certificate = build_certificate(key, subject, args.days)
    try:
        args.out.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    except OSError as error:
        raise ConfigError([f"--out {args.out}: cannot write the certificate ({error.strerror})"]) from None
    der = certificate.public_bytes(serialization.Encoding.DER)
    sha1 = certificate.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - the portal's thumbprint
    print(
        f"Wrote {args.out}: {certificate.subject.rfc4514_string()}, valid until "
        f"{certificate.not_valid_after_utc:%Y-%m-%d}, signed by KMS key {args.key_id}.\n"
        f"Thumbprint (as the Azure portal shows it): {sha1}\n"
        f"Register it on the app:  az ad app credential reset --id $AZURE_CLIENT_ID --cert @{args.out} --append\n"
        "Then configure the function with (also printed on stdout):",
        file=sys.stderr,
    )
    print(f"KEYREPORT_AZURE_AUTH=kms\nKEYREPORT_KMS_KEY_ID={args.key_id}")
    print(f"KEYREPORT_KMS_CERTIFICATE={base64.b64encode(der).decode()}")
    return 0
