"""Checks over the source tree itself: promises in the README that code review alone would not keep."""

from __future__ import annotations

import re
from pathlib import Path

from keyreport.settings import VARIABLES

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "lambda" / "keyreport"
TLS_OFF = re.compile(
    r"verify\s*=\s*False|CERT_NONE|check_hostname\s*=\s*False|connection_verify\s*=\s*False"
    r"|_create_unverified_context|PYTHONHTTPSVERIFY"
)


def test_product_code_never_turns_tls_verification_off() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in PACKAGE.rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if TLS_OFF.search(line)
    ]
    assert offenders == []


def test_the_tls_check_would_catch_an_offender() -> None:
    assert TLS_OFF.search("session.post(url, verify=False)")
    assert TLS_OFF.search("SecretClient(url, cred, connection_verify = False)")


def test_readme_configuration_table_documents_every_variable() -> None:
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"^\| `((?:KEYREPORT|AZURE)_[A-Z_]+)` \|", readme, flags=re.MULTILINE))
    assert documented == set(VARIABLES)


def test_only_settings_reads_the_environment() -> None:
    readers = [
        str(path.relative_to(ROOT))
        for path in PACKAGE.rglob("*.py")
        if re.search(r"os\.environ|os\.getenv", path.read_text()) and path.name != "settings.py"
    ]
    assert readers == []
