"""A person signs in at the CLI (device code on any terminal, or a browser on this machine), for every command alike."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from azure.core.credentials import TokenCredential
from azure.identity import DeviceCodeCredential, InteractiveBrowserCredential

from keyreport.errors import ConfigError
from keyreport.identity.credentials import identity_options
from keyreport.settings import AzureSettings

INTERACTIVE_MODES = ("device-code", "browser")


def show_device_code(verification_uri: str, user_code: str, expires_on: datetime) -> None:
    """The device-code prompt, on stderr: stdout may be carrying JSON, CSV or records."""
    print(
        f"To sign in, open {verification_uri} and enter the code {user_code} (valid until {expires_on:%H:%M} UTC).",
        file=sys.stderr,
        flush=True,
    )


def interactive_credential(
    azure: AzureSettings,
    how: str,
    *,
    tenant_id: str | None = None,
    client_id: str | None = None,
    allowed_tenants: Iterable[str] = (),
    prompt: Callable[[str, str, datetime], None] = show_device_code,
) -> TokenCredential:
    """A person signs in (the notebook scenario): device code, or a browser on this machine.

    ``client_id`` is a public client app registration; without one, azure-identity's development app is used.
    """
    options: dict[str, Any] = identity_options(azure)
    tenant = tenant_id or azure.auth.tenant_id
    if tenant:
        options["tenant_id"] = tenant
    if client_id:
        options["client_id"] = client_id
    options["additionally_allowed_tenants"] = list(allowed_tenants)
    if how == "device-code":
        return DeviceCodeCredential(prompt_callback=prompt, **options)
    if how == "browser":
        return InteractiveBrowserCredential(**options)
    raise ConfigError([f"--auth {how!r} is not one of: {', '.join(INTERACTIVE_MODES)}"])
