"""The .kql files reach the installed package and the Lambda zip: keyreport/kql is a link to queries/."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from keyreport import queries
from scripts import package_lambda

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ROOT / "queries"
# The Sentinel variants of functions (queries/sentinel/) are deployment content, like azure/: the Azure templates
# carry them, the package does not.
PACKAGED = ("*.kql", "functions/*.kql")


def test_the_package_folder_is_the_queries_folder() -> None:
    link = ROOT / "lambda" / "keyreport" / "kql"
    assert link.is_symlink() and link.resolve() == SOURCES.resolve()
    assert {entry.name for entry in queries.library_folder().iterdir() if entry.name.endswith(".kql")} == {
        path.name for path in SOURCES.glob("*.kql")
    }


def test_a_built_package_carries_every_query_byte_for_byte(tmp_path: Path) -> None:
    # What a wheel (and `pip install .`) would hold: setuptools' build_py over a copy of the project.
    project = tmp_path / "project"
    project.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, project / name)
    shutil.copytree(ROOT / "lambda" / "keyreport", project / "lambda" / "keyreport", symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    shutil.copytree(SOURCES, project / "queries")
    built = tmp_path / "built"
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", "from setuptools import setup; setup()", "-q", "build_py",
         "--build-lib", str(built)],
        cwd=project, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    kql = built / "keyreport" / "kql"
    packaged = {path.relative_to(kql).as_posix(): path.read_bytes() for path in kql.glob("**/*.kql")}
    sources = [path for pattern in PACKAGED for path in SOURCES.glob(pattern)]
    assert packaged == {path.relative_to(SOURCES).as_posix(): path.read_bytes() for path in sources}
    assert not (built / "keyreport" / "kql").is_symlink()


def test_the_lambda_zip_takes_every_query_and_function() -> None:
    chosen = {path.name for path in package_lambda.source_files() if path.suffix == ".kql"}
    assert chosen == {path.name for pattern in PACKAGED for path in SOURCES.glob(pattern)}
    assert len(queries.functions()) >= 3
