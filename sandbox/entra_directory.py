"""The Entra emulator's directory: tenants, their app registrations and each app's credentials."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"

PublicKey = RSAPublicKey | EllipticCurvePublicKey


@dataclass(frozen=True)
class FederatedCredential:
    issuer: str
    subject: str
    audience: str
    key: PublicKey


@dataclass(frozen=True)
class TrustedSubject:
    """Subject name / issuer trust: any certificate with this subject that chains to ``issuer``."""

    subject: x509.Name
    issuer: x509.Certificate


@dataclass
class App:
    tenant_id: str
    client_id: str
    object_id: str
    secrets: list[str] = field(default_factory=list)
    certificates: list[x509.Certificate] = field(default_factory=list)
    federated: list[FederatedCredential] = field(default_factory=list)
    trusted_subjects: list[TrustedSubject] = field(default_factory=list)


def object_id(tenant_id: str, client_id: str) -> str:
    """A stable service-principal object id per app and tenant."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"sp:{tenant_id}:{client_id}"))


class Directory:
    """Apps per tenant, registered in code; a tenant exists once it has an app. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._apps: dict[str, dict[str, App]] = {}

    # -- registration ------------------------------------------------------------------------------
    def register_app(self, tenant_id: str, client_id: str, client_secret: str | None = None) -> App:
        """Register (or return) an app in a tenant; the tenant exists once it has an app."""
        with self._lock:
            apps = self._apps.setdefault(tenant_id, {})
            app = apps.get(client_id)
            if app is None:
                app = apps[client_id] = App(tenant_id, client_id, object_id(tenant_id, client_id))
            if client_secret is not None and client_secret not in app.secrets:
                app.secrets.append(client_secret)
            return app

    def remove_secret(self, tenant_id: str, client_id: str, client_secret: str) -> None:
        with self._lock:
            self._app(tenant_id, client_id).secrets.remove(client_secret)

    def add_certificate(self, tenant_id: str, client_id: str, certificate: x509.Certificate | bytes) -> None:
        """Upload a certificate (object or PEM) as a credential of the app."""
        cert = certificate if isinstance(certificate, x509.Certificate) else x509.load_pem_x509_certificate(certificate)
        with self._lock:
            certificates = self._app(tenant_id, client_id).certificates
            if cert not in certificates:
                certificates.append(cert)

    def remove_certificate(self, tenant_id: str, client_id: str, certificate: x509.Certificate) -> None:
        """Delete a certificate credential (the last step of a rotation)."""
        with self._lock:
            self._app(tenant_id, client_id).certificates.remove(certificate)

    def add_trusted_subject(self, tenant_id: str, client_id: str, trusted: TrustedSubject) -> None:
        with self._lock:
            self._app(tenant_id, client_id).trusted_subjects.append(trusted)

    def add_federated_credential(self, tenant_id: str, client_id: str, credential: FederatedCredential) -> None:
        with self._lock:
            self._app(tenant_id, client_id).federated.append(credential)

    # -- look-ups ------------------------------------------------------------------------------------
    def known(self, tenant_id: str) -> bool:
        with self._lock:
            return tenant_id in self._apps

    def snapshot(self, tenant_id: str, client_id: str) -> App | None:
        """A copy of the app and its credentials as they are now (safe to read without the lock)."""
        with self._lock:
            app = self._apps.get(tenant_id, {}).get(client_id)
            if app is None:
                return None
            return App(
                app.tenant_id,
                app.client_id,
                app.object_id,
                list(app.secrets),
                list(app.certificates),
                list(app.federated),
                list(app.trusted_subjects),
            )

    def _app(self, tenant_id: str, client_id: str) -> App:
        try:
            return self._apps[tenant_id][client_id]
        except KeyError:
            raise KeyError(f"no app {client_id} in tenant {tenant_id}") from None
