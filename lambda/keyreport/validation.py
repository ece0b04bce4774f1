"""Checks of single setting values: each returns what is wrong with a value, or None when it is fine."""

from __future__ import annotations

import itertools
import re
import ssl
import uuid
from pathlib import Path
from urllib.parse import urlparse

LOG_TYPE_PATTERN = re.compile(r"^[A-Za-z0-9_]{1,100}$")
RUN_LOG_TYPE_SUFFIX = "_Run"
USERS_LOG_TYPE_SUFFIX = "_Users"  # the longer suffix: the Log-Type length check uses it
DCR_IMMUTABLE_ID_PATTERN = re.compile(r"^dcr-[0-9a-f]{32}$")
STREAM_PATTERN = re.compile(r"^Custom-[A-Za-z0-9_]{1,100}$")
# Values a problem may quote: short names and numbers, URLs without credentials or query, paths, ARNs, GUIDs.
_QUOTABLE = re.compile(
    r"[A-Za-z0-9 _.:/-]{1,24}"
    r"|https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/%-]*)?"
    r"|/[A-Za-z0-9._/-]{1,250}"
    r"|arn:[a-z-]+:[a-z0-9-]+:[a-z0-9-]*:[0-9]{0,12}:[A-Za-z0-9+=,.@/:_-]{1,250}"
    r"|\{?[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\}?"
)
_BASE64_KEY = re.compile(r"[A-Za-z0-9+/]{40,}={0,2}")
# `openssl rand -hex`, a SHA digest: hex only, 33 characters or more (32 would also be a GUID without dashes).
_HEX_KEY = re.compile(r"[0-9a-fA-F]{33,}")


# IAM's tag keys: letters, digits, spaces and _ . : / = + - @ (any script), 1 to 128 characters; aws: is AWS's.
_TAG_KEY = re.compile(r"[\w\s.:/=+\-@]{1,128}")


def tag_key_problem(value: str) -> str | None:
    """What keeps `value` from being an IAM tag key (KEYREPORT_OWNER_TAGS names tags), or None."""
    if not value:
        return "has an empty tag name (a comma too many?)"
    if len(value) > 128:
        return "has a tag name longer than 128 characters (IAM's limit)"
    if not _TAG_KEY.fullmatch(value):
        return "has a tag name IAM would not accept (letters, digits, spaces and _ . : / = + - @)"
    if value.casefold().startswith("keyreport-"):
        return "names a keyreport- tag: those are exception tags (keyreport-exception), not owners"
    return None


def looks_like(value: str) -> str | None:
    """What kind of secret a value looks like ("a base64 key"), or None. Conservative: a name is never one."""
    if "-----BEGIN" in value:
        return "a PEM (certificate or private key)"
    if value.startswith("eyJ") and value.count(".") == 2 and len(value) >= 40:
        return "a token (JWT)"
    if "~" in value and 34 <= len(value) <= 60 and " " not in value:
        return "an Entra client secret"
    if _BASE64_KEY.fullmatch(value) and _random_looking(value.rstrip("=")):
        return "a base64 key"
    if _HEX_KEY.fullmatch(value) and any(c.isdigit() for c in value) and any(c.isalpha() for c in value):
        return "a hex key"
    return None


def _random_looking(text: str) -> bool:
    """Letters, digits and case change places often in random text, seldom in names (ProductionAccount1)."""
    kinds = ["u" if c.isupper() else "l" if c.islower() else "d" if c.isdigit() else "o" for c in text]
    changes = sum(a != b for a, b in itertools.pairwise(kinds))
    return {"u", "l", "d"} <= set(kinds) and changes >= 0.45 * (len(text) - 1)


def problem_line(name: str, value: str, problem: str) -> str:
    """One problem, naming the variable; its value is quoted only when no secret has its shape, else described."""
    kind = looks_like(value)
    if kind is None and _QUOTABLE.fullmatch(value):
        return f"{name}={value!r} {problem}"
    what = f"looks like {kind}" if kind else f"is {len(value)} characters long"
    return f"{name} {problem} (the value {what}, not shown: it may be a secret)"


def secret_problem(value: str, instead: str) -> str | None:
    """A secret pasted where a name or an address belongs: what it looks like, and what belongs there."""
    kind = looks_like(value)
    return None if kind is None else f"looks like {kind}, {instead}"


