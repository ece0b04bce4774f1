"""The package's structure holds: what a module imports is what its layer may know about."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "lambda" / "keyreport"


def loaded_after_import(module: str) -> set[str]:
    """Top-level module names loaded by importing `module` in a fresh interpreter."""
    code = f"import sys, {module}; print(' '.join(sorted({{name.split('.')[0] for name in sys.modules}})))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(done.stdout.split())


@pytest.mark.parametrize("module", ["keyreport.pipeline", "keyreport.handler", "keyreport.settings", "keyreport.sinks"])
def test_the_core_loads_no_azure_sdk(module: str) -> None:
    assert "azure" not in loaded_after_import(module)


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_the_cli_imports_nothing_from_the_handler() -> None:
    for path in (PACKAGE / "cli").glob("*.py"):
        assert not {name for name in imports_of(path) if name.startswith("keyreport.handler")}, path


def test_only_the_wiring_builds_the_functions_aws_clients() -> None:
    builders = {
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if "AwsClients(" in path.read_text() and path.name != "clients.py"
    }
    # kms-certificate and member accounts are the two places that need clients outside a configured run.
    assert builders <= {"wiring.py", "handler.py", "cli/kms_certificate.py"}


def test_every_exception_class_lives_in_errors() -> None:
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(
                isinstance(base, ast.Name) and (base.id.endswith(("Error", "Exception")) or base.id == "Exception")
                for base in node.bases
            ):
                assert path.name == "errors.py", f"{path}: {node.name}"


def test_every_module_says_what_it_is_for() -> None:
    for path in PACKAGE.rglob("*.py"):
        assert ast.get_docstring(ast.parse(path.read_text())), path
