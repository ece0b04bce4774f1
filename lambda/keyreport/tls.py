"""TLS trust: the public roots plus, optionally, a corporate CA. Verification is never turned off."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import certifi


def trust_bundle(extra_ca_bundle: str | None) -> str:
    """Path of a PEM bundle for requests / azure-core: certifi's roots, plus the extra CA when given.

    An extra bundle *adds* trust (a TLS-inspecting proxy's CA) rather than replacing the public roots,
    so Entra, Key Vault and Log Analytics stay reachable directly as well.
    """
    if not extra_ca_bundle:
        return certifi.where()
    extra = Path(extra_ca_bundle).read_bytes()
    combined = Path(certifi.where()).read_bytes() + b"\n" + extra
    name = hashlib.sha256(combined).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"keyreport-ca-{name}.pem"
    if not path.exists():
        temporary = path.with_suffix(".tmp")
        temporary.write_bytes(combined)
        temporary.replace(path)
    return str(path)
