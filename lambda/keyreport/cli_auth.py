"""The CLI's identity commands: sign-in for people (`run --auth`) and `kms-certificate` for the `kms` mode."""

from __future__ import annotations

import argparse
import base64
import sys
from datetime import datetime
from pathlib import Path

import boto3
from cryptography.hazmat.primitives import hashes, serialization

from keyreport import pipeline
from keyreport.aws_clients import AwsClients
from keyreport.azure_auth import INTERACTIVE_MODES, interactive_credential
from keyreport.kms_certificate import MAX_DAYS, build_certificate, parse_subject
from keyreport.kms_key import KmsSigningKey
from keyreport.settings import ConfigError, Settings
from keyreport.sinks import Sink, build_sink


def add_sign_in_options(command: argparse.ArgumentParser) -> None:
    group = command.add_argument_group("signing in as a person instead of KEYREPORT_AZURE_AUTH")
    group.add_argument("--auth", choices=INTERACTIVE_MODES, help="device-code (any terminal) or browser (this machine)")
    group.add_argument("--tenant", help="tenant to sign in to (default AZURE_TENANT_ID, else organizations)")
    group.add_argument("--client-id", help="public client app to sign in through (default: azure-identity's)")
    group.add_argument(
        "--allow-tenant",
        action="append",
        default=[],
        metavar="TENANT",
        help="also allow tokens from this tenant (repeatable; * for any): additionally_allowed_tenants",
    )


def settings_overrides(args: argparse.Namespace) -> dict[str, str]:
    # A person signs in instead: the mode's own inputs (secret ARNs, KMS key) are not needed.
    return {"KEYREPORT_AZURE_AUTH": "default"} if getattr(args, "auth", None) else {}


def person_sink(args: argparse.Namespace, settings: Settings, session: boto3.Session) -> Sink | None:
    """The sink with the person's credential when `--auth` was given, else None (the configured mode)."""
    if not getattr(args, "auth", None):
        return None
    credential = interactive_credential(
        settings,
        args.auth,
        tenant_id=args.tenant,
        client_id=args.client_id,
        allowed_tenants=args.allow_tenant,
        prompt=_show_device_code,
    )
    return build_sink(settings, AwsClients(session, pipeline.aws_config(settings)), credential)


def _show_device_code(verification_uri: str, user_code: str, expires_on: datetime) -> None:
    # stderr: stdout may be carrying JSON or records.
    print(
        f"To sign in, open {verification_uri} and enter the code {user_code} (valid until {expires_on:%H:%M} UTC).",
        file=sys.stderr,
        flush=True,
    )


def add_kms_certificate_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = commands.add_parser(
        "kms-certificate",
        help="make the certificate to register in Entra for KEYREPORT_AZURE_AUTH=kms (signed inside KMS)",
        description="Builds a self-signed X.509 certificate for an AWS KMS RSA signing key and has KMS sign it: "
        "the key it certifies never leaves KMS. Upload the certificate to the Entra app registration.",
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
    key = KmsSigningKey(AwsClients(boto3.Session()).kms(), args.key_id)
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
