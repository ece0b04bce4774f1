"""A service the check could not reach (no route, or TLS that did not verify), and the plain GETs of the check."""

from __future__ import annotations

from typing import TYPE_CHECKING

import requests

from keyreport.errors import HopFailed, first_line, network_failure

if TYPE_CHECKING:
    from keyreport.wiring import Wiring

PROXY_FIX = "behind a TLS-inspecting proxy set KEYREPORT_CA_BUNDLE to its CA"


def unreachable(where: str, error: BaseException, what: str, fix: str) -> HopFailed:
    detail = f"cannot reach {where}: {first_line(error, 200)}"
    network = network_failure(error, where)
    if network is not None:  # refused, silent, a name that does not resolve, or TLS: each has its own fix
        if network.kind == "silent":  # cut off at the hop's end: the SDK's text would name its own, longer timeout
            detail = f"no answer from {where} within the hop's time"
        return HopFailed(detail, f"{what}: {network.cause}", f"{network.fix}; {fix}")
    return HopFailed(
        detail, f"no route to {what}, or a TLS-inspecting proxy whose CA is not trusted", f"{fix}; {PROXY_FIX}"
    )


def get(wiring: Wiring, url: str, where: str, what: str, fix: str) -> requests.Response:
    """GET `url` with the run's trust (public roots plus KEYREPORT_CA_BUNDLE); a failure to reach it is a HopFailed."""
    session = wiring.http()
    try:
        # verify= per request: requests lets REQUESTS_CA_BUNDLE override a session's own setting.
        return session.get(url, timeout=(10, 20), verify=session.verify)
    except requests.RequestException as error:
        raise unreachable(where, error, what, fix) from None
