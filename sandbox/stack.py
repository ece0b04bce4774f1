"""Every stand-in at once: moto plus the Entra, Key Vault, Data Collector and Logs Ingestion emulators, wired.

`Stack.env()` is the whole configuration that points keyreport at it, the same variables a real
deployment sets; the product never learns it is talking to a sandbox.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from pathlib import Path
from types import TracebackType
from typing import Self

from sandbox.auth_modes import AUTH_MODES, AuthModes
from sandbox.aws import AwsSandbox
from sandbox.data_collector import DataCollectorEmulator
from sandbox.entra import EntraEmulator
from sandbox.estate import Estate, seed_client_secret, seed_estate
from sandbox.keyvault import KeyVaultEmulator
from sandbox.logs_ingestion import LogsIngestionEmulator
from sandbox.logs_query import LogsQueryEmulator
from sandbox.tls import LocalCA

TENANT_ID = "8c1f4e2a-6b3d-4f7e-9a1c-2d5e8f0b3a6c"
CLIENT_ID = "4e9b2c7d-1a3f-4e8b-b6c5-7d0e2f1a9c3b"
WORKSPACE_ID = "5a2c9e1f-7b4d-4c3a-8e6f-1b9d2a7c4e0f"
WORKSPACE_KEY_SECRET = "la-workspace-key"
CLIENT_SECRET_NAME = "keyreport/azure-client-secret"
FINGERPRINT_SECRET_NAME = "keyreport/fingerprint-key"
SPILL_BUCKET = "keyreport-spill-sandbox"
DCR_ID = "dcr-" + uuid.uuid5(uuid.NAMESPACE_URL, "keyreport-sandbox-dcr").hex  # an immutable id's shape
SINKS = ("data_collector", "logs_ingestion")


def make_workspace_key(label: str) -> str:
    """A 64-byte shared key, base64, like the portal's; derived from a label so runs are reproducible."""
    return base64.b64encode(hashlib.sha512(label.encode()).digest()).decode()


