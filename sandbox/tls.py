"""A throwaway certificate authority, so the emulators serve real TLS that clients verify."""

from __future__ import annotations

import os
import secrets
import ssl
from pathlib import Path

import trustme

# One leaf certificate serves every emulator: they all listen on the loopback address.
SERVER_NAMES = ("127.0.0.1", "localhost")


class LocalCA:
    """A trustme CA whose root is written to ``directory`` as a PEM bundle clients can trust.

    Pass ``ca_bundle_path`` to requests (``verify=``), azure-core (``connection_verify=``) or
    ``KEYREPORT_CA_BUNDLE``; verification stays on everywhere.
    """

    def __init__(self, directory: Path | str) -> None:
        self._ca = trustme.CA(organization_name="keyreport sandbox")
        self._leaf = self._ca.issue_cert(*SERVER_NAMES)
        # One file per CA: two sandboxes side by side (two `make sandbox`) each keep the root they serve with.
        self.ca_bundle_path = Path(directory) / f"keyreport-sandbox-ca-{os.getpid()}-{secrets.token_hex(4)}.pem"
        self.ca_bundle_path.parent.mkdir(parents=True, exist_ok=True)
        self._ca.cert_pem.write_to_path(str(self.ca_bundle_path))

    def remove(self) -> None:
        """Deletes the bundle file (a stopped sandbox's CA is of no use to anyone)."""
        self.ca_bundle_path.unlink(missing_ok=True)

    def server_context(self) -> ssl.SSLContext:
        """Server-side context: TLS 1.2 or newer, certificate valid for 127.0.0.1 and localhost."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._leaf.configure_cert(context)
        return context

    def client_context(self) -> ssl.SSLContext:
        """Client-side context trusting only this CA (for stdlib clients such as urllib)."""
        context = ssl.create_default_context(cafile=str(self.ca_bundle_path))
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context
