"""The only reader of the environment: one frozen, validated Settings, or one ConfigError listing every problem."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from keyreport.certificates import CertificateProblem, parse_certificate
from keyreport.clouds import CLOUDS, AzureCloud

SINKS = ("data_collector", "logs_ingestion", "stdout")
MODES = ("account", "organization")
AUTH_MODES = ("federated", "kms", "certificate", "secret", "default")
RETRY_MODES = ("standard", "adaptive")
DATA_COLLECTOR_MAX_POST_BYTES = 30_000_000  # "30 MB" read strictly (decimal)
LOG_TYPE_PATTERN = re.compile(r"^[A-Za-z0-9_]{1,100}$")
RUN_LOG_TYPE_SUFFIX = "_Run"
DCR_IMMUTABLE_ID_PATTERN = re.compile(r"^dcr-[0-9a-f]{32}$")
STREAM_PATTERN = re.compile(r"^Custom-[A-Za-z0-9_]{1,100}$")

# Every variable this package reads, with its meaning: the README table and the CloudFormation
# environment are checked against this list by the tests.
VARIABLES: dict[str, str] = {
    "KEYREPORT_SINK": "data_collector (default), logs_ingestion, stdout (dry run)",
    "KEYREPORT_WORKSPACE_ID": "Log Analytics workspace id (GUID)",
    "KEYREPORT_LOG_TYPE": "Log-Type of the key records (default AWS_Access_Key_Report)",
    "KEYREPORT_KEYVAULT_URL": "Key Vault holding the workspace key (https)",
    "KEYREPORT_WORKSPACE_KEY_SECRET": "name of the Key Vault secret holding the workspace key",
    "KEYREPORT_AZURE_AUTH": "federated, kms, certificate, secret, default",
    "AZURE_TENANT_ID": "Entra tenant of the app registration",
    "AZURE_CLIENT_ID": "client id of the app registration",
    "KEYREPORT_AZURE_CLIENT_SECRET_ARN": "secret mode: Secrets Manager secret holding the client secret",
    "KEYREPORT_AZURE_CERTIFICATE_ARN": "certificate mode: Secrets Manager secret holding the PEM",
    "KEYREPORT_KMS_KEY_ID": "kms mode: the KMS RSA signing key",
    "KEYREPORT_KMS_CERTIFICATE": "kms mode: the certificate registered in Entra for that key (PEM or base64 DER)",
    "KEYREPORT_AZURE_CLOUD": "public (default), usgov, china",
    "KEYREPORT_AZURE_AUTHORITY_HOST": "custom Entra authority (turns off instance discovery)",
    "KEYREPORT_AZURE_RESOURCE_ID": "optional x-ms-AzureResourceId for resource-context access",
    "KEYREPORT_DATA_COLLECTOR_ENDPOINT": "override of https://<workspace>.ods.opinsights.azure.com",
    "KEYREPORT_LOGS_QUERY_ENDPOINT": "keyreport query: override of the cloud's Log Analytics query endpoint",
    "KEYREPORT_DCE_ENDPOINT": "Logs Ingestion: data collection endpoint",
    "KEYREPORT_DCR_ID": "Logs Ingestion: immutable id of the data collection rule",
    "KEYREPORT_STREAM": "Logs Ingestion: stream of the key records (default Custom-<log type>_CL)",
    "KEYREPORT_RUN_STREAM": "Logs Ingestion: stream of the run rows (default Custom-<log type>_Run_CL)",
    "KEYREPORT_CA_BUNDLE": "extra CA bundle (PEM) trusted besides the public roots",
    "KEYREPORT_SPILL_BUCKET": "S3 bucket for batches that could not be delivered",
    "KEYREPORT_BATCH_MAX_BYTES": "largest POST body in bytes (default 4 MiB, at most 30 MB)",
    "KEYREPORT_IAM_CONCURRENCY": "per-user IAM calls in flight at once (default 16)",
    "KEYREPORT_AWS_RETRY_MODE": "botocore retry mode: standard (default) or adaptive",
    "KEYREPORT_AWS_MAX_ATTEMPTS": "botocore attempts per AWS call (default 10)",
    "KEYREPORT_SECRET_MAX_AGE_SECONDS": "how long fetched secrets are reused by a warm Lambda (default 900)",
    "KEYREPORT_DEADLINE_MARGIN_SECONDS": "stop retrying this long before the Lambda times out (default 20)",
    "KEYREPORT_MODE": "account (default: this account) or organization (fan out over SQS to every member account)",
    "KEYREPORT_QUEUE_URL": "organization mode: the SQS queue of per-account messages",
    "KEYREPORT_MEMBER_ROLE_NAME": "organization mode: role assumed in each member account (default keyreport-member)",
    "KEYREPORT_EXTERNAL_ID": "organization mode: external id the member role requires",
}


class ConfigError(Exception):
    """Every configuration problem at once, phrased for the person who set the variables."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"keyreport is not configured correctly:\n{lines}")


