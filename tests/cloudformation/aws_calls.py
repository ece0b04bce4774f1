"""Which AWS actions keyreport's code calls, read from its source with botocore's own service models.

Every method call whose name is an operation of one of the services keyreport makes clients for
(`iam.list_access_keys(...)`, `get_paginator("list_users")`) counts as a call of that operation; the
IAM action is the operation's name, except where IAM names the permission differently.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import botocore.session
from botocore import xform_name

PACKAGE = Path(__file__).resolve().parents[2] / "lambda" / "keyreport"

# The AWS services keyreport makes clients for. A client for any other service fails the test that uses
# this module, so that the template is looked at again.
SERVICES = ("iam", "sts", "secretsmanager", "kms", "s3", "sqs", "organizations", "cloudtrail", "events", "lambda")

# Operations whose IAM permission has another name (Service Authorization Reference).
PERMISSION_OF = {
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
    "s3:ListObjectsV2": "s3:ListBucket",
    "s3:HeadObject": "s3:GetObject",
    "s3:HeadBucket": "s3:ListBucket",
}


@dataclass(frozen=True)
class Call:
    action: str
    where: str  # path:line, for the failure message


def _operations() -> dict[str, list[str]]:
    """snake_case method name -> the actions (service:Operation) it may be, over SERVICES."""
    session = botocore.session.get_session()
    by_method: dict[str, list[str]] = defaultdict(list)
    for service in SERVICES:
        model = session.get_service_model(service)
        prefix = model.signing_name
        for operation in model.operation_names:
            by_method[xform_name(operation)].append(f"{prefix}:{operation}")
    return by_method


def client_services(package: Path = PACKAGE) -> dict[str, str]:
    """Services named in `client("x")` / `_client("x")` calls, with where."""
    found: dict[str, str] = {}
    for path, tree in _modules(package):
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and _name(node.func) in ("client", "_client", "in_region")
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                found.setdefault(node.args[0].value, f"{path.relative_to(package.parents[1])}:{node.lineno}")
    return found


def called(package: Path = PACKAGE) -> list[Call]:
    operations = _operations()
    calls: list[Call] = []
    for path, tree in _modules(package):
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            method = node.func.attr
            if method == "get_paginator" and node.args and isinstance(node.args[0], ast.Constant):
                method = str(node.args[0].value)
            where = f"{path.relative_to(package.parents[1])}:{node.lineno}"
            for action in operations.get(method, []):
                calls.append(Call(PERMISSION_OF.get(action, action), where))
    return calls


def _modules(package: Path) -> list[tuple[Path, ast.Module]]:
    return [(path, ast.parse(path.read_text(), str(path))) for path in sorted(package.rglob("*.py"))]


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""
