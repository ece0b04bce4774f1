"""Renders the Microsoft Sentinel solution, azure/sentinel/, in Azure-Sentinel's solution layout.

    Data/Solution_KeyReport.json      what the package holds (Azure-Sentinel's packaging input)
    SolutionMetadata.json, ReleaseNotes.md
    Data Connectors/KeyReport.json    the connector definition
    Parsers/*.yaml                    the workspace functions (queries/functions/*.kql; queries/sentinel/*.kql
                                      in place of the base function of the same name)
    Analytic Rules/*.yaml             one rule per compliance control, and collector-stopped
    Hunting Queries/*.yaml            where keys are used from (AWSCloudTrail), Informational controls
    Workbooks/KeyReport.json, Workbooks/WorkbookMetadata.json
    Package/mainTemplate.json, Package/createUiDefinition.json   everything, one deployment

Sources: the query library (queries/*.kql, queries/functions/) and the compliance map (queries/compliance.json);
nothing is copied by hand. `make render` writes the files; tests/azure/test_sentinel_*.py fail while one is stale.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from keyreport import queries
from scripts import arm
from scripts.sentinel import connector, package, rules, solution, variants, workbook

FOLDER = solution.FOLDER
CONNECTOR_PATH = FOLDER / "Data Connectors" / f"{solution.FILE_NAME}.json"
WORKBOOK_PATH = FOLDER / "Workbooks" / f"{solution.FILE_NAME}.json"
WORKBOOK_METADATA_PATH = FOLDER / "Workbooks" / "WorkbookMetadata.json"
MAIN_TEMPLATE_PATH = FOLDER / "Package" / "mainTemplate.json"
UI_DEFINITION_PATH = FOLDER / "Package" / "createUiDefinition.json"
SOLUTION_DATA_PATH = FOLDER / "Data" / f"Solution_{solution.FILE_NAME}.json"
METADATA_PATH = FOLDER / "SolutionMetadata.json"
RELEASE_NOTES_PATH = FOLDER / "ReleaseNotes.md"
RULES_DIR = FOLDER / "Analytic Rules"
HUNTING_DIR = FOLDER / "Hunting Queries"
PARSERS_DIR = FOLDER / "Parsers"


class _LiteralDumper(yaml.SafeDumper):
    """Multi-line strings (queries) as `|` blocks, as Azure-Sentinel's own templates read."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_LiteralDumper.add_representer(str, _string)


def yaml_text(document: dict[str, Any]) -> str:
    header = f"# {arm.generated_by(__file__)}\n"
    return header + yaml.dump(document, Dumper=_LiteralDumper, sort_keys=False, width=1000, allow_unicode=True)


def parser(function: queries.Function) -> dict[str, Any]:
    """A workspace function as Azure-Sentinel's solution parser YAML."""
    return {
        "id": solution.stable_id(f"parser:{function.id}"),
        "Function": {"Title": function.title, "Version": solution.VERSION, "LastUpdated": solution.RELEASES[0][1]},
        "Category": "Microsoft Sentinel Parser",
        "FunctionName": function.id,
        "FunctionAlias": function.id,
        "FunctionQuery": function.text,
    }


def rule_paths() -> dict[Path, rules.Content]:
    return {RULES_DIR / f"{rule.name}.yaml": rule for rule in rules.analytic_rules()}


def hunting_paths() -> dict[Path, rules.Content]:
    return {HUNTING_DIR / f"{hunt.name}.yaml": hunt for hunt in rules.hunting_queries()}


def parser_paths() -> dict[Path, queries.Function]:
    return {PARSERS_DIR / f"{function.id}.yaml": function for function in variants.sentinel_functions().values()}


def solution_data() -> dict[str, Any]:
    """Data/Solution_*.json: the packaging input listing every file of the solution."""
    return {
        "Name": solution.NAME,
        "Author": f"{solution.PUBLISHER}",
        "Logo": "",
        "Description": package.solution_description(),
        "Workbooks": [solution.relative(WORKBOOK_PATH)],
        "WorkbookBladeDescription": workbook.metadata(solution.relative(WORKBOOK_PATH))["description"],
        "Data Connectors": [solution.relative(CONNECTOR_PATH)],
        "Parsers": [solution.relative(path) for path in parser_paths()],
        "Analytic Rules": [solution.relative(path) for path in rule_paths()],
        "Hunting Queries": [solution.relative(path) for path in hunting_paths()],
        "BasePath": "azure/sentinel",
        "Version": solution.VERSION,
        "Metadata": solution.relative(METADATA_PATH),
        "TemplateSpec": True,
        "Is1PConnector": False,
    }


def rendered() -> dict[Path, str]:
    """Every file of the solution, and its content."""
    files: dict[Path, str] = {
        SOLUTION_DATA_PATH: arm.json_text(solution_data()),
        METADATA_PATH: arm.json_text(solution.metadata()),
        RELEASE_NOTES_PATH: solution.release_notes(),
        CONNECTOR_PATH: arm.json_text(connector.definition()),
        WORKBOOK_PATH: arm.json_text(workbook.workbook()),
        WORKBOOK_METADATA_PATH: arm.json_text([workbook.metadata(solution.relative(WORKBOOK_PATH))]),
        MAIN_TEMPLATE_PATH: arm.json_text(package.main_template()),
        UI_DEFINITION_PATH: arm.json_text(package.create_ui_definition()),
    }
    files.update({path: yaml_text(parser(function)) for path, function in parser_paths().items()})
    files.update({path: yaml_text(rules.rule_template(rule)) for path, rule in rule_paths().items()})
    files.update({path: yaml_text(rules.hunting_template(hunt)) for path, hunt in hunting_paths().items()})
    return files


def stale() -> list[Path]:
    """Files in the solution folder that nothing renders any more (a rule whose check left the map)."""
    return sorted(path for path in FOLDER.rglob("*") if path.is_file() and path not in rendered())
