"""TLS trust: the public roots plus, optionally, a corporate CA. Verification is never turned off."""

from __future__ import annotations

import atexit
import contextlib
import os
import tempfile
import threading
from pathlib import Path

import certifi

from keyreport.errors import CertificateProblem
from keyreport.validation import pem_loads

_BUNDLES: dict[bytes, str] = {}  # combined bundle -> its private file, one per process
_LOCK = threading.Lock()


def trust_bundle(extra_ca_bundle: str | None) -> str:
    """Path of a PEM bundle for requests / azure-core: certifi's roots, plus the extra CA when given.

    An extra bundle *adds* trust (a TLS-inspecting proxy's CA) rather than replacing the public roots,
    so Entra, Key Vault and Log Analytics stay reachable directly as well. The combined bundle is written
    once per process to a file only this user can read, under a name no one can guess (never a shared,
    predictable name another local user could plant a CA under first), and removed at exit.
    """
    if not extra_ca_bundle:
        return certifi.where()
    extra = Path(extra_ca_bundle).read_bytes()
    if not pem_loads(extra):
        raise CertificateProblem(
            f"KEYREPORT_CA_BUNDLE {extra_ca_bundle} holds a PEM certificate that cannot be loaded (is it complete?)"
        )
    combined = Path(certifi.where()).read_bytes() + b"\n" + extra
    with _LOCK:
        if combined not in _BUNDLES:
            _BUNDLES[combined] = _private_file(combined)
        return _BUNDLES[combined]


def _private_file(content: bytes) -> str:
    descriptor, path = tempfile.mkstemp(prefix="keyreport-ca-", suffix=".pem")  # O_EXCL, mode 0600
    with os.fdopen(descriptor, "wb") as file:
        file.write(content)
    atexit.register(_remove, path)
    return path


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
