"""The deployment's secret hop (KEYREPORT_FINGERPRINT_SECRET_ARN): readable and long enough; its value never shown.

Every row's fingerprint and every spill object's MAC come from it, so a run that cannot read it ships nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from keyreport.errors import HopFailed, SecretUnavailable

if TYPE_CHECKING:
    from keyreport.wiring import Wiring


def read_deployment_key(wiring: Wiring) -> str:
    arn = wiring.settings.fingerprint_secret_arn
    if arn is None:
        return "not set: a dry run fingerprints with a random key (a deployment always has one)"
    try:
        wiring.deployment_key  # noqa: B018 (read once, as the run does; the keys stay in memory)
    except SecretUnavailable as error:
        raise HopFailed(
            str(error),
            "the deployment's secret cannot be read or is not a fingerprint key: no row could be made",
            f"grant the role secretsmanager:GetSecretValue on {arn} (the stack does), and keep the value the "
            "stack generated (64 characters)",
        ) from None
    return f"{arn} is readable and long enough (value not shown)"
