"""The Key Vault hops: which audience the vault demands (its 401 challenge), and the workspace key secret: present,
readable, and base64 of a key of the workspace-key length. The value is never printed."""

from __future__ import annotations

import base64
import binascii
import re
from typing import TYPE_CHECKING

from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError

from keyreport.check import reach
from keyreport.check.explain import entra_failure, input_unavailable
from keyreport.errors import HopFailed, SecretUnavailable, first_line
from keyreport.identity.key_vault import secret_client

if TYPE_CHECKING:
    from keyreport.settings import DataCollectorSettings
    from keyreport.wiring import Wiring

WORKSPACE_KEY_BYTES = 64  # a Log Analytics shared key: 64 bytes, 88 characters of base64
API_VERSION = "7.5"
_CHALLENGE = re.compile(r'(resource|scope)="([^"]+)"')


def vault_scope(wiring: Wiring, sink: DataCollectorSettings) -> str:
    """The token scope the vault asks for in its 401 challenge, as the Key Vault SDK reads it."""
    url = f"{sink.keyvault_url.rstrip('/')}/secrets/{sink.workspace_key_secret}?api-version={API_VERSION}"
    where, what = sink.keyvault_url, "the vault (private endpoint, firewall)"
    response = reach.get(wiring, url, where, what, "check KEYREPORT_KEYVAULT_URL and the vault's networking")
    found = dict(_CHALLENGE.findall(response.headers.get("WWW-Authenticate", "")))
    if response.status_code != 401 or not found:
        raise HopFailed(
            f"{sink.keyvault_url} answered {response.status_code} without a Key Vault challenge",
            "KEYREPORT_KEYVAULT_URL is not a Key Vault",
            "use the vault's URI from its overview page (https://<name>.vault.azure.net)",
        )
    scope: str = found.get("scope") or found["resource"].rstrip("/") + "/.default"
    return scope


class WorkspaceKeyHop:
    def __init__(self, wiring: Wiring, sink: DataCollectorSettings) -> None:
        self.wiring = wiring
        self.sink = sink
        self.key: bytes | None = None  # for the Data Collector hop that follows

    def read(self) -> str:
        name, vault = self.sink.workspace_key_secret, self.sink.keyvault_url
        client = secret_client(self.sink, self.wiring.settings.azure, self.wiring.credential())
        try:
            value = client.get_secret(name).value or ""
        except ResourceNotFoundError:
            raise HopFailed(
                f"no secret {name!r} in {vault}",
                "the secret is missing, or KEYREPORT_WORKSPACE_KEY_SECRET names another one",
                f"az keyvault secret set --vault-name <vault> --name {name} --value <the workspace's primary key>",
            ) from None
        except ClientAuthenticationError as error:
            raise entra_failure(error, "Key Vault") from None
        except HttpResponseError as error:
            raise self._refused(error) from None
        except SecretUnavailable as error:
            raise input_unavailable(error) from None
        self.key = self._decoded(value.strip())
        return f"secret {name!r} is readable and holds a {WORKSPACE_KEY_BYTES}-byte key (value not shown)"

    def _refused(self, error: HttpResponseError) -> HopFailed:
        detail = f"Key Vault answered {error.status_code}: {first_line(error, 200)}"
        if error.status_code == 403:
            return HopFailed(
                detail,
                "the app may not read secrets in this vault",
                "assign the app's service principal the Key Vault Secrets User role on the vault "
                "(or, for a vault with access policies, Get on secrets)",
            )
        return HopFailed(detail, "Key Vault refused the read", "see the answer above")

    def _decoded(self, value: str) -> bytes:
        try:
            key = base64.b64decode(value, validate=True)
        except binascii.Error:
            raise HopFailed(
                "the secret is not base64",
                "the secret does not hold a workspace key",
                "store the workspace's primary key exactly as the portal shows it (Agents > Primary key)",
            ) from None
        if len(key) != WORKSPACE_KEY_BYTES:
            raise HopFailed(
                f"the secret decodes to {len(key)} bytes, a workspace key has {WORKSPACE_KEY_BYTES}",
                "the secret holds something other than a workspace key (a workspace id, a connection string)",
                "store the workspace's primary key exactly as the portal shows it (Agents > Primary key)",
            )
        return key