@dataclass(frozen=True)
class Settings:
    sink: str = "data_collector"
    workspace_id: str | None = None
    log_type: str = "AWS_Access_Key_Report"
    keyvault_url: str | None = None
    workspace_key_secret: str | None = None
    azure_auth: str = "default"
    azure_tenant_id: str | None = None
    azure_client_id: str | None = None
    azure_client_secret_arn: str | None = None
    azure_certificate_arn: str | None = None
    kms_key_id: str | None = None
    kms_certificate: str | None = None
    azure_cloud: AzureCloud = CLOUDS["public"]
    azure_authority_host: str | None = None
    azure_resource_id: str | None = None
    data_collector_endpoint_override: str | None = None
    logs_query_endpoint_override: str | None = None
    dce_endpoint: str | None = None
    dcr_id: str | None = None
    stream: str | None = None
    run_stream: str | None = None
    ca_bundle: str | None = None
    spill_bucket: str | None = None
    batch_max_bytes: int = 4 * 1024 * 1024
    iam_concurrency: int = 16
    aws_retry_mode: str = "standard"
    aws_max_attempts: int = 10
    secret_max_age_seconds: int = 900
    deadline_margin_seconds: int = 20
    mode: str = "account"
    queue_url: str | None = None
    member_role_name: str = "keyreport-member"
    external_id: str | None = None

    @property
    def run_log_type(self) -> str:
        return self.log_type + RUN_LOG_TYPE_SUFFIX

    @property
    def authority_host(self) -> str:
        return self.azure_authority_host or self.azure_cloud.authority_host

    @property
    def vault_in_cloud(self) -> bool:
        """Whether the vault is under the cloud's Key Vault domain, so the SDK can check the challenge's resource.

        A vault reached under another name (a test double, a custom DNS name) cannot be matched to a resource.
        """
        host = urlparse(self.keyvault_url or "").hostname or ""
        return host.endswith("." + self.azure_cloud.keyvault_suffix)

    @property
    def keys_stream(self) -> str:
        """The DCR stream of the key records: `Custom-<table>` unless KEYREPORT_STREAM names another."""
        return self.stream or f"Custom-{self.log_type}_CL"

    @property
    def runs_stream(self) -> str:
        return self.run_stream or f"Custom-{self.run_log_type}_CL"

    @property
    def logs_query_endpoint(self) -> str:
        """Where `keyreport query` sends queries; tokens are always for the cloud's own query audience."""
        return (self.logs_query_endpoint_override or self.azure_cloud.logs_query_endpoint).rstrip("/")

    @property
    def data_collector_endpoint(self) -> str:
        if self.data_collector_endpoint_override:
            return self.data_collector_endpoint_override.rstrip("/")
        assert self.workspace_id is not None  # guaranteed by validation for this sink
        return self.azure_cloud.data_collector_endpoint(self.workspace_id)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: str) -> Settings:
        """Parse `environ` (default: the process environment); `overrides` replace single variables."""
        return _Parser({**(os.environ if environ is None else environ), **overrides}).parse()

    @classmethod
    def for_query(cls, environ: Mapping[str, str] | None = None, **overrides: str) -> Settings:
        """Settings for `keyreport query`: the workspace and how to sign in; sink variables are not needed."""
        return _Parser({**(os.environ if environ is None else environ), **overrides}).parse(purpose="query")