class Stack:
    """Start with `with Stack(directory) as stack:`; `seed()` fills IAM; `env()` configures keyreport."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        self.ca = LocalCA(self.directory)
        self.aws = AwsSandbox()
        self.entra = EntraEmulator(self.ca)
        self.keyvault = KeyVaultEmulator(self.ca, self.entra, TENANT_ID)
        self.workspace_key = make_workspace_key("sandbox-primary")
        self.collector = DataCollectorEmulator(self.ca, WORKSPACE_ID, self.workspace_key)
        # The same workspace behind the Logs Ingestion API, with the rule of azure/logs-ingestion.json.
        self.ingestion = LogsIngestionEmulator(self.ca, self.entra, WORKSPACE_ID)
        # The workspace's query API (`keyreport query`), answering from what either ingestion path stored.
        self.logs_query = LogsQueryEmulator(
            self.ca, self.entra, TENANT_ID, WORKSPACE_ID, (self.collector, self.ingestion)
        )
        # A fresh client secret per stack: nothing in the repository is a credential.
        self.client_secret = f"kr~{uuid.uuid4().hex}"
        self.client_secret_arn = ""
        # The deployment's fingerprint key, random per stack as the template's GenerateSecretString makes it.
        self.fingerprint_secret = secrets.token_urlsafe(48)
        self.fingerprint_secret_arn = ""
        self.auth_modes: AuthModes | None = None  # on start: every KEYREPORT_AZURE_AUTH mode's credential

    def start(self) -> Self:
        self.aws.start()
        for emulator in (self.entra, self.keyvault, self.collector, self.ingestion, self.logs_query):
            emulator.start()
        app = self.entra.register_app(TENANT_ID, CLIENT_ID, self.client_secret)
        self.ingestion.add_rule(DCR_ID)
        self.ingestion.assign_publisher(DCR_ID, app.object_id)  # the template's role assignment
        self.keyvault.set_secret(WORKSPACE_KEY_SECRET, self.workspace_key)
        self._seed_aws_resources()
        self.auth_modes = AuthModes(self.aws, self.entra, TENANT_ID, CLIENT_ID, self.client_secret)
        return self

    def _seed_aws_resources(self) -> None:
        """What a deployment creates besides the IAM estate: client secret, fingerprint key, spill bucket."""
        self.client_secret_arn = seed_client_secret(self.aws, CLIENT_SECRET_NAME, self.client_secret)
        self.fingerprint_secret_arn = seed_client_secret(self.aws, FINGERPRINT_SECRET_NAME, self.fingerprint_secret)
        self.aws.client("s3").create_bucket(Bucket=SPILL_BUCKET)

    def seed(self, *, users: int = 300, seed: int = 7) -> Estate:
        """A fresh AWS account: moto is reset (its state is process-wide), then the client secret and the
        IAM estate are seeded again, so whatever ran before in this process cannot leak into the result."""
        self.aws.reset()
        self._seed_aws_resources()
        return seed_estate(self.aws, users=users, seed=seed)

    def stop(self) -> None:
        for emulator in (self.logs_query, self.ingestion, self.collector, self.keyvault, self.entra):
            emulator.stop()
        self.aws.stop()
        self.ca.remove()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    def env(self, *, sink: str = "data_collector", auth: str = "secret") -> dict[str, str]:
        """keyreport's configuration for this stack, plus what boto3 needs to reach moto.

        `auth` picks KEYREPORT_AZURE_AUTH (see `sandbox.auth_modes`): the mode's credential is registered
        in Entra and AWS and its variables replace the client secret's (federated: the Lambda role's
        session credentials replace moto's default ones).

        `sink="logs_ingestion"` ships through the Logs Ingestion emulator instead: no workspace id, no Key
        Vault, only an Entra token, as a real deployment of that sink.
        """
        if sink not in SINKS:
            raise ValueError(f"sink must be one of {SINKS}, not {sink!r}")
        env = {
            **self.aws.env(),
            "KEYREPORT_SINK": "data_collector",
            "KEYREPORT_WORKSPACE_ID": WORKSPACE_ID,
            "KEYREPORT_KEYVAULT_URL": self.keyvault.url,
            "KEYREPORT_WORKSPACE_KEY_SECRET": WORKSPACE_KEY_SECRET,
            "KEYREPORT_AZURE_AUTH": "secret",
            "AZURE_TENANT_ID": TENANT_ID,
            "AZURE_CLIENT_ID": CLIENT_ID,
            "KEYREPORT_AZURE_CLIENT_SECRET_ARN": self.client_secret_arn,
            "KEYREPORT_AZURE_AUTHORITY_HOST": self.entra.url,
            "KEYREPORT_DATA_COLLECTOR_ENDPOINT": self.collector.url,
            "KEYREPORT_CA_BUNDLE": str(self.ca.ca_bundle_path),
            "KEYREPORT_SPILL_BUCKET": SPILL_BUCKET,
            "KEYREPORT_FINGERPRINT_SECRET_ARN": self.fingerprint_secret_arn,
            "KEYREPORT_LOGS_QUERY_ENDPOINT": self.logs_query.url,
        }
        if sink == "logs_ingestion":
            for name in ("KEYREPORT_WORKSPACE_ID", "KEYREPORT_KEYVAULT_URL", "KEYREPORT_WORKSPACE_KEY_SECRET"):
                del env[name]
            del env["KEYREPORT_DATA_COLLECTOR_ENDPOINT"]
            env |= {
                "KEYREPORT_SINK": "logs_ingestion",
                "KEYREPORT_DCE_ENDPOINT": self.ingestion.url,
                "KEYREPORT_DCR_ID": DCR_ID,
            }
        if auth != "secret":
            if auth not in AUTH_MODES or self.auth_modes is None:
                raise ValueError(f"auth must be one of {AUTH_MODES} on a started stack, not {auth!r}")
            del env["KEYREPORT_AZURE_CLIENT_SECRET_ARN"]
            env |= self.auth_modes.env(auth)
        return env
