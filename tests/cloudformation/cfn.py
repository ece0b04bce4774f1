"""The CloudFormation templates as data: YAML with the short intrinsic tags, conditions evaluated for given parameters.

A small, strict reading of the parts of CloudFormation these templates use, so that tests can ask "in
secret mode, which policies exist and what do they grant?" without a cloud.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "cloudformation" / "template.yaml"
MEMBER_ROLE = ROOT / "cloudformation" / "member-role.yaml"
FORWARDER = ROOT / "cloudformation" / "iam-events-forwarder.yaml"

NO_VALUE = object()  # what AWS::NoValue resolves to: the property or list item disappears


class _Loader(yaml.SafeLoader):
    """`!Ref X` -> {"Ref": X}, `!GetAtt A.B` -> {"Fn::GetAtt": [A, B]}, `!Condition C` -> {"Condition": C}, ..."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "Condition":
        return {"Condition": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_Loader.add_multi_constructor("!", _intrinsic)


def load(path: Path = TEMPLATE) -> dict[str, Any]:
    document: dict[str, Any] = yaml.load(path.read_text(), Loader=_Loader)
    return document


def defaults(template: dict[str, Any]) -> dict[str, str]:
    return {name: str(spec["Default"]) for name, spec in template["Parameters"].items() if "Default" in spec}


@dataclass
class Scenario:
    """One set of parameter values: which conditions hold, which resources exist, what a value resolves to."""

    template: dict[str, Any]
    parameters: dict[str, str]

    @classmethod
    def of(cls, template: dict[str, Any], **overrides: str) -> Scenario:
        return cls(template, {**defaults(template), **overrides})

    def condition(self, name: str) -> bool:
        return self._truth(self.template["Conditions"][name])

    def _truth(self, expression: Any) -> bool:
        (operator, operand), *rest = expression.items()
        assert not rest, expression
        if operator == "Condition":
            return self.condition(operand)
        if operator == "Fn::Equals":
            left, right = (self.resolve(item) for item in operand)
            return str(left) == str(right)
        if operator == "Fn::Not":
            return not self._truth(operand[0])
        if operator == "Fn::And":
            return all(self._truth(item) for item in operand)
        if operator == "Fn::Or":
            return any(self._truth(item) for item in operand)
        raise AssertionError(f"condition function not understood here: {operator}")

    def resources(self) -> dict[str, dict[str, Any]]:
        """The resources this scenario creates, keyed by logical id."""
        return {
            name: resource
            for name, resource in self.template["Resources"].items()
            if "Condition" not in resource or self.condition(resource["Condition"])
        }

    def resolve(self, value: Any) -> Any:
        """Fn::If chosen, AWS::NoValue dropped, parameter Refs replaced by their values; other functions kept."""
        if isinstance(value, list):
            items = [self.resolve(item) for item in value]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Fn::If"}:
            condition, when_true, when_false = value["Fn::If"]
            return self.resolve(when_true if self.condition(condition) else when_false)
        if set(value) == {"Ref"}:
            name = value["Ref"]
            if name == "AWS::NoValue":
                return NO_VALUE
            if name in self.parameters:
                return self.parameters[name]
            return value
        if set(value) == {"Fn::FindInMap"}:
            mapping, key, attribute = (self.resolve(part) for part in value["Fn::FindInMap"])
            return self.template["Mappings"][mapping][key][attribute]
        items = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in items.items() if item is not NO_VALUE}

    def role_statements(self, role: str) -> list[dict[str, Any]]:
        """Every policy statement the role gets in this scenario: its inline policies and AWS::IAM::Policy ones."""
        resources = self.resources()
        documents = [policy["PolicyDocument"] for policy in resources[role]["Properties"].get("Policies", [])]
        documents += [
            resource["Properties"]["PolicyDocument"]
            for resource in resources.values()
            if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role} in resource["Properties"]["Roles"]
        ]
        return [statement for document in documents for statement in self.resolve(document)["Statement"]]

    def granted(self, role: str) -> set[str]:
        return {action for statement in self.role_statements(role) for action in as_list(statement["Action"])}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def strings(value: Any) -> list[str]:
    """Every string anywhere inside a template value (keys included), for textual checks."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for key, item in value.items() for text in (key, *strings(item))]
    if isinstance(value, list):
        return [text for item in value for text in strings(item)]
    return []
