"""What no parser catches: the order of steps, values a reader must have kept, and each cloud's known traps."""

from __future__ import annotations

import re

from keyreport.queries.catalogue import format_duration, library
from tests.docs import az_cli
from tests.docs.guides import Shown
from tests.docs.templates import arm
from tests.docs.values import placeholder

WALKTHROUGH = "docs/deployment.md"  # from nothing to data: every value it needs it makes, keeps or names
ENVIRONMENT = {"HOME", "PATH", "USER", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"}
_DEPLOYS = (["aws", "cloudformation", "deploy"], ["make", "deploy"])


def _is(item: Shown, *words: str) -> bool:
    return item.words[: len(words)] == list(words)


def partition(items: list[Shown]) -> list[str]:
    """An ARN written with `arn:aws:` is wrong in GovCloud and China: `arn:$PARTITION:` or one AWS returns."""
    return [
        f"{i.where}: hard-coded partition in {w[:80]!r}; use arn:$PARTITION:"
        for i in items
        if i.words[:1] in (["aws"], ["az"])
        for w in i.words
        if "arn:aws:" in w
    ]


def certificate_credentials(items: list[Shown]) -> list[str]:
    """Without --cert, `az ad app credential list/delete` act on the app's passwords, not its certificates.

    A section is about certificates when every credential it adds is one (`reset --cert`), or it adds none and
    its heading names kms or certificates.
    """
    problems = []
    for heading in dict.fromkeys(i.heading for i in items):
        section = [i for i in items if i.heading == heading]
        resets = [i for i in section if _is(i, "az", "ad", "app", "credential", "reset")]
        about = all("--cert" in i.words for i in resets) if resets else re.search(r"kms|certificate", heading, re.I)
        problems += [
            f"{i.where}: in a certificate section, {' '.join(i.words[:5])} needs --cert"
            for i in section
            if about
            and (_is(i, "az", "ad", "app", "credential", "delete") or _is(i, "az", "ad", "app", "credential", "list"))
            and "--cert" not in i.words
        ]
    return problems


def stack_sets(items: list[Shown], text: str) -> list[str]:
    """Service-managed StackSets need trusted access first, and --call-as DELEGATED_ADMIN from a delegated admin."""
    problems: list[str] = []
    activated = False
    for i in items:
        activated = activated or _is(i, "aws", "cloudformation", "activate-organizations-access")
        if _is(i, "aws", "cloudformation", "create-stack-set") and "SERVICE_MANAGED" in i.words and not activated:
            problems.append(f"{i.where}: run `aws cloudformation activate-organizations-access` before this")
    if "delegated administrator" in text.lower():
        for operation in ("create-stack-set", "create-stack-instances"):
            calls = [i for i in items if _is(i, "aws", "cloudformation", operation)]
            if calls and not any(_call_as(i.words) == "DELEGATED_ADMIN" for i in calls):
                problems.append(
                    f"{calls[0].where}: the guide names a delegated administrator; show --call-as DELEGATED_ADMIN"
                )
    return problems


def _call_as(words: list[str]) -> str:
    return words[words.index("--call-as") + 1] if "--call-as" in words[:-1] else ""


def extensions(items: list[Shown]) -> list[str]:
    """A command of an az extension needs `az extension add` first: auto-install is often off."""
    problems, added = [], set()
    for i in items:
        if _is(i, "az", "extension", "add"):
            added |= {i.words[n + 1] for n, w in enumerate(i.words[:-1]) if w in ("-n", "--name")}
        elif i.words[:1] == ["az"] and (name := az_cli.command_name(i.words)):
            extension = az_cli.table()["commands"][name].get("extension")
            if extension and extension not in added:
                problems.append(f"{i.where}: needs `az extension add -n {extension}` first")
    return problems


def role_propagation(items: list[Shown]) -> list[str]:
    """A role assignment takes minutes to apply: the data-plane write right after it must be retried."""
    problems, granted = [], -1
    for i in items:
        if _is(i, "az", "role", "assignment", "create") and i.block >= 0:
            granted = i.block
        elif _is(i, "az", "keyvault", "secret") and i.block == granted and not i.command.condition:
            problems.append(f"{i.where}: right after a role assignment; retry it (until … do sleep …; done)")
    return problems


def region(items: list[Shown], doc: str) -> list[str]:
    """The walk-through deploys next to its artifact bucket only if the region reaches the AWS CLI."""
    if doc != WALKTHROUGH:
        return []
    for i in items:
        if i.command.exported and {n for n, _ in i.command.assignments} & {"AWS_REGION", "AWS_DEFAULT_REGION"}:
            return []
        if any(_is(i, *words) for words in _DEPLOYS) and i.block >= 0:
            return [f"{i.where}: export AWS_REGION (or AWS_DEFAULT_REGION) before deploying"]
    return []


def kept_values(items: list[Shown], doc: str, before: set[str]) -> list[str]:
    """Every variable a command uses was set earlier; the walk-through asks the reader for nothing else."""
    problems, known = [], set(before) | ENVIRONMENT
    for i in items:
        if i.block < 0:
            continue
        missing = sorted(i.command.uses - known)
        problems += [f"{i.where}: ${name} is used before the guide sets it" for name in missing]
        if doc == WALKTHROUGH:
            asked = [w for w in i.words if placeholder(w)]
            problems += [f"{i.where}: asks the reader for {w!r}; make and keep it in keyreport.env" for w in asked]
        known |= {name for name, _ in i.command.assignments} | {i.command.output} - {""}
    return problems


def assigned(items: list[Shown]) -> set[str]:
    return {n for i in items if i.block >= 0 for n, _ in i.command.assignments} | {i.command.output for i in items} - {
        ""
    }


def arm_outputs(items: list[Shown]) -> list[str]:
    """A deployment output fed back as a parameter must be that parameter's value, not, say, a resource id; an
    output read with `az deployment group show -n NAME` must be one of the template an earlier create deployed
    as NAME."""
    problems, outputs, deployed = [], {}, {}
    for i in items:
        if _is(i, "az", "deployment", "group", "show"):
            name = _flag(i.words, "-n") or _flag(i.words, "--name")
            query = re.fullmatch(r"properties\.outputs\.(\w+)\.value", _flag(i.words, "--query"))
            if name not in deployed:
                problems.append(f"{i.where}: no earlier `az deployment group create -n {name}` deployed it")
            elif query and query[1] not in arm(deployed[name]).get("outputs", {}):
                problems.append(f"{i.where}: {deployed[name]} has no output {query[1]}")
            continue
        if not _is(i, "az", "deployment", "group", "create"):
            continue
        template = _flag(i.words, "--template-file")
        name = _flag(i.words, "-n") or _flag(i.words, "--name")
        if name and template:
            deployed[name] = template
        query = re.fullmatch(r"properties\.outputs\.(\w+)\.value", _flag(i.words, "--query"))
        if query and template:
            if query[1] not in arm(template).get("outputs", {}):
                problems.append(f"{i.where}: {template} has no output {query[1]}")
            outputs[i.command.output] = (template, query[1])
        for word in i.words:
            name, _, value = word.partition("=")
            fed = outputs.get(value.strip("$"))
            if fed and fed[0] == template:
                value_of = arm(template)["outputs"].get(fed[1], {}).get("value")
                if value_of != f"[parameters('{name}')]":
                    problems.append(f"{i.where}: {name} gets output {fed[1]} ({value_of}), not the parameter's value")
    return problems


def _flag(words: list[str], flag: str) -> str:
    return words[words.index(flag) + 1] if flag in words[:-1] else ""


def prose(text: str, walkthrough: str, where: str) -> list[str]:
    """The walk-through's vault uses Azure RBAC: no guide may send readers to its access policies."""
    if "--enable-rbac-authorization true" in walkthrough and re.search(r"access polic", text, re.IGNORECASE):
        return [f"{where}: the vault is RBAC-authorised; it has role assignments, not access policies"]
    return []


def preview_api_versions(items: list[Shown]) -> list[str]:
    return [
        f"{i.where}: a preview api-version; use a GA one (or the az command)"
        for i in items
        if i.words[:1] == ["az"] and any(re.search(r"api-version=[\d-]+-preview", w) for w in i.words)
    ]


_FILE = re.compile(r"`((?:[\w.-]+/)*[\w-]+\.(?:py|json|yaml|yml|kql|md|js|lock|txt|in))`")


def files(text: str, where: str, tracked: set[str]) -> list[str]:
    """A file the prose names exists: as written, in the package (lambda/keyreport), or as a unique path's tail."""
    problems = []
    for name in sorted(set(_FILE.findall(text))):
        if name in tracked or f"lambda/keyreport/{name}" in tracked or f"docs/{name}" in tracked:
            continue
        tails = [path for path in tracked if path.endswith("/" + name)]
        if len(tails) != 1:
            problems.append(f"{where}: names {name}, which is {'ambiguous' if tails else 'no file of the repository'}")
    return problems


ENV_FILE = "keyreport.env"


def persisted(items: list[Shown], doc: str) -> list[str]:
    """In the walk-through, a value made in one step and used in a later one is kept in keyreport.env first."""
    if doc != WALKTHROUGH:
        return []
    problems, kept, made_in = [], set(ENVIRONMENT), {}
    for i in (i for i in items if i.block >= 0):
        stale = {n for n in i.command.uses if made_in.get(n, i.block) != i.block} - kept
        problems += [f"{i.where}: ${name} comes from an earlier step; keep it in {ENV_FILE}" for name in sorted(stale)]
        names = {n for n, _ in i.command.assignments} | {i.command.output} - {""}
        made_in |= dict.fromkeys(names, i.block)
        if ENV_FILE in i.command.writes:
            kept |= names | {m for w in i.words[1:] if i.words[0] == "echo" for m in re.findall(r"(\w+)=\$", w)}
    return problems


def aws_cli_v2(items: list[Shown]) -> list[str]:
    """`pip install awscli` installs the AWS CLI v1; the guides' commands need v2 (--cli-binary-format)."""
    return [
        f"{i.where}: pip install awscli installs the AWS CLI v1; the guides need v2 (AWS's installer)"
        for i in items
        if i.block >= 0 and i.words[:1] in (["pip"], ["pip3"]) and "awscli" in i.words
    ]


def roles_exist(items: list[Shown]) -> list[str]:
    """A policy goes on a role that exists: `put-role-policy` after the role's `create-role` (or the stack)."""
    problems, created = [], set()
    for i in items:
        if _is(i, "aws", "iam", "create-role"):
            created.add(_flag(i.words, "--role-name"))
        elif any(_is(i, *words) for words in _DEPLOYS):
            created |= {value for word in i.words for value in re.findall(r"FunctionRoleName=(\S+)", word)}
        elif _is(i, "aws", "iam", "put-role-policy") and _flag(i.words, "--role-name") not in created:
            problems.append(f"{i.where}: the role {_flag(i.words, '--role-name')} is not created before this")
    return problems


_RANGE = re.compile(r"`([a-z0-9-]+)`[^`.]{0,80}?\(its range is `(P\w+)`\)")


def query_ranges(text: str, where: str) -> list[str]:
    """A shipped query's time range quoted in prose is the one its header declares."""
    shipped = library()
    return [
        f"{where}: `{query}` has range {format_duration(shipped[query].timespan)}, not {said}"
        for query, said in _RANGE.findall(text)
        if query in shipped and format_duration(shipped[query].timespan) != said
    ]
