"""The only reader of the environment: one frozen, validated Settings, or one ConfigError listing every problem.

Each sink and each Azure sign-in mode has its own frozen settings type whose fields are exactly what it
needs, so code downstream never re-checks that a value is set. A type is registered once, in SINK_KINDS or
AUTH_KINDS: its `name` is the value of the variable that selects it, its fields name their variables, and
`builder` names the function that turns it into a sink or a credential (imported only when used, so
reading settings loads no Azure SDK).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar, Protocol, TypeVar
from urllib.parse import urlparse

from keyreport import validation as check
from keyreport.clouds import CLOUDS, AzureCloud
from keyreport.errors import CertificateProblem, ConfigError
from keyreport.identity.certificates import parse_certificate
from keyreport.tags import DEFAULT_MAX_EXCEPTION_DAYS, DEFAULT_OWNER_TAGS, TagRules
from keyreport.validation import RUN_LOG_TYPE_SUFFIX, USERS_LOG_TYPE_SUFFIX

__all__ = ["AUTH_MODES", "SINKS", "VARIABLES", "ConfigError", "Settings"]

MODES = ("account", "organization")
RETRY_MODES = ("standard", "adaptive")
DATA_COLLECTOR_MAX_POST_BYTES = 30_000_000  # "30 MB" read strictly (decimal)
DEFAULT_LOG_TYPE = "AWS_Access_Key_Report"
DEFAULT_MEMBER_ROLE = "keyreport-member"

# Every variable this package reads, with its meaning: the README table and the CloudFormation
# environment are checked against this list by the tests.
VARIABLES: dict[str, str] = {
    "KEYREPORT_SINK": "logs_ingestion (default), data_collector (support ended 2026-09-14), stdout (dry run)",
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
    "KEYREPORT_USERS_STREAM": "Logs Ingestion: stream of the IAM user rows (default Custom-<log type>_Users_CL)",
    "KEYREPORT_CA_BUNDLE": "extra CA bundle (PEM) trusted besides the public roots",
    "KEYREPORT_SPILL_BUCKET": "S3 bucket for batches that could not be delivered",
    "KEYREPORT_FINGERPRINT_SECRET_ARN": "Secrets Manager secret keying fingerprints and spill MACs (stack-generated)",
    "KEYREPORT_BATCH_MAX_BYTES": "largest POST body in bytes (default 4 MiB, at most 30 MB)",
    "KEYREPORT_IAM_CONCURRENCY": "per-user IAM calls in flight at once (default 24)",
    "KEYREPORT_AWS_RETRY_MODE": "botocore retry mode: standard (default) or adaptive",
    "KEYREPORT_AWS_MAX_ATTEMPTS": "botocore attempts per AWS call (default 10)",
    "KEYREPORT_SECRET_MAX_AGE_SECONDS": "how long fetched secrets are reused by a warm Lambda (default 900)",
    "KEYREPORT_DEADLINE_MARGIN_SECONDS": "stop retrying this long before the Lambda times out (default 20)",
    "KEYREPORT_MODE": "account (default: this account) or organization (fan out over SQS to every member account)",
    "KEYREPORT_QUEUE_URL": "organization mode: the SQS queue of per-account messages",
    "KEYREPORT_MEMBER_ROLE_NAME": "organization mode: role assumed in each member account (default keyreport-member)",
    "KEYREPORT_EXTERNAL_ID": "organization mode: external id the member role requires",
    "KEYREPORT_EVENT_QUEUE_URL": "event path: the SQS queue of IAM events (other queues' records are refused)",
    "KEYREPORT_METRICS_NAMESPACE": "CloudWatch namespace of the run metrics the Lambda emits (default KeyReport)",
    "KEYREPORT_OWNER_TAGS": "IAM user tags naming a user's owner, in order (default owner,team; empty: none)",
    "KEYREPORT_MAX_EXCEPTION_DAYS": "longest a keyreport-exception tag may grant, in days from the run (default 365)",
}


def _env(name: str, default: Any = MISSING, hint: str = "") -> Any:
    """A settings field read from variable `name`; without a default the variable is required."""
    return field(default=default, metadata={"env": name, "hint": hint})


class Kind(Protocol):
    """A registered sink or sign-in mode: selected by `name`, made by the function `builder` names."""

    name: ClassVar[str]
    builder: ClassVar[str]  # "module:function"


def aws_region(environ: Mapping[str, str] | None = None) -> str | None:
    """The AWS region of the environment: botocore reads only AWS_DEFAULT_REGION; AWS_REGION counts too."""
    env = os.environ if environ is None else environ
    return env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION") or None


def builder(kind: Kind) -> Callable[..., Any]:
    """The function that makes what `kind` describes, imported on first use.

    A Lambda package is built for one sink (`make package SINK=...`): the other sink's SDK is not in it, and
    configuring that sink is a configuration mistake with its fix, not an ImportError.
    """
    module, function = kind.builder.split(":")
    try:
        loaded = importlib.import_module(module)
    except ModuleNotFoundError as error:
        raise ConfigError(
            [
                f"{kind.name} needs the Python package {error.name!r}, which this installation lacks: a Lambda "
                f"package built for another sink (build it with `make package SINK={kind.name}`, or SINK=all), "
                "or an incomplete install (`pip install .`)"
            ]
        ) from None
    made: Callable[..., Any] = getattr(loaded, function)
    return made


# --- sinks ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataCollectorSettings:
    """The HTTP Data Collector API, each POST signed with the workspace key read from Key Vault."""

    name: ClassVar[str] = "data_collector"
    builder: ClassVar[str] = "keyreport.sinks.data_collector:build"
    needs_azure: ClassVar[bool] = True
    workspace_id: str = _env("KEYREPORT_WORKSPACE_ID")
    keyvault_url: str = _env("KEYREPORT_KEYVAULT_URL")
    workspace_key_secret: str = _env("KEYREPORT_WORKSPACE_KEY_SECRET")
    endpoint_override: str | None = _env("KEYREPORT_DATA_COLLECTOR_ENDPOINT", None)
    resource_id: str | None = _env("KEYREPORT_AZURE_RESOURCE_ID", None)

    def endpoint(self, cloud: AzureCloud) -> str:
        if self.endpoint_override:
            return self.endpoint_override.rstrip("/")
        return cloud.data_collector_endpoint(self.workspace_id)

    def vault_in_cloud(self, cloud: AzureCloud) -> bool:
        """Whether the vault is under the cloud's Key Vault domain, so the SDK can check the challenge's resource.

        A vault reached under another name (a test double, a custom DNS name) cannot be matched to a resource.
        """
        host = urlparse(self.keyvault_url).hostname or ""
        return host.endswith("." + cloud.keyvault_suffix)


@dataclass(frozen=True)
class LogsIngestionSettings:
    """The DCR-based Logs Ingestion API: an Entra token, no workspace key."""

    name: ClassVar[str] = "logs_ingestion"
    builder: ClassVar[str] = "keyreport.sinks.logs_ingestion:build"
    needs_azure: ClassVar[bool] = True
    dce_endpoint: str = _env("KEYREPORT_DCE_ENDPOINT")
    dcr_id: str = _env("KEYREPORT_DCR_ID")
    stream: str | None = _env("KEYREPORT_STREAM", None)
    run_stream: str | None = _env("KEYREPORT_RUN_STREAM", None)
    user_stream: str | None = _env("KEYREPORT_USERS_STREAM", None)

    def keys_stream(self, log_type: str) -> str:
        """The DCR stream of the key records: `Custom-<table>` unless KEYREPORT_STREAM names another."""
        return self.stream or f"Custom-{log_type}_CL"

    def runs_stream(self, log_type: str) -> str:
        return self.run_stream or f"Custom-{log_type}{RUN_LOG_TYPE_SUFFIX}_CL"

    def users_stream(self, log_type: str) -> str:
        return self.user_stream or f"Custom-{log_type}{USERS_LOG_TYPE_SUFFIX}_CL"


@dataclass(frozen=True)
class StdoutSettings:
    """Dry run: JSON lines on stdout, nothing sent to Azure."""

    name: ClassVar[str] = "stdout"
    builder: ClassVar[str] = "keyreport.sinks.stdout:build"
    needs_azure: ClassVar[bool] = False


SinkSettings = DataCollectorSettings | LogsIngestionSettings | StdoutSettings
SINK_KINDS: tuple[type[SinkSettings], ...] = (DataCollectorSettings, LogsIngestionSettings, StdoutSettings)
SINKS = tuple(kind.name for kind in SINK_KINDS)

# --- Azure sign-in modes ----------------------------------------------------------------------------------

_CREDENTIALS = "keyreport.identity.credentials"


@dataclass(frozen=True)
class _AppRegistration:
    """The Entra app registration every mode but `default` signs in as."""

    tenant_id: str = _env("AZURE_TENANT_ID")
    client_id: str = _env("AZURE_CLIENT_ID")


@dataclass(frozen=True)
class FederatedAuth(_AppRegistration):
    """An STS-signed web identity token exchanged at Entra: nothing stored."""

    name: ClassVar[str] = "federated"
    builder: ClassVar[str] = f"{_CREDENTIALS}:federated"


@dataclass(frozen=True)
class KmsAuth(_AppRegistration):
    """Client assertions signed inside AWS KMS with the key the registered certificate certifies."""

    name: ClassVar[str] = "kms"
    builder: ClassVar[str] = f"{_CREDENTIALS}:kms"
    key_id: str = _env("KEYREPORT_KMS_KEY_ID")
    certificate: str = _env("KEYREPORT_KMS_CERTIFICATE", hint=" (keyreport kms-certificate)")


@dataclass(frozen=True)
class CertificateAuth(_AppRegistration):
    """A client certificate (PEM) kept in Secrets Manager."""

    name: ClassVar[str] = "certificate"
    builder: ClassVar[str] = f"{_CREDENTIALS}:certificate"
    certificate_arn: str = _env("KEYREPORT_AZURE_CERTIFICATE_ARN")


@dataclass(frozen=True)
class SecretAuth(_AppRegistration):
    """A client secret kept in Secrets Manager."""

    name: ClassVar[str] = "secret"
    builder: ClassVar[str] = f"{_CREDENTIALS}:client_secret"
    client_secret_arn: str = _env("KEYREPORT_AZURE_CLIENT_SECRET_ARN")


@dataclass(frozen=True)
class DefaultAuth:
    """DefaultAzureCredential (Azure CLI, environment, managed identity): for workstations."""

    name: ClassVar[str] = "default"
    builder: ClassVar[str] = f"{_CREDENTIALS}:default"
    tenant_id: str | None = _env("AZURE_TENANT_ID", None)


AuthSettings = FederatedAuth | KmsAuth | CertificateAuth | SecretAuth | DefaultAuth
AUTH_KINDS: tuple[type[AuthSettings], ...] = (FederatedAuth, KmsAuth, CertificateAuth, SecretAuth, DefaultAuth)
AUTH_MODES = tuple(kind.name for kind in AUTH_KINDS)

# --- the settings a command gets ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AzureSettings:
    """How to reach Azure: which cloud, which authority, which extra CA, and how to sign in."""

    auth: AuthSettings = DefaultAuth()
    cloud: AzureCloud = CLOUDS["public"]
    authority_override: str | None = None
    ca_bundle: str | None = None
    secret_max_age_seconds: int = 900

    @property
    def authority_host(self) -> str:
        return self.authority_override or self.cloud.authority_host


@dataclass(frozen=True)
class OrganizationSettings:
    """KEYREPORT_MODE=organization: fan out to every member account over SQS."""

    queue_url: str = _env("KEYREPORT_QUEUE_URL")
    member_role_name: str = _env("KEYREPORT_MEMBER_ROLE_NAME", DEFAULT_MEMBER_ROLE)
    external_id: str | None = _env("KEYREPORT_EXTERNAL_ID", None)


@dataclass(frozen=True)
class Settings:
    sink: SinkSettings
    azure: AzureSettings
    organization: OrganizationSettings | None = None
    log_type: str = DEFAULT_LOG_TYPE
    spill_bucket: str | None = None
    fingerprint_secret_arn: str | None = None  # required for every sink but the stdout dry run
    batch_max_bytes: int = 4 * 1024 * 1024
    iam_concurrency: int = 24
    aws_retry_mode: str = "standard"
    aws_max_attempts: int = 10
    deadline_margin_seconds: int = 20
    metrics_namespace: str = "KeyReport"
    event_queue_url: str | None = None
    owner_tags: tuple[str, ...] = DEFAULT_OWNER_TAGS
    max_exception_days: int = DEFAULT_MAX_EXCEPTION_DAYS

    @property
    def tag_rules(self) -> TagRules:
        """Which user tags the inventory keeps, and how they become the user row's owner and exceptions."""
        return TagRules(self.owner_tags, self.max_exception_days)

    @property
    def run_log_type(self) -> str:
        return self.log_type + RUN_LOG_TYPE_SUFFIX

    @property
    def users_log_type(self) -> str:
        return self.log_type + USERS_LOG_TYPE_SUFFIX

    @property
    def mode(self) -> str:
        return "account" if self.organization is None else "organization"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: str) -> Settings:
        """Parse `environ` (default: the process environment); `overrides` replace single variables."""
        return _Parser({**(os.environ if environ is None else environ), **overrides}).settings()

    @classmethod
    def for_query(cls, environ: Mapping[str, str] | None = None, **overrides: str) -> QuerySettings:
        """Settings for `keyreport query`: the workspace and how to sign in; sink variables are not needed."""
        return _Parser({**(os.environ if environ is None else environ), **overrides}).query_settings()


