"""Build the Lambda's deployment package, byte for byte reproducible: `make package`.

    python scripts/package_lambda.py [--output build/keyreport-lambda.zip] [--python /path/to/python3.13]

What goes in: the wheels of requirements.lock for the function's platform (CPython 3.13 on arm64, Amazon
Linux 2023), never built locally, less what the configured sink's code never imports (`--sink`: the other
sink's SDK, the CLI's extras) and botocore's models of services the function never calls; the `keyreport`
package; `.pyc` files compiled by a CPython 3.13 for the
function's paths (/var/task), hash-based so that they never depend on file times. What stays out: tests,
caches, console scripts, type stubs and pip's install records. Every zip entry gets the same timestamp and
permissions and the entries are sorted, so two builds of the same sources give the same SHA-256, which is
also what `make deploy` names the S3 object after (an unchanged build does not update the function).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE_PACKAGE = ROOT / "lambda" / "keyreport"
LOCK_FILE = ROOT / "requirements.lock"
PYPROJECT = ROOT / "pyproject.toml"
DEFAULT_OUTPUT = ROOT / "build" / "keyreport-lambda.zip"

# Keep in step with cloudformation/template.yaml (Runtime, Architectures); a test checks both.
RUNTIME_PYTHON = (3, 13)
# The python3.13 runtime is Amazon Linux 2023 (glibc 2.34) on arm64: any manylinux wheel up to 2_34 runs.
PLATFORMS = ("manylinux_2_34_aarch64", "manylinux_2_28_aarch64", "manylinux_2_17_aarch64", "manylinux2014_aarch64")
TASK_ROOT = "/var/task"  # where Lambda unpacks the zip: tracebacks and co_filename name these paths

ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can say
FILE_MODE = 0o100644  # regular file, rw-r--r-- (shared objects are mapped, never executed directly)

# Budgets (README "Lambda package"): Lambda takes 250 MB unzipped; these leave room for growth and layers.
MAX_ZIPPED_BYTES = 40 * 1024 * 1024
MAX_UNZIPPED_BYTES = 150 * 1024 * 1024

# What each package carries: the function imports only its configured sink's SDK, and never the CLI's extras
# (`keyreport query`'s azure-monitor-query, the progress bars' tqdm). A package for one sink leaves the other's
# SDK out (`make package SINK=...`); `all` carries both, for a function whose sink may be switched in place.
CLI_ONLY = ("azure-monitor-query", "tqdm")
SINK_ONLY = {"logs_ingestion": "azure-monitor-ingestion", "data_collector": "azure-keyvault-secrets"}
SINKS = (*SINK_ONLY, "stdout", "all")
DEFAULT_SINK = "logs_ingestion"  # the stack's default Sink


# The AWS services the function makes clients for (tests/cloudformation/aws_calls.py reads them from the source
# and a test holds this list to it): botocore's models of the other ~400 services are more than half the zip.
AWS_SERVICES = ("cloudtrail", "events", "iam", "kms", "lambda", "organizations", "s3", "secretsmanager", "sqs", "sts")


def excluded(sink: str) -> set[str]:
    """The locked distributions a package for `sink` leaves out (normalised names)."""
    others = {dist for name, dist in SINK_ONLY.items() if name != sink} if sink != "all" else set()
    return {*CLI_ONLY, *others}


PRUNED_DIRECTORIES = {"__pycache__", "tests", "bin"}
PRUNED_SUFFIXES = {".pyi", ".pyc", ".pyo"}
PRUNED_DIST_INFO_FILES = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}


class PackageError(Exception):
    """A build that cannot produce a correct package; the message says what to do."""


@dataclass(frozen=True)
class Report:
    path: str
    sha256: str
    zipped_bytes: int
    unzipped_bytes: int
    files: int
    compiled: bool
    python: str
    sink: str = DEFAULT_SINK

    def lines(self) -> list[str]:
        mib = 1024 * 1024
        return [
            f"package   {self.path} (for Sink={self.sink})",
            f"sha256    {self.sha256}",
            f"size      {self.zipped_bytes / mib:.1f} MiB zipped (budget {MAX_ZIPPED_BYTES / mib:.0f}), "
            f"{self.unzipped_bytes / mib:.1f} MiB unzipped (budget {MAX_UNZIPPED_BYTES / mib:.0f}), {self.files} files",
            f"bytecode  {'compiled by ' + self.python if self.compiled else 'none (sources only)'}",
        ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--python", help="a CPython 3.13 interpreter to compile .pyc files with (default: found)")
    parser.add_argument(
        "--no-compile",
        action="store_true",
        help="ship sources only (when no CPython 3.13 is at hand; every cold start then compiles what it imports)",
    )
    parser.add_argument(
        "--sink",
        choices=SINKS,
        default=DEFAULT_SINK,
        help="the Sink the function is deployed with: only its SDK goes in (all: both sinks' SDKs)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    try:
        python = None if args.no_compile else find_target_python(args.python)
        report = build(args.output.resolve(), python, args.sink)
    except PackageError as error:
        print(f"make package: {error}", file=sys.stderr)
        return 1
    print(json.dumps(asdict(report)) if args.json else "\n".join(report.lines()))
    return 0


def build(output: Path, python: str | None, sink: str = DEFAULT_SINK) -> Report:
    with tempfile.TemporaryDirectory(prefix="keyreport-package-") as scratch:
        staging = Path(scratch) / "task"
        install_wheels(staging, locked_requirements(Path(scratch) / "requirements.txt", excluded(sink)))
        copy_source_package(staging / "keyreport")
        prune(staging)
        prune_service_models(staging / "botocore" / "data")
        if python is not None:
            compile_bytecode(staging, python)
        unzipped = sum(path.stat().st_size for path in files_in(staging))
        output.parent.mkdir(parents=True, exist_ok=True)
        partial = output.with_suffix(".zip.partial")
        count = write_zip(staging, partial)
        partial.replace(output)
    zipped = output.stat().st_size
    if zipped > MAX_ZIPPED_BYTES or unzipped > MAX_UNZIPPED_BYTES:
        raise PackageError(
            f"{output} is over budget: {zipped} bytes zipped (at most {MAX_ZIPPED_BYTES}), {unzipped} unzipped "
            f"(at most {MAX_UNZIPPED_BYTES}); find the new weight with `unzip -l {output} | sort -n`"
        )
    return Report(
        path=str(output),
        sha256=hashlib.sha256(output.read_bytes()).hexdigest(),
        zipped_bytes=zipped,
        unzipped_bytes=unzipped,
        files=count,
        compiled=python is not None,
        python=python or "",
        sink=sink,
    )


def locked_requirements(path: Path, leave_out: set[str]) -> Path:
    """requirements.lock without the distributions named (each with its hashes): what pip installs."""
    kept, skipping = [], False
    for line in LOCK_FILE.read_text().splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            name = line.split("==", 1)[0].strip().lower().replace("_", "-")
            skipping = name in leave_out
        if not skipping:
            kept.append(line)
    path.write_text("\n".join(kept) + "\n")
    return path


def install_wheels(target: Path, requirements: Path = LOCK_FILE) -> None:
    """The locked runtime packages as the function's platform needs them: binary wheels only, hashes checked."""
    command = [
        sys.executable, "-m", "pip", "install",
        "--quiet", "--disable-pip-version-check", "--no-input",
        "--require-hashes", "--no-deps", "--only-binary=:all:", "--no-compile",
        "--implementation", "cp",
        "--python-version", ".".join(map(str, RUNTIME_PYTHON)),
        *(f"--platform={platform}" for platform in PLATFORMS),
        "--target", str(target),
        "-r", str(requirements),
    ]  # fmt: skip
    # The command is built from constants and this repository's paths, never from outside input.
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        detail = "\n".join(line for line in result.stderr.splitlines() if "ignored: it is neither" not in line)
        raise PackageError(f"pip could not install {LOCK_FILE.name} for the Lambda platform:\n{detail.strip()}")


