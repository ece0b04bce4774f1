"""Azure-Sentinel's detection template validation (.script/tests/detectionTemplateSchemaValidation), implemented
here from what its models and validation attributes require, so the solution's YAML is checked offline.

`rule_problems` checks a scheduled analytics rule template, `hunting_problems` a hunting query; each returns
one message per problem (empty when the template would pass). Beyond the schema, `column_problems` checks that
every column an entity mapping, custom detail or alert placeholder names is in the query's result.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

Problems = list[str]

SEVERITIES = {"Informational", "Low", "Medium", "High"}
KINDS = {"Scheduled", "NRT"}
TRIGGER_OPERATORS = {"gt", "lt", "eq", "ne", "GreaterThan", "LessThan", "Equal", "NotEqual"}
AGGREGATION_KINDS = {"SingleAlert", "AlertPerResult"}
TACTICS = {
    "InitialAccess", "Execution", "Persistence", "PrivilegeEscalation", "DefenseEvasion", "CredentialAccess",
    "Discovery", "LateralMovement", "Collection", "Exfiltration", "CommandAndControl", "Impact", "Reconnaissance",
    "ResourceDevelopment", "ImpairProcessControl", "InhibitResponseFunction",
}  # fmt: skip
TECHNIQUE = re.compile(r"^T\d{4}(?:\.\d{3})?$")
VERSION = re.compile(r"^\d+\.\d+\.\d+$")
CUSTOM_DETAIL_KEY = re.compile(r"^[a-zA-Z]+\w*$")
COLUMN_NAME = re.compile(r"^[a-zA-Z_]+\w*$")
PLACEHOLDER = re.compile(r"\{\{([^{}]+)\}\}")
LEGACY_ENTITY_COLUMNS = (
    "AccountCustomEntity", "HostCustomEntity", "IPCustomEntity", "URLCustomEntity", "ProcessCustomEntity",
    "FileHashCustomEntity",
)  # fmt: skip
MIN_SPAN, MAX_SPAN = 5 * 60, 14 * 86_400
TWO_DAYS, ONE_HOUR = 2 * 86_400, 3600

# Entity type -> (valid identifiers, combinations of which one must be mapped in full).
ENTITY_IDENTIFIERS: dict[str, tuple[set[str], list[set[str]]]] = {
    "Account": (
        {"Name", "FullName", "NTDomain", "DnsDomain", "UPNSuffix", "Sid", "AadTenantId", "AadUserId", "PUID",
         "IsDomainJoined", "DisplayName", "ObjectGuid", "CloudAppAccountId"},
        [{"FullName"}, {"Sid"}, {"Name"}, {"AadUserId"}, {"PUID"}, {"ObjectGuid"}],
    ),
    "AzureResource": ({"ResourceId"}, [{"ResourceId"}]),
    "CloudApplication": ({"AppId", "Name", "InstanceName"}, [{"AppId"}, {"Name"}]),
    "DNS": ({"DomainName"}, [{"DomainName"}]),
    "File": ({"Directory", "Name"}, [{"Name"}]),
    "FileHash": ({"Algorithm", "Value"}, [{"Algorithm", "Value"}]),
    "Host": (
        {"DnsDomain", "NTDomain", "HostName", "FullName", "NetBiosName", "AzureID", "OMSAgentID", "OSFamily",
         "OSVersion", "IsDomainJoined"},
        [{"FullName"}, {"HostName"}, {"NetBiosName"}, {"AzureID"}, {"OMSAgentID"}],
    ),
    "IP": ({"Address"}, [{"Address"}]),
    "Malware": ({"Name", "Category"}, [{"Name"}]),
    "Process": ({"ProcessId", "CommandLine", "ElevationToken", "CreationTimeUtc"}, [{"CommandLine"}, {"ProcessId"}]),
    "RegistryKey": ({"Hive", "Key"}, [{"Key"}, {"Hive"}]),
    "RegistryValue": ({"Name", "Value", "ValueType"}, [{"Name"}]),
    "SecurityGroup": ({"DistinguishedName", "SID", "ObjectGuid"}, [{"DistinguishedName"}, {"SID"}, {"ObjectGuid"}]),
    "URL": ({"Url"}, [{"Url"}]),
    "Mailbox": ({"MailboxPrimaryAddress", "DisplayName", "Upn", "ExternalDirectoryObjectId", "RiskLevel"},
                [{"MailboxPrimaryAddress"}]),
}  # fmt: skip


def span_seconds(value: Any) -> int | None:
    """`<n>m`, `<n>h`, `<n>d` or a .NET TimeSpan `d.hh:mm:ss` / `hh:mm:ss`, as the template converter reads them."""
    if not isinstance(value, str):
        return None
    timespan = re.fullmatch(r"(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})", value)
    if timespan:
        days, hours, minutes, seconds = (int(part or 0) for part in timespan.groups())
        return ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    short = re.fullmatch(r"(\d+)([mhd])", value)
    if short:
        return int(short.group(1)) * {"m": 60, "h": 3600, "d": 86_400}[short.group(2)]
    return None


def _required(template: dict[str, Any], keys: tuple[str, ...], problems: Problems) -> None:
    problems.extend(f"{key}: required" for key in keys if template.get(key) in (None, "", []))


def _common(template: dict[str, Any], problems: Problems) -> None:
    try:
        uuid.UUID(str(template.get("id")))
    except ValueError:
        problems.append(f"id: {template.get('id')!r} is not a GUID")
    name, description = template.get("name"), template.get("description")
    if isinstance(name, str) and len(name) > 256:
        problems.append("name: longer than 256 characters")
    if isinstance(description, str) and len(description) > 5000:
        problems.append("description: longer than 5000 characters")
    for tactic in template.get("tactics") or []:
        if tactic not in TACTICS:
            problems.append(f"tactics: {tactic!r} is not a tactic Sentinel knows")
    for technique in template.get("relevantTechniques") or []:
        if not TECHNIQUE.fullmatch(str(technique)):
            problems.append(f"relevantTechniques: {technique!r} is not T<4 digits>[.<3 digits>]")
    connectors = template.get("requiredDataConnectors")
    if not isinstance(connectors, list):
        problems.append("requiredDataConnectors: must be a list")
    else:
        for index, connector in enumerate(connectors):
            if not isinstance(connector, dict) or not connector.get("connectorId"):
                problems.append(f"requiredDataConnectors[{index}]: connectorId required")
            elif not isinstance(connector.get("dataTypes"), list) or not connector["dataTypes"]:
                problems.append(f"requiredDataConnectors[{index}]: dataTypes required")
    version = template.get("version")
    if version is not None and not (isinstance(version, str) and VERSION.fullmatch(version) and len(version) <= 20):
        problems.append(f"version: {version!r} is not <major>.<minor>.<patch>")
    _entity_mappings(template.get("entityMappings"), problems)


def _entity_mappings(mappings: Any, problems: Problems) -> None:
    if mappings is None:
        return
    if not isinstance(mappings, list) or not 1 <= len(mappings) <= 5:
        problems.append("entityMappings: between 1 and 5 entities")
        return
    for index, mapping in enumerate(mappings):
        where = f"entityMappings[{index}]"
        kind = mapping.get("entityType")
        if kind not in ENTITY_IDENTIFIERS:
            problems.append(f"{where}: entity type {kind!r} is unknown")
            continue
        fields = mapping.get("fieldMappings") or []
        if not 1 <= len(fields) <= 3:
            problems.append(f"{where}: between 1 and 3 field mappings")
            continue
        valid, required = ENTITY_IDENTIFIERS[kind]
        used: set[str] = set()
        for field in fields:
            identifier, column = field.get("identifier"), field.get("columnName")
            if identifier not in valid:
                problems.append(f"{where}: {identifier!r} is not an identifier of {kind}")
            if identifier in used:
                problems.append(f"{where}: identifier {identifier!r} mapped twice")
            used.add(str(identifier))
            if not isinstance(column, str) or len(column) > 500 or not COLUMN_NAME.fullmatch(column):
                problems.append(f"{where}: column name {column!r} is not a Log Analytics column name")
        if not any(combination <= used for combination in required):
            problems.append(f"{where}: {kind} needs one of {[sorted(c) for c in required]} mapped")


def rule_problems(template: dict[str, Any]) -> Problems:
    """A scheduled analytics rule template against the detection template schema."""
    problems: Problems = []
    _required(
        template,
        ("id", "kind", "name", "description", "severity", "query", "queryFrequency", "queryPeriod",
         "triggerOperator"),
        problems,
    )  # fmt: skip
    if "requiredDataConnectors" not in template:
        problems.append("requiredDataConnectors: required")
    if "triggerThreshold" not in template:
        problems.append("triggerThreshold: required")
    _common(template, problems)
    if template.get("kind") not in KINDS:
        problems.append(f"kind: {template.get('kind')!r} is not Scheduled or NRT")
    if template.get("severity") not in SEVERITIES:
        problems.append(f"severity: {template.get('severity')!r} is not one of {sorted(SEVERITIES)}")
    query = template.get("query")
    if isinstance(query, str) and not 1 <= len(query) <= 10_000:
        problems.append("query: between 1 and 10000 characters")
    if isinstance(query, str) and re.search(r"\b(?:search|union)\s+\*", query):
        problems.append("query: Sentinel refuses `search *` and `union *` in a scheduled rule")
    if template.get("triggerOperator") not in TRIGGER_OPERATORS:
        problems.append(f"triggerOperator: {template.get('triggerOperator')!r} is not gt, lt, eq or ne")
    threshold = template.get("triggerThreshold")
    if not isinstance(threshold, int) or isinstance(threshold, bool) or not 0 <= threshold <= 10_000:
        problems.append("triggerThreshold: an integer from 0 to 10000")
    _periods(template, problems)
    _custom_details(template.get("customDetails"), problems)
    _alert_details(template.get("alertDetailsOverride"), problems)
    grouping = template.get("eventGroupingSettings")
    if grouping is not None and grouping.get("aggregationKind") not in AGGREGATION_KINDS:
        problems.append(f"eventGroupingSettings: aggregationKind {grouping.get('aggregationKind')!r}")
    mapped = {f.get("columnName") for m in template.get("entityMappings") or [] for f in m.get("fieldMappings") or []}
    for legacy in LEGACY_ENTITY_COLUMNS:
        if isinstance(query, str) and legacy in query and legacy not in mapped:
            problems.append(f"query: the legacy entity column {legacy} has no entity mapping")
    return problems


def _periods(template: dict[str, Any], problems: Problems) -> None:
    spans = {key: span_seconds(template.get(key)) for key in ("queryFrequency", "queryPeriod")}
    for key, seconds in spans.items():
        if seconds is None:
            problems.append(f"{key}: {template.get(key)!r} is not <number><m|h|d>")
        elif not MIN_SPAN <= seconds <= MAX_SPAN:
            problems.append(f"{key}: must be between 5 minutes and 14 days")
    frequency, period = spans["queryFrequency"], spans["queryPeriod"]
    if frequency is not None and period is not None:
        if period < frequency:
            problems.append("queryPeriod: must be at least queryFrequency")
        if period >= TWO_DAYS and frequency < ONE_HOUR:
            problems.append("queryFrequency: at least 1 hour when queryPeriod is 2 days or more")


def _custom_details(details: Any, problems: Problems) -> None:
    if details is None:
        return
    if not isinstance(details, dict) or len(details) > 20:
        problems.append("customDetails: a map of at most 20 entries")
        return
    for key, column in details.items():
        if not isinstance(key, str) or len(key) > 20 or not CUSTOM_DETAIL_KEY.fullmatch(key):
            problems.append(f"customDetails: key {key!r} must be a letter then letters, digits, _ (20 at most)")
        if not isinstance(column, str) or len(column) > 500 or not COLUMN_NAME.fullmatch(column):
            problems.append(f"customDetails: value {column!r} is not a column name")


def _alert_details(override: Any, problems: Problems) -> None:
    if override is None:
        return
    for key, limit in (("alertDisplayNameFormat", 256), ("alertDescriptionFormat", 5000)):
        text = override.get(key)
        if text is None:
            continue
        if not isinstance(text, str) or not text.strip() or len(text) > limit:
            problems.append(f"alertDetailsOverride.{key}: 1 to {limit} characters, not blank")
        elif len(PLACEHOLDER.findall(text)) > 3:
            problems.append(f"alertDetailsOverride.{key}: at most 3 {{{{column}}}} placeholders")


def hunting_problems(template: dict[str, Any]) -> Problems:
    """A hunting query against what Azure-Sentinel's hunting query checks read."""
    problems: Problems = []
    _required(template, ("id", "name", "description", "query"), problems)
    if "requiredDataConnectors" not in template:
        problems.append("requiredDataConnectors: required")
    _common(template, problems)
    return problems


def columns_used(template: dict[str, Any]) -> set[str]:
    """Every result column the template names: entity mappings, custom details, alert placeholders."""
    used = {f["columnName"] for m in template.get("entityMappings") or [] for f in m["fieldMappings"]}
    used |= set((template.get("customDetails") or {}).values())
    for text in (template.get("alertDetailsOverride") or {}).values():
        used |= set(PLACEHOLDER.findall(str(text)))
    return used