@dataclass(frozen=True)
class QuerySettings:
    """`keyreport query`: the workspace to query and how to reach it."""

    workspace_id: str
    azure: AzureSettings
    endpoint_override: str | None = None

    @property
    def logs_query_endpoint(self) -> str:
        """Where queries go; tokens are always for the cloud's own query audience."""
        return (self.endpoint_override or self.azure.cloud.logs_query_endpoint).rstrip("/")


# --- parsing ---------------------------------------------------------------------------------------------

G = TypeVar("G")
K = TypeVar("K", bound=Kind)

# Variables whose values are checked before anything is combined, in the order problems are listed.
_CHECKS: dict[str, Callable[[str], str | None]] = {
    "KEYREPORT_WORKSPACE_ID": check.guid_problem,
    "KEYREPORT_LOG_TYPE": check.log_type_problem,
    "KEYREPORT_KEYVAULT_URL": check.https_problem,
    "KEYREPORT_WORKSPACE_KEY_SECRET": check.secret_name_problem,
    "AZURE_TENANT_ID": check.tenant_problem,
    "AZURE_CLIENT_ID": check.client_id_problem,
    "KEYREPORT_AZURE_CLIENT_SECRET_ARN": check.arn_problem,
    "KEYREPORT_AZURE_CERTIFICATE_ARN": check.arn_problem,
    "KEYREPORT_FINGERPRINT_SECRET_ARN": check.arn_problem,
    "KEYREPORT_AZURE_AUTHORITY_HOST": check.https_problem,
    "KEYREPORT_AZURE_RESOURCE_ID": check.resource_id_problem,
    "KEYREPORT_DATA_COLLECTOR_ENDPOINT": check.https_problem,
    "KEYREPORT_LOGS_QUERY_ENDPOINT": check.https_problem,
    "KEYREPORT_DCE_ENDPOINT": check.https_problem,
    "KEYREPORT_DCR_ID": check.dcr_id_problem,
    "KEYREPORT_STREAM": check.stream_problem,
    "KEYREPORT_RUN_STREAM": check.stream_problem,
    "KEYREPORT_USERS_STREAM": check.stream_problem,
    "KEYREPORT_CA_BUNDLE": check.pem_file_problem,
    "KEYREPORT_QUEUE_URL": check.queue_url_problem,
    "KEYREPORT_EVENT_QUEUE_URL": check.queue_url_problem,
    "KEYREPORT_MEMBER_ROLE_NAME": check.role_name_problem,
    "KEYREPORT_EXTERNAL_ID": check.external_id_problem,
    "KEYREPORT_METRICS_NAMESPACE": check.metrics_namespace_problem,
}


