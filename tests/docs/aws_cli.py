"""`aws …` commands against botocore's own service models: operation, flags, required members, enum values."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import botocore.session
from botocore import xform_name
from botocore.exceptions import DataNotFoundError
from botocore.model import OperationModel, Shape

from tests.docs.guides import ROOT
from tests.docs.templates import check_cloudformation
from tests.docs.values import literal, pairs, query_problems, shorthand

# The AWS CLI's own options, valid on every operation (`aws help`, "Global Options").
GLOBAL = {
    "--debug": 0, "--endpoint-url": 1, "--no-verify-ssl": 0, "--no-paginate": 0, "--output": 1, "--query": 1,
    "--profile": 1, "--region": 1, "--version": 0, "--color": 1, "--no-sign-request": 0, "--ca-bundle": 1,
    "--cli-read-timeout": 1, "--cli-connect-timeout": 1, "--cli-binary-format": 1, "--no-cli-pager": 0,
    "--cli-auto-prompt": 0, "--no-cli-auto-prompt": 0, "--cli-input-json": 1, "--cli-input-yaml": 1,
    "--generate-cli-skeleton": 1,
}  # fmt: skip
GLOBAL_CHOICES = {
    "--output": {"json", "text", "table", "yaml", "yaml-stream"},
    "--cli-binary-format": {"base64", "raw-in-base64-out"},
}
PAGING = {"--page-size": 1, "--max-items": 1, "--starting-token": 1}
CLI_SERVICE_NAMES = {"s3api": "s3"}  # the CLI's name for a service where it differs from botocore's


@dataclass(frozen=True)
class Custom:
    """A command the AWS CLI implements itself (no operation of its own): its options from `aws … help`."""

    options: dict[str, int]  # flag -> values it takes (0 a switch, 1 one, 2 one or more)
    positionals: int
    required: frozenset[str] = frozenset()


# The options of these commands' ARG_TABLE in awscli 1.46.3 (awscli/customizations/cloudformation/deploy.py,
# package.py, s3/subcommands.py), the same in AWS CLI v2's `aws … help`. `aws lambda invoke` is the one
# customised operation the guides use: it writes the response to a positional outfile.
_CP = """--acl --cache-control --case-conflict --checksum-algorithm --checksum-mode --content-disposition
--content-encoding --content-language --content-type --exclude --expected-size --expires --grants --include
--metadata --metadata-directive --page-size --request-payer --source-region --sse --sse-c --sse-c-copy-source
--sse-c-copy-source-key --sse-c-key --sse-kms-key-id --storage-class --website-redirect"""
_CP_SWITCHES = """--dryrun --follow-symlinks --force-glacier-transfer --ignore-glacier-warnings --no-follow-symlinks
--no-guess-mime-type --no-progress --only-show-errors --quiet --recursive"""
CUSTOM = {
    ("s3", "cp"): Custom(dict.fromkeys(_CP.split(), 1) | dict.fromkeys(_CP_SWITCHES.split(), 0), 2),
    ("cloudformation", "deploy"): Custom(
        {"--template-file": 1, "--stack-name": 1, "--s3-bucket": 1, "--s3-prefix": 1, "--force-upload": 0,
         "--kms-key-id": 1, "--parameter-overrides": 2, "--capabilities": 2, "--no-execute-changeset": 0,
         "--disable-rollback": 0, "--no-disable-rollback": 0, "--role-arn": 1, "--notification-arns": 2,
         "--fail-on-empty-changeset": 0, "--no-fail-on-empty-changeset": 0, "--tags": 2},
        0, frozenset({"--template-file", "--stack-name"})),
    ("cloudformation", "package"): Custom(
        {"--template-file": 1, "--s3-bucket": 1, "--s3-prefix": 1, "--kms-key-id": 1, "--output-template-file": 1,
         "--use-json": 0, "--force-upload": 0, "--metadata": 1},
        0, frozenset({"--template-file", "--s3-bucket"})),
}  # fmt: skip
EXTRA_POSITIONALS = {("lambda", "invoke"): 1}
DEPLOY_CAPABILITIES = {"CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"}


@cache
def _session() -> botocore.session.Session:
    return botocore.session.get_session()


@cache
def _operations(service: str) -> dict[str, str]:
    model = _session().get_service_model(service)
    return {xform_name(name, "-"): name for name in model.operation_names}


def check(words: list[str], where: str, mention: bool) -> list[str]:
    """`mention` is inline prose naming a command without every argument: only what it does show is checked."""
    if len(words) < 3:
        return [] if mention else [f"{where}: which operation?"]
    cli_service, command = words[1], words[2]
    if (cli_service, command) in CUSTOM:
        return _check_custom(CUSTOM[cli_service, command], words, where, mention)
    service = CLI_SERVICE_NAMES.get(cli_service, cli_service)
    if service not in _session().get_available_services():
        return [f"{where}: the AWS CLI has no service {cli_service}"]
    if command not in _operations(service):
        return [f"{where}: {service} has no operation {command}"]
    model = _session().get_service_model(service).operation_model(_operations(service)[command])
    return _check_operation(model, words, where, mention)


def _members(model: OperationModel) -> dict[str, Shape]:
    shape = model.input_shape
    return {"--" + xform_name(name, "-"): member for name, member in (shape.members.items() if shape else ())}


def _check_operation(model: OperationModel, words: list[str], where: str, mention: bool) -> list[str]:
    members = _members(model)
    arity = {
        flag: 0 if shape.type_name == "boolean" else 2 if shape.type_name == "list" else 1
        for flag, shape in members.items()
    }
    arity |= {f"--no-{flag[2:]}": 0 for flag, shape in members.items() if shape.type_name == "boolean"}
    arity |= GLOBAL | (PAGING if model.name in _paginated(model) else {})
    given, positionals, problems = _split(words[3:], arity, where)
    expected = EXTRA_POSITIONALS.get((words[1], words[2]), 0)
    if len(positionals) != expected and not mention:
        problems.append(f"{where}: takes {expected} positional argument(s), given {positionals}")
    required = {
        "--" + xform_name(name, "-") for name in (model.input_shape.required_members if model.input_shape else ())
    }
    if not mention:
        problems += [f"{where}: {flag} is required by {model.name}" for flag in sorted(required - set(given))]
    for flag, values in given.items():
        if flag in members:
            problems += [f"{where}: {flag} {why}" for why in _values(members[flag], values)]
        elif flag in GLOBAL_CHOICES and values and literal(values[0]) and values[0] not in GLOBAL_CHOICES[flag]:
            problems.append(f"{where}: {flag} {values[0]} is not one of {sorted(GLOBAL_CHOICES[flag])}")
    if "--no-verify-ssl" in given:
        problems.append(f"{where}: --no-verify-ssl turns TLS verification off; keyreport's guides never do")
    return problems + query_problems(given, where) + _stack_set_parameters(model, given, where)


@cache
def _paginated_names(service: str) -> frozenset[str]:
    try:
        return frozenset(_session().get_paginator_model(service)._paginator_config)
    except DataNotFoundError:  # UnknownServiceError is one: a service without paginators
        return frozenset()


def _paginated(model: OperationModel) -> frozenset[str]:
    return _paginated_names(model.service_model.service_name)


def _split(words: list[str], arity: dict[str, int], where: str) -> tuple[dict[str, list[str]], list[str], list[str]]:
    """Flags with their values, the positional arguments, and flags the command does not have."""
    given: dict[str, list[str]] = {}
    positionals: list[str] = []
    problems: list[str] = []
    flag = ""
    for word in words:
        if word.startswith("--"):
            flag = word
            given[flag] = []
            if flag not in arity:
                problems.append(f"{where}: no option {flag}")
            elif arity[flag] == 0:
                flag = ""
        elif flag and (arity.get(flag, 1) == 2 or not given[flag]):
            given[flag].append(word)
        else:
            positionals.append(word)
            flag = ""
    return given, positionals, problems


def _values(shape: Shape, values: list[str]) -> list[str]:
    items = values if shape.type_name == "list" else values[:1]
    target: Any = shape.member if shape.type_name == "list" else shape  # type: ignore[attr-defined]
    problems = []
    for value in items:
        enum = getattr(target, "enum", [])
        if enum and literal(value) and value not in enum:
            problems.append(f"{value} is not one of {enum}")
        if target.type_name == "structure" and literal(value.split("=", 1)[0]):
            problems += _shorthand(target, value)
    return problems


def _shorthand(target: Any, value: str) -> list[str]:
    """Each Key=Value of a structure: the member exists, and takes that value (enum, boolean)."""
    problems = []
    for key, item in shorthand(value).items():
        member = target.members.get(key)
        if member is None:
            problems.append(f"{value}: {target.name} has no member {key}")
        elif literal(item) and getattr(member, "enum", []) and item not in member.enum:
            problems.append(f"{value}: {key}={item} is not one of {member.enum}")
        elif literal(item) and member.type_name == "boolean" and item not in ("true", "false"):
            problems.append(f"{value}: {key} takes true or false")
    return problems


def _stack_set_parameters(model: OperationModel, given: dict[str, list[str]], where: str) -> list[str]:
    """`--template-body file://…` of a repository template: the ParameterKey=… values are checked against it."""
    body = given.get("--template-body", [""])[0]
    if not body.startswith("file://") or "--parameters" not in given:
        return []
    path = body.removeprefix("file://")
    if not (ROOT / path).is_file():
        return [f"{where}: {path} does not exist"]
    parameters = [
        (s.get("ParameterKey", ""), s.get("ParameterValue", "")) for s in map(shorthand, given["--parameters"])
    ]
    return check_cloudformation(path, parameters, where, complete=model.name in ("CreateStack", "CreateStackSet"))


def _check_custom(custom: Custom, words: list[str], where: str, mention: bool) -> list[str]:
    given, positionals, problems = _split(words[3:], custom.options | GLOBAL, where)
    if not mention:
        if len(positionals) != custom.positionals:
            problems.append(f"{where}: takes {custom.positionals} positional argument(s), given {positionals}")
        problems += [f"{where}: {flag} is required" for flag in sorted(custom.required - set(given))]
    for capability in given.get("--capabilities", []):
        if literal(capability) and capability not in DEPLOY_CAPABILITIES:
            problems.append(f"{where}: --capabilities {capability} is not one of {sorted(DEPLOY_CAPABILITIES)}")
    if words[1:3] == ["cloudformation", "deploy"] and given.get("--template-file"):
        overrides = pairs(given.get("--parameter-overrides", []))
        problems += check_cloudformation(given["--template-file"][0], overrides, where, complete=not mention)
    return problems
