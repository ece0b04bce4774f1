"""Shared by the settings tests: the problems a ConfigError lists for a base environment with changes."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from keyreport.settings import ConfigError, Settings

UNSET = "<unset>"

FINGERPRINT_SECRET = {
    "KEYREPORT_FINGERPRINT_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:keyreport-fp-abc"
}
# An app registration signing in with a client secret from Secrets Manager, and the deployment's fingerprint
# secret: what most test environments share.
SECRET_MODE_APP = {
    **FINGERPRINT_SECRET,
    "KEYREPORT_AZURE_AUTH": "secret",
    "AZURE_TENANT_ID": "72f988bf-86f1-41af-91ab-2d7cd011db47",
    "AZURE_CLIENT_ID": "0a1b2c3d-1111-2222-3333-444455556666",
    "KEYREPORT_AZURE_CLIENT_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:keyreport-abc",
}


def problems_with(base: Mapping[str, str], **changes: str) -> list[str]:
    """`changes` replace variables of `base`; the value UNSET removes one."""
    env = {name: value for name, value in ({**base} | changes).items() if value != UNSET}
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    return caught.value.problems