def copy_source_package(target: Path) -> None:
    """What the project's own wheel would carry: every module, plus the package data pyproject.toml declares."""
    for source in source_files():
        destination = target / source.relative_to(SOURCE_PACKAGE)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, destination)


def source_files() -> list[Path]:
    modules = [
        Path(directory) / name
        for directory, subdirectories, names in os.walk(SOURCE_PACKAGE)
        for name in names
        if name.endswith(".py") and "__pycache__" not in Path(directory).parts
    ]
    setuptools = tomllib.loads(PYPROJECT.read_text()).get("tool", {}).get("setuptools", {})
    patterns = setuptools.get("package-data", {}).get(SOURCE_PACKAGE.name, [])
    data = [path for pattern in patterns for path in SOURCE_PACKAGE.glob(pattern) if path.is_file()]
    return sorted(set(modules) | set(data))


def prune(staging: Path) -> None:
    """Remove what the function never loads; pip's records would also name files that are gone."""
    for directory in sorted((p for p in staging.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        if directory.name in PRUNED_DIRECTORIES:
            shutil.rmtree(directory)
    for path in list(files_in(staging)):
        in_dist_info = path.parent.name.endswith(".dist-info")
        if path.suffix in PRUNED_SUFFIXES or (in_dist_info and path.name in PRUNED_DIST_INFO_FILES):
            path.unlink()


def prune_service_models(data: Path) -> None:
    """botocore's models of the services the function never calls; the shared files (endpoints, partitions,
    retry and default configuration) stay."""
    if not data.is_dir():
        raise PackageError(f"{data} is missing: the locked botocore does not look as this build expects")
    for service in data.iterdir():
        if service.is_dir() and service.name not in AWS_SERVICES:
            shutil.rmtree(service)
    missing = [name for name in AWS_SERVICES if not (data / name).is_dir()]
    if missing:
        raise PackageError(f"botocore has no model of {missing}: check AWS_SERVICES against the locked botocore")


def compile_bytecode(staging: Path, python: str) -> None:
    """`.pyc` for the runtime's Python, as Lambda will find them under /var/task.

    Unchecked hash-based pycs never look at the source's mtime (the zip has none worth trusting, and
    /var/task is read-only, so Lambda could not rewrite them anyway); a fixed hash seed keeps the
    marshalled frozensets in a stable order.
    """
    command = [
        python, "-I", "-m", "compileall", "-q", "-j", "0",
        "--invalidation-mode", "unchecked-hash",
        "-s", str(staging), "-p", TASK_ROOT,
        str(staging),
    ]  # fmt: skip
    environment = {"PATH": os.environ.get("PATH", ""), "PYTHONHASHSEED": "0"}
    result = subprocess.run(command, capture_output=True, text=True, check=False, env=environment)  # noqa: S603
    if result.returncode != 0:
        raise PackageError(f"{python} could not compile the package:\n{(result.stdout + result.stderr).strip()}")


def write_zip(staging: Path, output: Path) -> int:
    count = 0
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in sorted(files_in(staging), key=lambda p: p.relative_to(staging).as_posix()):
            entry = zipfile.ZipInfo(path.relative_to(staging).as_posix(), date_time=ZIP_DATE_TIME)
            entry.external_attr = FILE_MODE << 16
            entry.create_system = 3  # Unix, so the mode above is honoured
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, path.read_bytes())
            count += 1
    return count


def files_in(directory: Path) -> Iterator[Path]:
    return (path for path in directory.rglob("*") if path.is_file())


def find_target_python(explicit: str | None) -> str:
    """A CPython of the runtime's version; .pyc files from any other version would be ignored by Lambda."""
    candidates = [explicit] if explicit else list(_default_candidates())
    for candidate in candidates:
        if candidate and _is_runtime_python(candidate):
            return candidate
    wanted = "python{}.{}".format(*RUNTIME_PYTHON)
    tried = ", ".join(c for c in candidates if c) or "none found"
    raise PackageError(
        f"no CPython {'.'.join(map(str, RUNTIME_PYTHON))} to compile the function's bytecode (tried: {tried}). "
        f"Install one (e.g. `pyenv install 3.13`) and run `make package LAMBDA_PYTHON=/path/to/{wanted}`, "
        "or `make package NO_COMPILE=1` to ship sources only (each cold start then compiles what it imports)."
    )


def _default_candidates() -> Iterator[str]:
    wanted = "python{}.{}".format(*RUNTIME_PYTHON)
    on_path = shutil.which(wanted)
    if on_path:
        yield on_path
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    yield from (str(p) for p in sorted(pyenv_root.glob(f"versions/{wanted[6:]}*/bin/{wanted}"), reverse=True))
    yield from (f"{prefix}/bin/{wanted}" for prefix in ("/usr/local", "/usr"))


def _is_runtime_python(candidate: str) -> bool:
    probe = "import sys; print(sys.implementation.name, *sys.version_info[:2])"
    try:
        # A candidate interpreter the operator named or that sits where Pythons are installed.
        result = subprocess.run(  # noqa: S603
            [candidate, "-I", "-c", probe], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError:
        return False
    return result.returncode == 0 and result.stdout.split() == ["cpython", *map(str, RUNTIME_PYTHON)]


if __name__ == "__main__":
    sys.exit(main())
