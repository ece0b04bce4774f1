"""`make package`: the zip Lambda runs, built twice (at once) to the same bytes, and what is inside it.

One test on purpose: the two builds take most of its time, and pytest-xdist would build them again on
every worker that ran a test sharing them.
"""

from __future__ import annotations

import json
import re
import struct
import subprocess
import sys
import zipfile
from pathlib import Path, PurePosixPath

import pytest

from scripts import package_lambda

SCRIPT = package_lambda.ROOT / "scripts" / "package_lambda.py"
EM_AARCH64 = 183  # ELF e_machine of arm64
PYC_UNCHECKED_HASH = 0b01  # PEP 552 flags: hash-based, source not checked


def build_twice(directory: Path, python: str | None) -> list[dict[str, object]]:
    """The default sink's package twice, and the other sink's once, all at once."""
    option = ["--python", python] if python else ["--no-compile"]
    builds = [
        subprocess.Popen(
            [
                sys.executable,
                str(SCRIPT),
                "--output",
                str(directory / f"{name}.zip"),
                "--json",
                "--sink",
                sink,
                *option,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, sink in (("first", "logs_ingestion"), ("second", "logs_ingestion"), ("other", "data_collector"))
    ]
    reports = []
    for build in builds:
        out, err = build.communicate(timeout=600)
        assert build.returncode == 0, err
        reports.append(json.loads(out))
    return reports


def locked_distributions() -> dict[str, str]:
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==([^ \\\n]+)", package_lambda.LOCK_FILE.read_text(), flags=re.MULTILINE)
    return {re.sub(r"[-_.]+", "_", name).lower(): version for name, version in pins}


def test_the_package_is_reproducible_lean_and_built_for_the_lambda_runtime(tmp_path: Path) -> None:
    try:
        python: str | None = package_lambda.find_target_python(None)
    except package_lambda.PackageError:
        python = None
    first, second, other = build_twice(tmp_path, python)

    assert first["sha256"] == second["sha256"], "two builds of the same sources must be byte for byte equal"
    assert_the_documents_give_the_built_figures([first, other])
    with zipfile.ZipFile(str(other["path"])) as archive:
        names = archive.namelist()
        assert any(name.startswith("azure/keyvault/") for name in names)
        assert not any(name.startswith("azure/monitor/") for name in names)
    assert int(first["zipped_bytes"]) <= package_lambda.MAX_ZIPPED_BYTES
    assert int(first["unzipped_bytes"]) <= package_lambda.MAX_UNZIPPED_BYTES

    with zipfile.ZipFile(str(first["path"])) as archive:
        entries = archive.infolist()
        names = [entry.filename for entry in entries]
        assert names == sorted(names)
        assert {entry.date_time for entry in entries} == {package_lambda.ZIP_DATE_TIME}
        assert {entry.external_attr >> 16 for entry in entries} == {package_lambda.FILE_MODE}

        # The product's own code, exactly as in the repository.
        for source in package_lambda.source_files():
            name = source.relative_to(package_lambda.SOURCE_PACKAGE.parent).as_posix()
            assert archive.read(name) == source.read_bytes(), name

        # Every locked distribution, at its locked version; nothing pip would only need to uninstall.
        installed = {
            re.sub(r"[-_.]+", "_", m.group(1)).lower(): m.group(2)
            for name in names
            if (m := re.fullmatch(r"([^/]+)-([^-/]+)\.dist-info/METADATA", name))
        }
        left_out = {re.sub(r"[-_.]+", "_", name) for name in package_lambda.excluded("logs_ingestion")}
        assert left_out == {"azure_monitor_query", "tqdm", "azure_keyvault_secrets"}
        assert installed == {name: v for name, v in locked_distributions().items() if name not in left_out}
        services = {PurePosixPath(n).parts[2] for n in names if n.startswith("botocore/data/") and n.count("/") > 2}
        assert services == set(package_lambda.AWS_SERVICES)
        paths = [PurePosixPath(name) for name in names]
        assert not [p for p in paths if {"tests", "bin"} & set(p.parts[:-1])]
        assert not [p for p in paths if p.suffix == ".pyi" or p.name in package_lambda.PRUNED_DIST_INFO_FILES]

        # Native code for arm64 only.
        shared_objects = [name for name in names if name.endswith(".so") or ".so." in name]
        assert shared_objects, "cryptography and cffi ship compiled extensions"
        for name in shared_objects:
            header = archive.read(name)[:20]
            assert header[:4] == b"\x7fELF" and struct.unpack("<H", header[18:20])[0] == EM_AARCH64, name

        modules = [p for p in paths if p.suffix == ".py" and not p.parts[0].endswith(".dist-info")]
        compiled = {p for p in paths if p.suffix == ".pyc"}
        if python is None:
            assert not compiled
            pytest.skip("bytecode not checked: no CPython 3.13 here (the package was built with --no-compile)")

        tag = "cpython-{}{}".format(*package_lambda.RUNTIME_PYTHON)
        assert not [p for p in compiled if not p.name.endswith(f".{tag}.pyc")]
        missing = [m for m in modules if m.parent / "__pycache__" / f"{m.stem}.{tag}.pyc" not in compiled]
        assert not missing, f"modules without bytecode: {missing[:5]}"

        handler = archive.read(f"keyreport/__pycache__/handler.{tag}.pyc")
    magic, flags = handler[:4], struct.unpack("<I", handler[4:8])[0]
    assert flags == PYC_UNCHECKED_HASH
    probe = (
        "import importlib.util, marshal, sys; data = sys.stdin.buffer.read(); "
        "print(data[:4] == importlib.util.MAGIC_NUMBER, marshal.loads(data[16:]).co_filename)"
    )
    result = subprocess.run([python, "-I", "-c", probe], input=handler, capture_output=True, check=True)
    assert result.stdout.decode().split() == ["True", "/var/task/keyreport/handler.py"], magic


# The package tables of the README and of docs/deployment.md: one row per sink's package, in whole MiB and
# hundreds of files (finer figures would change with every module anyone adds).
_ROW = re.compile(r"^\| `(\w+)`[^|]*\| (\d+) MiB \| (\d+) MiB, about ([\d,]+) files \|", re.MULTILINE)


def assert_the_documents_give_the_built_figures(reports: list[dict[str, object]]) -> None:
    mib = 1024 * 1024
    built = {
        str(report["sink"]): (
            str(round(int(str(report["zipped_bytes"])) / mib)),
            str(round(int(str(report["unzipped_bytes"])) / mib)),
            f"{round(int(str(report['files'])), -2):,}",
        )
        for report in reports
    }
    for document in ("README.md", "docs/deployment.md"):
        rows = {sink: tuple(figures) for sink, *figures in _ROW.findall((package_lambda.ROOT / document).read_text())}
        assert rows == built, f"{document}'s package figures are not the build's: {rows} != {built}"


def test_the_package_carries_the_models_of_exactly_the_services_the_code_calls() -> None:
    from tests.cloudformation.aws_calls import client_services

    assert set(package_lambda.AWS_SERVICES) == set(client_services())