def pem_loads(data: bytes) -> bool:
    """Whether OpenSSL loads the certificates of a PEM bundle (all of them, not just their markers)."""
    try:
        ssl.create_default_context(cadata=data.decode("ascii"))
    except (ssl.SSLError, ValueError):  # UnicodeDecodeError is a ValueError
        return False
    return True


def queue_url_problem(value: str) -> str | None:
    url = urlparse(value)
    return (
        None
        if url.scheme in ("https", "http") and url.hostname and url.path.count("/") == 2
        else ("is not an SQS queue URL (https://sqs.<region>.amazonaws.com/<account>/<queue>)")
    )


def account_id_problem(value: str) -> str | None:
    return None if re.fullmatch(r"[0-9]{12}", value) else "is not a 12-digit AWS account id"


def metrics_namespace_problem(value: str) -> str | None:
    if value.startswith("AWS/"):
        return "must not start with AWS/ (reserved for AWS services)"
    ok = re.fullmatch(r"[A-Za-z0-9.\-_/#: ]{1,255}", value)
    return None if ok else "is not a CloudWatch namespace (letters, digits, . - _ / # : and spaces, up to 255)"


def role_name_problem(value: str) -> str | None:
    return None if re.fullmatch(r"[\w+=,.@-]{1,64}", value) else "is not an IAM role name"


def external_id_problem(value: str) -> str | None:
    return None if re.fullmatch(r"[\w+=,.@:/-]{2,1224}", value) else "is not a valid external id (2-1224 characters)"


def guid_problem(value: str) -> str | None:
    try:
        uuid.UUID(value)
    except ValueError:
        return "is not a GUID (the workspace id looks like 1b2c3d4e-...; see the workspace's Overview page)"
    return None if len(value) == 36 else "must be a GUID written with dashes (36 characters)"


def log_type_problem(value: str) -> str | None:
    if not LOG_TYPE_PATTERN.fullmatch(value):
        return "is not a valid Log-Type: letters, digits and underscore only, at most 100 characters"
    if len(value) + len(USERS_LOG_TYPE_SUFFIX) > 100:
        return f"leaves no room for the users type {value + USERS_LOG_TYPE_SUFFIX!r} (100 characters at most)"
    return None


def dcr_id_problem(value: str) -> str | None:
    if DCR_IMMUTABLE_ID_PATTERN.fullmatch(value):
        return None
    if value.lower().startswith("/subscriptions/"):
        return (
            "is the rule's resource id; set its immutable id instead (dcr-<32 hex digits>: the DCR's JSON view, "
            "properties.immutableId, or the template output dataCollectionRuleImmutableId)"
        )
    return "is not a data collection rule immutable id (dcr- followed by 32 lowercase hex digits)"


def stream_problem(value: str) -> str | None:
    if STREAM_PATTERN.fullmatch(value):
        return None
    return "is not a custom stream name: Custom- and then letters, digits or underscores (see the DCR's streams)"


def tenant_problem(value: str) -> str | None:
    # azure-identity accepts a tenant GUID or a verified domain name (contoso.onmicrosoft.com).
    if re.fullmatch(r"[A-Za-z0-9.-]{1,256}", value):
        return None
    return "is not a tenant id: use the directory (tenant) GUID or the tenant's domain name"


def client_id_problem(value: str) -> str | None:
    try:
        uuid.UUID(value)
    except ValueError:
        return "is not a client id: use the app registration's Application (client) ID, a GUID"
    return None


def https_problem(value: str) -> str | None:
    url = urlparse(value)
    if url.scheme != "https" or not url.hostname:
        return "must be an https:// URL"
    return None


def secret_name_problem(value: str) -> str | None:
    ok = re.fullmatch(r"[0-9A-Za-z-]{1,127}", value)
    return None if ok else "is not a Key Vault secret name (letters, digits and dashes, at most 127)"


def arn_problem(value: str) -> str | None:
    return None if value.startswith("arn:") and value.count(":") >= 5 else "is not an ARN"


def resource_id_problem(value: str) -> str | None:
    return None if value.startswith("/subscriptions/") else "is not an Azure resource id (/subscriptions/...)"


def pem_file_problem(value: str) -> str | None:
    try:  # too long a name (ENAMETOOLONG), a directory, no permission: OSError; a NUL in it: ValueError; no crash
        content = Path(value).read_bytes()
    except (OSError, ValueError):
        return "does not name a readable file"
    if b"-----BEGIN CERTIFICATE-----" not in content:
        return "contains no PEM certificate"
    return None if pem_loads(content) else "holds a PEM certificate that cannot be loaded (is it complete?)"
