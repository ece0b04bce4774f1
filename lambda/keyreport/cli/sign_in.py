"""Signing a person in instead of KEYREPORT_AZURE_AUTH: one set of options for every command that does it."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from keyreport.identity.interactive import INTERACTIVE_MODES, interactive_credential

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from keyreport.settings import AzureSettings


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
    """A person signs in instead: the configured mode's own inputs (secret ARNs, KMS key) are not needed."""
    return {"KEYREPORT_AZURE_AUTH": "default"} if args.auth else {}


def person_credential(args: argparse.Namespace, azure: AzureSettings) -> TokenCredential | None:
    """The person's credential when `--auth` was given, else None (the configured mode is used)."""
    if not args.auth:
        return None
    return interactive_credential(
        azure, args.auth, tenant_id=args.tenant, client_id=args.client_id, allowed_tenants=args.allow_tenant
    )