class _Parser:
    """Collects problems instead of stopping at the first, so one run shows them all."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.env = environ
        self.problems: list[str] = []

    def text(self, name: str) -> str | None:
        value = self.env.get(name, "").strip()
        return value or None

    def choice(self, name: str, options: tuple[str, ...], default: str) -> str:
        value = (self.text(name) or default).lower()
        if value not in options:
            self.problems.append(f"{name}={value!r} is not one of: {', '.join(options)}")
            return default
        return value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            self.problems.append(f"{name}={raw!r} is not a whole number")
            return default
        if not low <= value <= high:
            self.problems.append(f"{name}={value} must be between {low} and {high}")
            return default
        return value

    def checked(self, name: str, check: Callable[[str], str | None]) -> str | None:
        """A value that `check` accepts (returns None) or a recorded problem."""
        value = self.text(name)
        if value is not None and (problem := check(value)) is not None:
            self.problems.append(f"{name}={value!r} {problem}")
        return value

    def certificate(self, name: str) -> str | None:
        """A certificate (PEM or base64 DER); a problem names the variable but does not echo a kilobyte of it."""
        value = self.text(name)
        if value is not None:
            try:
                parse_certificate(value)
            except CertificateProblem as problem:
                self.problems.append(f"{name} {problem}")
        return value

    def require(self, names: list[str], why: str) -> None:
        for name in names:
            if self.text(name) is None:
                self.problems.append(f"{name} is required {why}")

    def parse(self, purpose: str = "ship") -> Settings:
        sink = self.choice("KEYREPORT_SINK", SINKS, "data_collector")
        auth = self.choice("KEYREPORT_AZURE_AUTH", AUTH_MODES, "default")
        cloud = self.choice("KEYREPORT_AZURE_CLOUD", tuple(CLOUDS), "public")
        settings = Settings(
            sink=sink,
            workspace_id=self.checked("KEYREPORT_WORKSPACE_ID", _guid_problem),
            log_type=self.checked("KEYREPORT_LOG_TYPE", _log_type_problem) or Settings.log_type,
            keyvault_url=self.checked("KEYREPORT_KEYVAULT_URL", _https_problem),
            workspace_key_secret=self.checked("KEYREPORT_WORKSPACE_KEY_SECRET", _secret_name_problem),
            azure_auth=auth,
            azure_tenant_id=self.checked("AZURE_TENANT_ID", _tenant_problem),
            azure_client_id=self.checked("AZURE_CLIENT_ID", _client_id_problem),
            azure_client_secret_arn=self.checked("KEYREPORT_AZURE_CLIENT_SECRET_ARN", _arn_problem),
            azure_certificate_arn=self.checked("KEYREPORT_AZURE_CERTIFICATE_ARN", _arn_problem),
            kms_key_id=self.text("KEYREPORT_KMS_KEY_ID"),
            kms_certificate=self.certificate("KEYREPORT_KMS_CERTIFICATE"),
            azure_cloud=CLOUDS[cloud],
            azure_authority_host=self.checked("KEYREPORT_AZURE_AUTHORITY_HOST", _https_problem),
            azure_resource_id=self.checked("KEYREPORT_AZURE_RESOURCE_ID", _resource_id_problem),
            data_collector_endpoint_override=self.checked("KEYREPORT_DATA_COLLECTOR_ENDPOINT", _https_problem),
            logs_query_endpoint_override=self.checked("KEYREPORT_LOGS_QUERY_ENDPOINT", _https_problem),
            dce_endpoint=self.checked("KEYREPORT_DCE_ENDPOINT", _https_problem),
            dcr_id=self.checked("KEYREPORT_DCR_ID", _dcr_id_problem),
            stream=self.checked("KEYREPORT_STREAM", _stream_problem),
            run_stream=self.checked("KEYREPORT_RUN_STREAM", _stream_problem),
            ca_bundle=self.checked("KEYREPORT_CA_BUNDLE", _pem_file_problem),
            spill_bucket=self.text("KEYREPORT_SPILL_BUCKET"),
            batch_max_bytes=self.integer(
                "KEYREPORT_BATCH_MAX_BYTES", 4 * 1024 * 1024, 1024, DATA_COLLECTOR_MAX_POST_BYTES
            ),
            iam_concurrency=self.integer("KEYREPORT_IAM_CONCURRENCY", 16, 1, 64),
            aws_retry_mode=self.choice("KEYREPORT_AWS_RETRY_MODE", RETRY_MODES, "standard"),
            aws_max_attempts=self.integer("KEYREPORT_AWS_MAX_ATTEMPTS", 10, 1, 20),
            secret_max_age_seconds=self.integer("KEYREPORT_SECRET_MAX_AGE_SECONDS", 900, 0, 86_400),
            deadline_margin_seconds=self.integer("KEYREPORT_DEADLINE_MARGIN_SECONDS", 20, 0, 300),
            mode=self.choice("KEYREPORT_MODE", MODES, "account"),
            queue_url=self.checked("KEYREPORT_QUEUE_URL", _queue_url_problem),
            member_role_name=self.checked("KEYREPORT_MEMBER_ROLE_NAME", _role_name_problem) or "keyreport-member",
            external_id=self.checked("KEYREPORT_EXTERNAL_ID", _external_id_problem),
        )
        if purpose == "query":
            self.require(["KEYREPORT_WORKSPACE_ID"], "for keyreport query")
            self._check_auth(settings)
        else:
            self._check_combinations(settings)
        if self.problems:
            raise ConfigError(self.problems)
        return settings

    def _check_combinations(self, s: Settings) -> None:
        if s.mode == "organization":
            self.require(["KEYREPORT_QUEUE_URL"], "for KEYREPORT_MODE=organization")
        if s.sink == "data_collector":
            self.require(
                ["KEYREPORT_WORKSPACE_ID", "KEYREPORT_KEYVAULT_URL", "KEYREPORT_WORKSPACE_KEY_SECRET"],
                "for KEYREPORT_SINK=data_collector",
            )
        if s.sink == "logs_ingestion":
            self.require(["KEYREPORT_DCE_ENDPOINT", "KEYREPORT_DCR_ID"], "for KEYREPORT_SINK=logs_ingestion")
        if s.sink == "stdout":
            return  # a dry run talks to no Azure service
        self._check_auth(s)

    def _check_auth(self, s: Settings) -> None:
        if s.azure_auth in ("federated", "kms", "certificate", "secret"):
            self.require(["AZURE_TENANT_ID", "AZURE_CLIENT_ID"], f"for KEYREPORT_AZURE_AUTH={s.azure_auth}")
        needs = {
            "secret": "KEYREPORT_AZURE_CLIENT_SECRET_ARN",
            "certificate": "KEYREPORT_AZURE_CERTIFICATE_ARN",
            "kms": "KEYREPORT_KMS_KEY_ID",
        }
        if s.azure_auth in needs:
            self.require([needs[s.azure_auth]], f"for KEYREPORT_AZURE_AUTH={s.azure_auth}")
        if s.azure_auth == "kms":
            self.require(["KEYREPORT_KMS_CERTIFICATE"], "for KEYREPORT_AZURE_AUTH=kms (keyreport kms-certificate)")


def _queue_url_problem(value: str) -> str | None:
    url = urlparse(value)
    return (
        None
        if url.scheme in ("https", "http") and url.hostname and url.path.count("/") == 2
        else ("is not an SQS queue URL (https://sqs.<region>.amazonaws.com/<account>/<queue>)")
    )


def _role_name_problem(value: str) -> str | None:
    return None if re.fullmatch(r"[\w+=,.@-]{1,64}", value) else "is not an IAM role name"


def _external_id_problem(value: str) -> str | None:
    return None if re.fullmatch(r"[\w+=,.@:/-]{2,1224}", value) else "is not a valid external id (2-1224 characters)"


def _guid_problem(value: str) -> str | None:
    try:
        uuid.UUID(value)
    except ValueError:
        return "is not a GUID (the workspace id looks like 1b2c3d4e-...; see the workspace's Overview page)"
    return None if len(value) == 36 else "must be a GUID written with dashes (36 characters)"


def _log_type_problem(value: str) -> str | None:
    if not LOG_TYPE_PATTERN.fullmatch(value):
        return "is not a valid Log-Type: letters, digits and underscore only, at most 100 characters"
    if len(value) + len(RUN_LOG_TYPE_SUFFIX) > 100:
        return f"leaves no room for the run-summary type {value + RUN_LOG_TYPE_SUFFIX!r} (100 characters at most)"
    return None


def _dcr_id_problem(value: str) -> str | None:
    if DCR_IMMUTABLE_ID_PATTERN.fullmatch(value):
        return None
    if value.lower().startswith("/subscriptions/"):
        return (
            "is the rule's resource id; set its immutable id instead (dcr-<32 hex digits>: the DCR's JSON view, "
            "properties.immutableId, or the template output dataCollectionRuleImmutableId)"
        )
    return "is not a data collection rule immutable id (dcr- followed by 32 lowercase hex digits)"


def _stream_problem(value: str) -> str | None:
    if STREAM_PATTERN.fullmatch(value):
        return None
    return "is not a custom stream name: Custom- and then letters, digits or underscores (see the DCR's streams)"


def _tenant_problem(value: str) -> str | None:
    # azure-identity accepts a tenant GUID or a verified domain name (contoso.onmicrosoft.com).
    if re.fullmatch(r"[A-Za-z0-9.-]{1,256}", value):
        return None
    return "is not a tenant id: use the directory (tenant) GUID or the tenant's domain name"


def _client_id_problem(value: str) -> str | None:
    try:
        uuid.UUID(value)
    except ValueError:
        return "is not a client id: use the app registration's Application (client) ID, a GUID"
    return None


def _https_problem(value: str) -> str | None:
    url = urlparse(value)
    if url.scheme != "https" or not url.hostname:
        return "must be an https:// URL"
    return None


def _secret_name_problem(value: str) -> str | None:
    ok = re.fullmatch(r"[0-9A-Za-z-]{1,127}", value)
    return None if ok else "is not a Key Vault secret name (letters, digits and dashes, at most 127)"


def _arn_problem(value: str) -> str | None:
    return None if value.startswith("arn:") and value.count(":") >= 5 else "is not an ARN"


def _resource_id_problem(value: str) -> str | None:
    return None if value.startswith("/subscriptions/") else "is not an Azure resource id (/subscriptions/...)"


def _pem_file_problem(value: str) -> str | None:
    path = Path(value)
    if not path.is_file():
        return "does not name a readable file"
    if b"-----BEGIN CERTIFICATE-----" not in path.read_bytes():
        return "contains no PEM certificate"
    return None
