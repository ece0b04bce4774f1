"""Which hops the settings call for, in the order a run meets them, and running them into a Report."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

from keyreport.check.aws_reads import AwsReads
from keyreport.check.deployment_key import read_deployment_key
from keyreport.check.event_path import EventPathHops
from keyreport.check.organization import OrganizationHops
from keyreport.check.report import Hop, Report, not_checked, run_hop
from keyreport.check.sign_in import SignInHops
from keyreport.check.spill import probe_bucket
from keyreport.settings import DataCollectorSettings, LogsIngestionSettings, builder

if TYPE_CHECKING:
    from keyreport.wiring import Wiring

Probe = tuple[str, Callable[[], str]]
HOP_TIMEOUT_SECONDS = 30.0


def plan(wiring: Wiring, *, member_account: str | None = None, query_token: bool = False) -> list[Probe]:
    """Every hop of the configured run: AWS reads, organization, event path, spill bucket, sign-in, Key Vault, sink."""
    settings = wiring.settings
    probes: list[Probe] = AwsReads(wiring.aws).hops()
    if settings.organization is not None:
        probes += OrganizationHops(wiring.aws, settings.organization, member_account).hops()
    if settings.event_queue_url is not None:
        probes += EventPathHops(wiring.aws, settings.event_queue_url).hops()
    probes.append(("fingerprint key", functools.partial(read_deployment_key, wiring)))
    if settings.spill_bucket is not None:
        probes.append(("spill bucket", functools.partial(probe_bucket, wiring.aws, settings.spill_bucket)))
    return probes + _azure(wiring, query_token)


def _azure(wiring: Wiring, query_token: bool) -> list[Probe]:
    settings, sink = wiring.settings, wiring.settings.sink
    cloud = settings.azure.cloud
    # Each sink's hops import that sink's SDK only: a package built for one sink lacks the other's, which is a
    # configuration error naming the fix (settings.builder) before any hop.
    if sink.needs_azure:
        builder(sink)
    if isinstance(sink, DataCollectorSettings):
        from keyreport.check import collector, key_vault  # noqa: PLC0415

        key = key_vault.WorkspaceKeyHop(wiring, sink)
        scope = functools.partial(key_vault.vault_scope, wiring, sink)
        audiences: list[tuple[str, Callable[[], str]]] = [("Key Vault", scope)]
        tail: list[Probe] = [
            ("key vault: workspace key", key.read),
            ("data collector", functools.partial(collector.data_collector, wiring, sink, key)),
        ]
    elif isinstance(sink, LogsIngestionSettings):
        from keyreport.check import ingestion  # noqa: PLC0415

        audiences = [("Logs Ingestion", lambda: f"{cloud.monitor_audience}/.default")]
        tail = [
            (f"logs ingestion: {stream}", functools.partial(ingestion.logs_ingestion, wiring, sink, stream))
            for stream in (
                sink.keys_stream(settings.log_type),
                sink.runs_stream(settings.log_type),
                sink.users_stream(settings.log_type),
            )
        ]
    else:
        return []  # a dry run talks to no Azure service
    if query_token:
        audiences.append(("Log Analytics query (keyreport query)", lambda: f"{cloud.logs_query_endpoint}/.default"))
    return SignInHops(wiring, audiences).hops() + tail


def run_checks(
    wiring: Wiring,
    *,
    member_account: str | None = None,
    query_token: bool = False,
    timeout: float = HOP_TIMEOUT_SECONDS,
) -> Report:
    return run_probes(plan(wiring, member_account=member_account, query_token=query_token), timeout)


# A hop behind one that did not pass is not tried: it would fail the same way (every AWS call after the
# identity), or has nothing to use (no user to list keys of, no token for the vault, no key to sign with).
_AWS_HOPS = ("iam:", "credential report", "organizations:", "account queue", "member role", "fingerprint key")
_BEHIND: tuple[tuple[tuple[str, ...], str], ...] = (
    (("iam:ListAccessKeys",), "iam:ListUsers"),
    (("iam:GetAccessKeyLastUsed",), "iam:ListAccessKeys"),
    (("member role",), "organizations:ListAccounts"),
    (("token for",), "sts:GetWebIdentityToken"),
    (("key vault: workspace key",), "token for Key Vault"),
    (("data collector",), "key vault: workspace key"),
    (("logs ingestion:",), "token for Logs Ingestion"),
    ((*_AWS_HOPS, "spill bucket", "sts:GetWebIdentityToken"), "aws identity"),
)


def prerequisites(name: str) -> list[str]:
    """The hops `name` needs to have passed (directly; they have their own)."""
    return [needed for starts, needed in _BEHIND if name.startswith(starts)]


def run_probes(
    probes: list[Probe], timeout: float = HOP_TIMEOUT_SECONDS, on_hop: Callable[[str, Hop | None], None] | None = None
) -> Report:
    """Runs every hop in order; `on_hop(name, None)` before one starts and `on_hop(name, hop)` after (progress).

    A hop whose prerequisite (of this plan) did not pass is reported as not checked, in no time.
    """
    report = Report()
    planned = {name for name, _ in probes}
    for name, probe in probes:
        if on_hop is not None:
            on_hop(name, None)
        passed = {hop.name for hop in report.hops if hop.passed}
        behind = [need for need in prerequisites(name) if need in planned and need not in passed]
        hop = not_checked(name, behind[0]) if behind else run_hop(name, probe, timeout)
        report.hops.append(hop)
        if on_hop is not None:
            on_hop(name, hop)
    return report
