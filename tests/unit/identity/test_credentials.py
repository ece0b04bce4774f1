"""Credential building: rotation with exactly one refresh, settings for each mode, sovereign clouds together."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.credentials import AccessToken, TokenCredential
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import AzureAuthorityHosts

from keyreport.clouds import CLOUDS
from keyreport.identity.credentials import RotatingCredential, identity_options
from keyreport.identity.secret_cache import CachedSecret
from keyreport.settings import ConfigError, DataCollectorSettings, FederatedAuth, Settings
from tests.unit.settings_helpers import FINGERPRINT_SECRET

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "0a1b2c3d-1111-2222-3333-444455556666"
BASE = {
    "KEYREPORT_SINK": "data_collector",
    "KEYREPORT_WORKSPACE_ID": "3f2b7c1e-5d4a-4b8e-9c0f-1a2b3c4d5e6f",
    "KEYREPORT_KEYVAULT_URL": "https://kv-keyreport.vault.azure.net",
    "KEYREPORT_WORKSPACE_KEY_SECRET": "la-workspace-key",
    "AZURE_TENANT_ID": TENANT,
    "AZURE_CLIENT_ID": CLIENT,
    **FINGERPRINT_SECRET,
}
ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:keyreport-abc"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeCredential:
    """Accepts only the current value of the secret, as Entra would."""

    def __init__(self, value: str, accepted: list[str], log: list[str]) -> None:
        self.value, self.accepted, self.log = value, accepted, log

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.log.append(self.value)
        if self.value not in self.accepted:
            raise ClientAuthenticationError("AADSTS7000215: Invalid client secret provided.")
        return AccessToken(f"token-for-{self.value}", 4102444800)


class Vault:
    """Secrets Manager stand-in: the current value, and how often it was read."""

    def __init__(self, value: str) -> None:
        self.value, self.reads = value, 0

    def fetch(self) -> str:
        self.reads += 1
        return self.value


def rotating(
    vault: Vault, accepted: list[str], clock: Clock, max_age: float = 900
) -> tuple[TokenCredential, list[str]]:
    log: list[str] = []
    credential = RotatingCredential(
        CachedSecret(vault.fetch, max_age, clock), lambda value: FakeCredential(value, accepted, log), ARN
    )
    return credential, log


def test_a_rejected_secret_is_read_again_exactly_once_and_the_new_one_used() -> None:
    vault, clock = Vault("old"), Clock()
    accepted = ["old"]
    credential, log = rotating(vault, accepted, clock)
    assert credential.get_token("scope/.default").token == "token-for-old"
    vault.value, accepted[:] = "new", ["new"]  # rotated in Secrets Manager and in Entra

    assert credential.get_token("scope/.default").token == "token-for-new"
    assert vault.reads == 2 and log == ["old", "old", "new"]


def test_a_second_rejection_is_not_retried_again() -> None:
    vault, clock = Vault("wrong"), Clock()
    credential, log = rotating(vault, ["right"], clock)
    with pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
        credential.get_token("scope/.default")
    assert vault.reads == 2 and log == ["wrong", "wrong"]


def test_the_secret_is_reused_within_its_age_and_read_again_after() -> None:
    vault, clock = Vault("one"), Clock()
    accepted = ["one", "two"]
    credential, log = rotating(vault, accepted, clock, max_age=900)
    credential.get_token("s/.default")
    vault.value = "two"
    clock.now += 899
    credential.get_token("s/.default")
    assert vault.reads == 1 and log[-1] == "one"
    clock.now += 1
    credential.get_token("s/.default")
    assert vault.reads == 2 and log[-1] == "two"


def test_a_value_that_cannot_be_built_is_not_kept() -> None:
    vault, clock = Vault("broken"), Clock()
    built: list[str] = []

    def build(value: str) -> TokenCredential:
        built.append(value)
        if value == "broken":
            raise ValueError("not a credential")
        return FakeCredential(value, [value], [])

    credential = RotatingCredential(CachedSecret(vault.fetch, 0, clock), build, ARN)
    with pytest.raises(ValueError):
        credential.get_token("s/.default")
    vault.value = "fixed"
    assert credential.get_token("s/.default").token == "token-for-fixed"
    assert built == ["broken", "fixed"]


# -- settings per mode -------------------------------------------------------------------------------


def problems(env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    return caught.value.problems


@pytest.mark.parametrize("mode", ["federated", "kms", "certificate", "secret"])
def test_every_app_mode_needs_tenant_and_client(mode: str) -> None:
    env = {k: v for k, v in BASE.items() if k not in ("AZURE_TENANT_ID", "AZURE_CLIENT_ID")}
    found = problems(env | {"KEYREPORT_AZURE_AUTH": mode})
    assert f"AZURE_TENANT_ID is required for KEYREPORT_AZURE_AUTH={mode}" in found
    assert f"AZURE_CLIENT_ID is required for KEYREPORT_AZURE_AUTH={mode}" in found


def test_federated_needs_nothing_stored() -> None:
    settings = Settings.from_env(BASE | {"KEYREPORT_AZURE_AUTH": "federated"})
    assert isinstance(settings.azure.auth, FederatedAuth)  # a type with no field for a stored secret


def test_kms_needs_the_key_and_its_certificate() -> None:
    found = problems(BASE | {"KEYREPORT_AZURE_AUTH": "kms"})
    assert "KEYREPORT_KMS_KEY_ID is required for KEYREPORT_AZURE_AUTH=kms" in found
    assert any(p.startswith("KEYREPORT_KMS_CERTIFICATE is required for KEYREPORT_AZURE_AUTH=kms") for p in found)


def test_a_malformed_kms_certificate_is_named_without_echoing_it() -> None:
    garbage = "MIIB" + "x" * 900
    found = problems(
        BASE
        | {"KEYREPORT_AZURE_AUTH": "kms", "KEYREPORT_KMS_KEY_ID": "alias/k"}
        | {"KEYREPORT_KMS_CERTIFICATE": garbage}
    )
    assert found == ["KEYREPORT_KMS_CERTIFICATE is neither a PEM certificate nor the base64 of a DER certificate"]


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("AZURE_TENANT_ID", "https://login.microsoftonline.com/contoso", "is not a tenant id"),
        ("AZURE_TENANT_ID", "contoso tenant", "is not a tenant id"),
        ("AZURE_CLIENT_ID", "keyreport-app", "is not a client id"),
    ],
)
def test_malformed_tenant_and_client_ids(name: str, value: str, says: str) -> None:
    found = problems(BASE | {"KEYREPORT_AZURE_AUTH": "secret", "KEYREPORT_AZURE_CLIENT_SECRET_ARN": ARN, name: value})
    assert len(found) == 1 and found[0].startswith(f"{name}={value!r} {says}")


def test_a_tenant_domain_name_is_accepted() -> None:
    env = BASE | {"AZURE_TENANT_ID": "contoso.onmicrosoft.com", "KEYREPORT_AZURE_AUTH": "federated"}
    assert Settings.from_env(env).azure.auth.tenant_id == "contoso.onmicrosoft.com"


# -- sovereign clouds ----------------------------------------------------------------------------------

VAULTS = {
    "public": "https://kv.vault.azure.net",
    "usgov": "https://kv.vault.usgovcloudapi.net",
    "china": "https://kv.vault.azure.cn",
}
AUTHORITIES = {
    "public": AzureAuthorityHosts.AZURE_PUBLIC_CLOUD,
    "usgov": AzureAuthorityHosts.AZURE_GOVERNMENT,
    "china": AzureAuthorityHosts.AZURE_CHINA,
}
FEDERATION = {
    "public": "api://AzureADTokenExchange",
    "usgov": "api://AzureADTokenExchangeUSGov",
    "china": "api://AzureADTokenExchangeChina",
}
# Every host of a cloud ends in that cloud's own top-level domain(s).
DOMAINS = {"public": (".com", ".net", ".io"), "usgov": (".us", ".usgovcloudapi.net"), "china": (".cn",)}


@pytest.mark.parametrize("cloud", sorted(CLOUDS))
def test_one_setting_switches_every_host_and_audience_together(cloud: str) -> None:
    settings = Settings.from_env(BASE | {"KEYREPORT_AZURE_CLOUD": cloud, "KEYREPORT_KEYVAULT_URL": VAULTS[cloud]})
    target = CLOUDS[cloud]
    sink = data_collector(settings)
    assert identity_options(settings.azure)["authority"] == f"https://{AUTHORITIES[cloud]}"
    assert "disable_instance_discovery" not in identity_options(settings.azure)  # Microsoft's own authorities
    assert sink.vault_in_cloud(target)  # the Key Vault SDK may check the challenge's resource
    assert settings.azure.cloud.federation_audience == FEDERATION[cloud]
    hosts = [
        settings.azure.authority_host,
        sink.keyvault_url,
        sink.endpoint(target),
        target.monitor_audience,
        target.logs_query_endpoint,
    ]
    assert all(host.startswith("https://") and host.endswith(DOMAINS[cloud]) for host in hosts), hosts


@pytest.mark.parametrize(("cloud", "other"), [("usgov", "public"), ("china", "usgov"), ("public", "china")])
def test_a_vault_of_another_cloud_is_not_trusted_to_name_its_resource(cloud: str, other: str) -> None:
    settings = Settings.from_env(BASE | {"KEYREPORT_AZURE_CLOUD": cloud, "KEYREPORT_KEYVAULT_URL": VAULTS[other]})
    assert not data_collector(settings).vault_in_cloud(settings.azure.cloud)


def test_a_custom_authority_turns_off_instance_discovery() -> None:
    settings = Settings.from_env(BASE | {"KEYREPORT_AZURE_AUTHORITY_HOST": "https://login.example.internal"})
    options = identity_options(settings.azure)
    assert options["authority"] == "https://login.example.internal" and options["disable_instance_discovery"]


def data_collector(settings: Settings) -> DataCollectorSettings:
    assert isinstance(settings.sink, DataCollectorSettings)
    return settings.sink
