"""KEYREPORT_CA_BUNDLE: the combined bundle is private to this process and checked by loading it."""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from pathlib import Path

import certifi
import pytest
import trustme

from keyreport import tls
from keyreport.errors import CertificateProblem
from keyreport.validation import pem_file_problem


@pytest.fixture
def extra_ca(tmp_path: Path) -> Path:
    path = tmp_path / "corporate-ca.pem"
    path.write_bytes(trustme.CA().cert_pem.bytes())
    return path


def old_predictable_name(extra: Path) -> Path:
    """Where the bundle used to go: in the shared temp directory, under a name anyone could compute."""
    combined = Path(certifi.where()).read_bytes() + b"\n" + extra.read_bytes()
    return Path(tempfile.gettempdir()) / f"keyreport-ca-{hashlib.sha256(combined).hexdigest()[:16]}.pem"


def test_without_an_extra_bundle_the_public_roots_are_used() -> None:
    assert tls.trust_bundle(None) == certifi.where()


def test_the_combined_bundle_is_a_private_file_no_one_else_could_have_planted(extra_ca: Path) -> None:
    planted = old_predictable_name(extra_ca)
    planted.write_bytes(trustme.CA().cert_pem.bytes())  # another local user's CA, waiting at the old name
    try:
        path = Path(tls.trust_bundle(str(extra_ca)))
        expected = Path(certifi.where()).read_bytes() + b"\n" + extra_ca.read_bytes()
        assert path != planted and path.read_bytes() == expected
        info = path.stat()
        assert stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == os.getuid()
        assert tls.trust_bundle(str(extra_ca)) == str(path)  # made once per process and bundle
    finally:
        planted.unlink()


def test_a_bundle_openssl_cannot_load_is_refused_naming_the_file_not_its_content(tmp_path: Path) -> None:
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nTUlJQnJva2Vu\n-----END CERTIFICATE-----\n")
    assert pem_file_problem(str(broken)) == "holds a PEM certificate that cannot be loaded (is it complete?)"
    with pytest.raises(CertificateProblem, match="cannot be loaded") as refused:
        tls.trust_bundle(str(broken))
    assert "TUlJQnJva2Vu" not in str(refused.value)
