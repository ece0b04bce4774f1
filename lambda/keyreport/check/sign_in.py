"""Azure sign-in hops: the clock against Entra's, the STS token federated mode presents (next to what Entra must
trust), and a token for each audience the run needs, with the tenant and app it came from."""

from __future__ import annotations

import base64
import binascii
import functools
import json
import time
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from keyreport.check import reach
from keyreport.check.explain import entra_failure, input_unavailable
from keyreport.errors import HopFailed, SecretUnavailable
from keyreport.identity.federation import WebIdentityToken
from keyreport.settings import FederatedAuth

if TYPE_CHECKING:
    from collections.abc import Callable

    from keyreport.wiring import Wiring

# Entra accepts client assertions up to 5 minutes off; the Data Collector API 15 minutes.
CLOCK_TOLERANCE_SECONDS = 240


def jwt_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT, read without verifying it: only to show where a token came from, never to trust it."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        return {}
    return claims if isinstance(claims, dict) else {}


class SignInHops:
    def __init__(self, wiring: Wiring, audiences: list[tuple[str, Callable[[], str]]]) -> None:
        """`audiences`: (what the token is for, its scope) for each token the run needs; a scope may have to be
        asked for (Key Vault's comes from its challenge), so each is a function called when its hop runs."""
        self.wiring = wiring
        self.azure = wiring.settings.azure
        self.audiences = audiences
        self.presented: dict[str, Any] = {}  # the STS token's claims, federated mode

    def hops(self) -> list[tuple[str, Callable[[], str]]]:
        hops: list[tuple[str, Callable[[], str]]] = [("clock", self.clock)]
        if isinstance(self.azure.auth, FederatedAuth):
            hops.append(("sts:GetWebIdentityToken", self.web_identity))
        hops += [(f"token for {label}", functools.partial(self.token, label, scope)) for label, scope in self.audiences]
        return hops

    def clock(self) -> str:
        """This machine's clock against Entra's `Date` header: skew breaks assertions and SharedKey signatures."""
        tenant = getattr(self.azure.auth, "tenant_id", None) or "organizations"
        url = f"{self.azure.authority_host.rstrip('/')}/{tenant}/v2.0/.well-known/openid-configuration"
        before = time.time()
        where = self.azure.authority_host
        response = reach.get(self.wiring, url, where, "Entra", "allow egress to the authority host")
        date = response.headers.get("Date")
        if not date:
            return f"{self.azure.authority_host} answered without a Date header: skew not measured"
        skew = (before + time.time()) / 2 - parsedate_to_datetime(date).astimezone(UTC).timestamp()
        if abs(skew) > CLOCK_TOLERANCE_SECONDS:
            raise HopFailed(
                f"this clock is {skew:+.0f} s off Entra's",
                "clock skew: Entra refuses assertions and the Data Collector API refuses signatures off by minutes",
                "synchronise the clock (NTP; on EC2 the Amazon Time Sync Service)",
            )
        return f"within {max(1, round(abs(skew)))} s of Entra's"

    def web_identity(self) -> str:
        """The token Entra will be shown, and what the app's federated credential must therefore say."""
        audience = self.azure.cloud.federation_audience
        try:
            token = WebIdentityToken(self.wiring.aws.sts(), audience)()
        except SecretUnavailable as error:
            raise input_unavailable(error) from None
        self.presented = jwt_claims(token)
        return (
            f"issuer {self.presented.get('iss')}, subject {self.presented.get('sub')}, audience "
            f"{self.presented.get('aud')}: the app's federated credential must name exactly these"
        )

    def token(self, label: str, scope: Callable[[], str]) -> str:
        audience = scope()
        try:
            token = self.wiring.credential().get_token(audience)
        except SecretUnavailable as error:
            raise input_unavailable(error) from None
        except Exception as error:  # azure-identity's ClientAuthenticationError and kin: explained by AADSTS code
            raise entra_failure(error, label, self._federation_hint()) from None
        claims = jwt_claims(token.token)
        minutes = max(0, int((token.expires_on - time.time()) // 60))
        app = claims.get("appid") or claims.get("azp") or "?"
        return f"tenant {claims.get('tid', '?')}, app {app}, valid {minutes} min"

    def _federation_hint(self) -> str:
        if not self.presented:
            return ""
        return (
            f"the federated credential must say issuer {self.presented.get('iss')}, subject "
            f"{self.presented.get('sub')}, audience {self.presented.get('aud')}"
        )