# A certificate (public, base64 DER) and an external id (random on purpose) may look like keys; nothing else may.
_MAY_LOOK_RANDOM = {"KEYREPORT_KMS_CERTIFICATE", "KEYREPORT_EXTERNAL_ID"}
_NOT_HERE = (  # what to do with a secret pasted into a variable
    "but no keyreport variable holds a secret: keep it in Secrets Manager or Key Vault and name it here"
)
_NOT_AN_ARN = "not an ARN: keep the value in Secrets Manager and set the secret's ARN here"
_INSTEAD = {
    "KEYREPORT_WORKSPACE_KEY_SECRET": "not a secret name: set the name of the Key Vault secret that holds it",
    "KEYREPORT_AZURE_CLIENT_SECRET_ARN": _NOT_AN_ARN,
    "KEYREPORT_AZURE_CERTIFICATE_ARN": _NOT_AN_ARN,
    "KEYREPORT_FINGERPRINT_SECRET_ARN": _NOT_AN_ARN,
}


class _Parser:
    """Collects problems instead of stopping at the first, so one run shows them all."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.env = environ
        self.problems: list[str] = []
        self.secret_like = self.pasted_secrets()

    def pasted_secrets(self) -> set[str]:
        """Variables holding what looks like a secret: named as such, never quoted, not checked further."""
        found = set()
        for name in VARIABLES:  # in the documented order, so the problems come in a stable order
            value = None if name in _MAY_LOOK_RANDOM else self.text(name)
            if value is not None and (problem := check.secret_problem(value, _INSTEAD.get(name, _NOT_HERE))):
                self.problems.append(f"{name} {problem}")
                found.add(name)
        return found

    def text(self, name: str) -> str | None:
        value = self.env.get(name, "").strip()
        return value or None

    def choice(self, name: str, options: tuple[str, ...], default: str) -> str:
        value = (self.text(name) or default).lower()
        if value not in options:
            if name not in self.secret_like:
                self.problems.append(check.problem_line(name, value, f"is not one of: {', '.join(options)}"))
            return default
        return value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            if name not in self.secret_like:
                self.problems.append(check.problem_line(name, raw, "is not a whole number"))
            return default
        if not low <= value <= high:
            self.problems.append(f"{name}={value} must be between {low} and {high}")
            return default
        return value

    def owner_tags(self) -> tuple[str, ...]:
        """KEYREPORT_OWNER_TAGS: unset, the default; set empty, no owner tag at all."""
        raw = self.env.get("KEYREPORT_OWNER_TAGS")
        if raw is None:
            return DEFAULT_OWNER_TAGS
        names = tuple(name.strip() for name in raw.split(",")) if raw.strip() else ()
        problems = [(name, check.tag_key_problem(name)) for name in names]
        if len({name.casefold() for name in names}) != len(names):
            problems.append(("", "names a tag twice (IAM tag keys ignore case)"))
        for name, problem in problems:
            if problem is not None and "KEYREPORT_OWNER_TAGS" not in self.secret_like:
                line = check.problem_line("KEYREPORT_OWNER_TAGS", name, problem) if name else problem
                self.problems.append(
                    f"{line if name else 'KEYREPORT_OWNER_TAGS ' + line} (a comma list of IAM tag keys)"
                )
        return names if all(problem is None for _, problem in problems) else DEFAULT_OWNER_TAGS

    def check_values(self) -> None:
        for name, problem_of in _CHECKS.items():
            value = self.text(name)
            if value is not None and name not in self.secret_like and (problem := problem_of(value)) is not None:
                self.problems.append(check.problem_line(name, value, problem))
        certificate = self.text("KEYREPORT_KMS_CERTIFICATE")
        if certificate is not None:
            try:
                parse_certificate(certificate)
            except CertificateProblem as problem:  # named, not echoed: a kilobyte of base64 helps nobody
                self.problems.append(f"KEYREPORT_KMS_CERTIFICATE {problem}")

    def group(self, kind: type[G], why: str) -> G | None:
        """`kind` filled from the variables its fields name; None (with problems) when a required one is unset."""
        values: dict[str, str] = {}
        for spec in fields(kind):  # type: ignore[arg-type]
            name = spec.metadata["env"]
            value = self.text(name)
            if value is not None:
                values[spec.name] = value
            elif spec.default is MISSING:
                self.problems.append(f"{name} is required {why}{spec.metadata['hint']}")
        complete = all(spec.name in values or spec.default is not MISSING for spec in fields(kind))  # type: ignore[arg-type]
        return kind(**values) if complete else None

    def kind(self, kinds: tuple[type[K], ...], variable: str, default: str) -> type[K]:
        """The registered kind the variable selects (its default when the value is not a known name)."""
        name = self.choice(variable, tuple(kind.name for kind in kinds), default)
        return next(kind for kind in kinds if kind.name == name)

    def azure(self, auth_kind: type[AuthSettings], cloud: str, needs_auth: bool) -> AzureSettings:
        auth = self.group(auth_kind, f"for KEYREPORT_AZURE_AUTH={auth_kind.name}") if needs_auth else None
        return AzureSettings(
            auth=auth or DefaultAuth(self.text("AZURE_TENANT_ID")),
            cloud=CLOUDS[cloud],
            authority_override=self.text("KEYREPORT_AZURE_AUTHORITY_HOST"),
            ca_bundle=self.text("KEYREPORT_CA_BUNDLE"),
            secret_max_age_seconds=self.integer("KEYREPORT_SECRET_MAX_AGE_SECONDS", 900, 0, 86_400),
        )

    def fingerprint_secret_arn(self, sink_kind: type[SinkSettings]) -> str | None:
        arn = self.text("KEYREPORT_FINGERPRINT_SECRET_ARN")
        if arn is None and sink_kind.needs_azure:  # only a dry run may make up a key for itself
            self.problems.append(
                f"KEYREPORT_FINGERPRINT_SECRET_ARN is required for KEYREPORT_SINK={sink_kind.name} (the Secrets "
                "Manager secret the stack generates: it keys the fingerprints and authenticates spilled batches)"
            )
        return arn

    def settings(self) -> Settings:
        sink_kind = self.kind(SINK_KINDS, "KEYREPORT_SINK", LogsIngestionSettings.name)
        auth_kind = self.kind(AUTH_KINDS, "KEYREPORT_AZURE_AUTH", DefaultAuth.name)
        cloud = self.choice("KEYREPORT_AZURE_CLOUD", tuple(CLOUDS), "public")
        self.check_values()
        common: dict[str, Any] = {
            "log_type": self.text("KEYREPORT_LOG_TYPE") or DEFAULT_LOG_TYPE,
            "spill_bucket": self.text("KEYREPORT_SPILL_BUCKET"),
            "fingerprint_secret_arn": self.fingerprint_secret_arn(sink_kind),
            "batch_max_bytes": self.integer(
                "KEYREPORT_BATCH_MAX_BYTES", 4 * 1024 * 1024, 1024, DATA_COLLECTOR_MAX_POST_BYTES
            ),
            "iam_concurrency": self.integer("KEYREPORT_IAM_CONCURRENCY", 24, 1, 64),
            "aws_retry_mode": self.choice("KEYREPORT_AWS_RETRY_MODE", RETRY_MODES, "standard"),
            "aws_max_attempts": self.integer("KEYREPORT_AWS_MAX_ATTEMPTS", 10, 1, 20),
            "deadline_margin_seconds": self.integer("KEYREPORT_DEADLINE_MARGIN_SECONDS", 20, 0, 300),
            "metrics_namespace": self.text("KEYREPORT_METRICS_NAMESPACE") or "KeyReport",
            "event_queue_url": self.text("KEYREPORT_EVENT_QUEUE_URL"),
            "owner_tags": self.owner_tags(),
            "max_exception_days": self.integer("KEYREPORT_MAX_EXCEPTION_DAYS", DEFAULT_MAX_EXCEPTION_DAYS, 1, 3650),
        }
        mode = self.choice("KEYREPORT_MODE", MODES, "account")
        organization = (
            self.group(OrganizationSettings, "for KEYREPORT_MODE=organization") if mode == "organization" else None
        )
        named = (self.text("KEYREPORT_SINK") or sink_kind.name).strip().lower()
        # An unknown sink is one problem, not also the default sink's missing settings.
        sink = self.group(sink_kind, f"for KEYREPORT_SINK={sink_kind.name}") if named == sink_kind.name else None
        azure = self.azure(auth_kind, cloud, needs_auth=sink_kind.needs_azure)  # a dry run talks to no Azure service
        if self.problems or sink is None:
            raise ConfigError(self.problems)
        return Settings(sink=sink, azure=azure, organization=organization, **common)

    def query_settings(self) -> QuerySettings:
        auth_kind = self.kind(AUTH_KINDS, "KEYREPORT_AZURE_AUTH", DefaultAuth.name)
        cloud = self.choice("KEYREPORT_AZURE_CLOUD", tuple(CLOUDS), "public")
        self.check_values()
        workspace_id = self.text("KEYREPORT_WORKSPACE_ID")
        if workspace_id is None:
            self.problems.append("KEYREPORT_WORKSPACE_ID is required for keyreport query")
        azure = self.azure(auth_kind, cloud, needs_auth=True)
        if self.problems or workspace_id is None:
            raise ConfigError(self.problems)
        return QuerySettings(workspace_id, azure, self.text("KEYREPORT_LOGS_QUERY_ENDPOINT"))
