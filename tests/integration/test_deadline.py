"""Nothing lost when time runs out. The real handler runs in a child process that is killed with SIGKILL
when the simulated Lambda timeout expires, with one hop slow, silent, not accepting connections, trickling
its answers (1 B/s, 1 KB/s: every read returns in time, only a limit on the whole call ends it) or resetting
the connection in the middle of an answer. From what the emulators, the spill bucket and the function's log
hold afterwards: the child ended by itself before the kill, every record read is shipped, spilled or (last
resort) logged, and the run row exists exactly once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from sandbox.black_hole import SilentHost, UnacceptingHost
from sandbox.stack import Stack
from sandbox.trickle import TrickleProxy
from tests.integration.conftest import World
from tests.integration.deadline_harness import account, child_env, invoke_and_kill, record_measurement

TIMEOUT_SECONDS = 20.0
MARGIN_SECONDS = 6.0
MANY = 1000


@dataclass
class Hosts:
    silent: SilentHost
    unaccepting: UnacceptingHost


@dataclass(frozen=True)
class Hop:
    sink: str = "data_collector"
    fault: Callable[[Stack, float], None] = lambda stack, slow: None  # slow: longer than the invocation
    env: Callable[[Hosts], dict[str, str]] = lambda hosts: {}
    reads_everything: bool = True  # the AWS side is healthy: every key is read before the deadline


HOPS = {
    "entra-slow": Hop(fault=lambda stack, slow: stack.entra.slow_next(slow, MANY)),
    "entra-silent": Hop(env=lambda hosts: {"KEYREPORT_AZURE_AUTHORITY_HOST": hosts.silent.url()}),
    "keyvault-slow": Hop(fault=lambda stack, slow: stack.keyvault.slow_next(slow, MANY)),
    "keyvault-silent": Hop(env=lambda hosts: {"KEYREPORT_KEYVAULT_URL": hosts.silent.url()}),
    "collector-unaccepting": Hop(env=lambda hosts: {"KEYREPORT_DATA_COLLECTOR_ENDPOINT": hosts.unaccepting.url()}),
    "collector-silent": Hop(env=lambda hosts: {"KEYREPORT_DATA_COLLECTOR_ENDPOINT": hosts.silent.url()}),
    "collector-slow": Hop(fault=lambda stack, slow: stack.collector.slow_next(slow, MANY)),
    "collector-drops": Hop(fault=lambda stack, slow: stack.collector.drop_next(MANY)),
    "ingestion-slow": Hop("logs_ingestion", fault=lambda stack, slow: stack.ingestion.slow_next(slow, MANY)),
    "ingestion-entra-slow": Hop("logs_ingestion", fault=lambda stack, slow: stack.entra.slow_next(slow, MANY)),
    "sts-silent": Hop(env=lambda hosts: {"AWS_ENDPOINT_URL_STS": hosts.silent.url("http")}, reads_everything=False),
    "iam-silent": Hop(env=lambda hosts: {"AWS_ENDPOINT_URL_IAM": hosts.silent.url("http")}, reads_everything=False),
    "s3-silent-while-spilling": Hop(
        fault=lambda stack, slow: stack.collector.fail_next(500, MANY, retry_after=0),
        env=lambda hosts: {"AWS_ENDPOINT_URL_S3": hosts.silent.url("http")},
    ),
}


@dataclass(frozen=True)
class Trickled:
    """A hop reached through a TrickleProxy in front of its emulator: the variable that points it there."""

    variable: str
    port: Callable[[Stack], int]
    scheme: str = "https"
    sink: str = "data_collector"
    fault: Callable[[Stack, float], None] = lambda stack, slow: None
    reads_everything: bool = True


TRICKLED = {
    "entra": Trickled("KEYREPORT_AZURE_AUTHORITY_HOST", lambda stack: stack.entra.port),
    "keyvault": Trickled("KEYREPORT_KEYVAULT_URL", lambda stack: stack.keyvault.port),
    "collector": Trickled("KEYREPORT_DATA_COLLECTOR_ENDPOINT", lambda stack: stack.collector.port),
    "ingestion": Trickled("KEYREPORT_DCE_ENDPOINT", lambda stack: stack.ingestion.port, sink="logs_ingestion"),
    "sts": Trickled("AWS_ENDPOINT_URL_STS", lambda stack: stack.aws.port, "http", reads_everything=False),
    "iam": Trickled("AWS_ENDPOINT_URL_IAM", lambda stack: stack.aws.port, "http", reads_everything=False),
    "secretsmanager": Trickled(
        "AWS_ENDPOINT_URL_SECRETS_MANAGER", lambda stack: stack.aws.port, "http", reads_everything=False
    ),
    "s3-while-spilling": Trickled(
        "AWS_ENDPOINT_URL_S3",
        lambda stack: stack.aws.port,
        "http",
        fault=lambda stack, slow: stack.collector.fail_next(500, MANY, retry_after=0),
    ),
}
# How the proxy answers: bytes a second, or (reset) the number of bytes after which it resets the connection:
# past the TLS handshake for the HTTPS hops, inside the first answer for the plain-HTTP AWS ones.
MODES = {"1-byte-a-second": 1.0, "1-kb-a-second": 1024.0, "reset-mid-answer": None}
RESET_AFTER = {"https": 4096, "http": 100}


@pytest.fixture
def hosts() -> Iterator[Hosts]:
    with SilentHost() as silent, UnacceptingHost() as unaccepting:
        yield Hosts(silent, unaccepting)


@dataclass
class Case:
    name: str
    hop: Hop
    timeout: float = TIMEOUT_SECONDS
    margin: float = MARGIN_SECONDS
    env: dict[str, str] = field(default_factory=dict)
    may_succeed: bool = False  # a trickle fast enough, or resets rare enough, can let everything through


def run_case(case: Case, world: World, hosts: Hosts) -> None:
    hop = case.hop
    env = world.stack.env(sink=hop.sink) | {"KEYREPORT_DEADLINE_MARGIN_SECONDS": str(int(case.margin))}
    world.env = env
    hop.fault(world.stack, case.timeout * 2)

    invocation = invoke_and_kill(child_env(world, env | hop.env(hosts) | case.env), case.timeout)
    world.stack.entra.faults.clear()  # the slow faults left queued must not slow the accounting below
    record_measurement(case.name, case.timeout, case.margin, invocation)

    assert invocation.exited, "killed at the timeout: " + "\n".join(
        f"{line.get('timestamp')} {line.get('message')} {line.get('reason', '')}" for line in invocation.log[-12:]
    )
    booked = account(world, invocation, hop.sink)
    keys = booked.value("Keys")
    assert keys == booked.shipped + booked.spilled + booked.logged
    assert (booked.value("RecordsShipped"), booked.value("RecordsSpilled")) == (booked.shipped, booked.spilled)
    assert booked.value("RecordsFailed") == booked.logged
    if hop.reads_everything:
        assert keys == world.estate.key_count
    assert case.may_succeed or booked.value("Status") != "ok"


@pytest.mark.parametrize("name", list(HOPS))
def test_a_slow_or_silent_hop_loses_nothing_and_leaves_a_run_row(name: str, world: World, hosts: Hosts) -> None:
    run_case(Case(name, HOPS[name]), world, hosts)


def run_trickled(hop_name: str, mode: str, world: World, hosts: Hosts, timeout: float, margin: float) -> None:
    trickled, rate = TRICKLED[hop_name], MODES[mode]
    target = trickled.port(world.stack)
    reset_after = RESET_AFTER[trickled.scheme] if rate is None else None
    with TrickleProxy(target, rate or 1e9, reset_after=reset_after) as proxy:
        hop = Hop(
            trickled.sink,
            fault=trickled.fault,
            env=lambda hosts: {trickled.variable: proxy.url(trickled.scheme)},
            reads_everything=trickled.reads_everything,
        )
        run_case(Case(f"{hop_name} {mode}", hop, timeout, margin, may_succeed=True), world, hosts)


@pytest.mark.parametrize("hop_name", list(TRICKLED))
def test_a_hop_trickling_a_byte_a_second_is_cut_at_the_deadline_and_loses_nothing(
    hop_name: str, world: World, hosts: Hosts
) -> None:
    run_trickled(hop_name, "1-byte-a-second", world, hosts, TIMEOUT_SECONDS, MARGIN_SECONDS)


@pytest.mark.parametrize("hop_name", ["collector", "iam"])
def test_a_hop_resetting_mid_answer_loses_nothing(hop_name: str, world: World, hosts: Hosts) -> None:
    run_trickled(hop_name, "reset-mid-answer", world, hosts, TIMEOUT_SECONDS, MARGIN_SECONDS)


@pytest.mark.soak
@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("hop_name", list(TRICKLED))
def test_soak_trickling_and_resetting_hops(hop_name: str, mode: str, world: World, hosts: Hosts) -> None:
    """`make soak`: every hop in every mode, a 60 s invocation with the deployed margin (20 s)."""
    run_trickled(hop_name, mode, world, hosts, 60.0, 20.0)


@pytest.mark.soak
@pytest.mark.parametrize("name", list(HOPS))
def test_soak_with_the_default_margin(name: str, world: World, hosts: Hosts) -> None:
    """`make soak`: a 60 s invocation with the deployed margin (20 s)."""
    run_case(Case(name, HOPS[name], timeout=60.0, margin=20.0), world, hosts)
