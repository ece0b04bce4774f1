"""The client-credentials grant at the Entra emulator's token endpoint: secret (form or HTTP Basic) or assertion."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote

from sandbox.entra_assertions import ClientAssertions
from sandbox.entra_common import NO_STORE, Endpoints, Refusal
from sandbox.entra_directory import App, Directory
from sandbox.entra_tokens import TokenAuthority
from sandbox.https import Request, Response


class ClientCredentials:
    """``grant_type=client_credentials`` for confidential apps of ``directory``, answered with ``tokens``."""

    def __init__(self, endpoints: Endpoints, directory: Directory, tokens: TokenAuthority) -> None:
        self._directory = directory
        self._tokens = tokens
        self._assertions = ClientAssertions(endpoints)

    def token(self, request: Request, form: dict[str, str], tenant: str) -> Response:
        basic_id, basic_secret = _basic_auth(request)
        for name in ("grant_type", "client_id", "scope"):
            if not form.get(name) and not (name == "client_id" and basic_id):
                raise Refusal(
                    400, "invalid_request", 900144, f"The request body must contain the following parameter: '{name}'."
                )
        if form["grant_type"] != "client_credentials":
            raise Refusal(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{form['grant_type']}'. "
                "(The sandbox supports client_credentials only.)",
            )
        client_id = form.get("client_id") or basic_id or ""
        audience = _audience(form["scope"])
        app = self._directory.snapshot(tenant, client_id)
        if app is None:
            raise Refusal(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can "
                "happen if the application has not been installed by the administrator of the tenant or consented "
                "to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
            )
        auth_method = self._authenticate(app, tenant, form, form.get("client_secret") or basic_secret)
        token = self._tokens.issue(tenant, client_id, audience, auth_method=auth_method)
        lifetime = self._tokens.lifetime
        payload = {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": token}
        return Response.json(200, payload, NO_STORE)

    def _authenticate(self, app: App, tenant: str, form: dict[str, str], secret: str | None) -> str:
        """The ``appidacr`` the app earned: "1" for a secret, "2" for an assertion; Refusal otherwise."""
        assertion = form.get("client_assertion")
        if secret and assertion:
            raise Refusal(400, "invalid_request", 50027, "Only one client authentication method may be used.")
        if assertion:
            return self._assertions.check(app, tenant, assertion, form.get("client_assertion_type"))
        if not secret:
            raise Refusal(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            )
        if secret not in app.secrets:
            raise Refusal(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client "
                f"secret value, not the client secret ID, for a secret added to app '{app.client_id}'.",
            )
        return "1"


def _basic_auth(request: Request) -> tuple[str | None, str | None]:
    header = request.header("Authorization") or ""
    if not header.startswith("Basic "):
        return None, None
    try:
        user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise Refusal(401, "invalid_client", 7000215, "Invalid client secret provided.") from None
    return unquote(user), unquote(password)


def _audience(scope: str) -> str:
    scopes = scope.split()
    if len(scopes) != 1:
        raise Refusal(
            400,
            "invalid_scope",
            70011,
            f"The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid.",
        )
    if not scopes[0].endswith("/.default") or scopes[0] == "/.default":
        raise Refusal(
            400,
            "invalid_scope",
            1002012,
            f"The provided value for scope {scope} is not valid. Client credential flows must have a scope "
            "value with /.default suffixed to the resource identifier (application ID URI).",
        )
    return scopes[0].removesuffix("/.default")
