"""Both ingestion emulators set TimeGenerated as Log Analytics does: a record's own time is kept when it is no
more than 2 days before nor 1 day after the ingestion time, else replaced by the ingestion time. Only
TimeGenerated changes: loggedDate_t keeps the run's time. Over HTTPS, each emulator on a frozen clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from sandbox.data_collector import DataCollectorEmulator
from sandbox.entra import EntraEmulator
from sandbox.logs_ingestion import LogsIngestionEmulator, gzip_json
from sandbox.tls import LocalCA
from tests.sandbox.conftest import CLIENT, KEY, TENANT, WORKSPACE
from tests.sandbox.test_emulators import post_logs, rfc1123
from tests.sandbox.test_logs_ingestion_emulator import KEYS, RECORD, RULE, post, token

RECEIVED = datetime.now(UTC).replace(microsecond=0)  # the emulators' frozen clock: near the real one for auth
OFFSETS = {  # name -> the record's time relative to ingestion; True: Log Analytics keeps it
    "72h old": (timedelta(hours=-72), False),
    "48h old": (timedelta(hours=-48), True),  # "older than 2 days" is what is replaced: 2 days is kept
    "47h old": (timedelta(hours=-47), True),
    "23h ahead": (timedelta(hours=23), True),
    "24h ahead": (timedelta(hours=24), True),
    "25h ahead": (timedelta(hours=25), False),
}


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def expected() -> dict[str, tuple[str, str]]:
    """name -> (TimeGenerated, loggedDate_t) as stored."""
    return {
        name: (stamp(RECEIVED + offset if kept else RECEIVED), stamp(RECEIVED + offset))
        for name, (offset, kept) in OFFSETS.items()
    }


@pytest.fixture
def frozen_data_collector(local_ca: LocalCA) -> Iterator[DataCollectorEmulator]:
    with DataCollectorEmulator(local_ca, WORKSPACE, KEY, clock=lambda: RECEIVED) as emulator:
        yield emulator


@pytest.fixture
def frozen_ingestion(local_ca: LocalCA, entra: EntraEmulator) -> Iterator[LogsIngestionEmulator]:
    with LogsIngestionEmulator(local_ca, entra, WORKSPACE, clock=lambda: RECEIVED) as emulator:
        emulator.add_rule(RULE)
        emulator.assign_publisher(RULE, entra.register_app(TENANT, CLIENT).object_id)
        yield emulator


def test_data_collector_time_generated_field_outside_the_window_becomes_the_ingestion_time(
    frozen_data_collector: DataCollectorEmulator, bundle: str
) -> None:
    records = [{"user": name, "loggedDate": stamp(RECEIVED + offset)} for name, (offset, _) in OFFSETS.items()]
    response = post_logs(
        frozen_data_collector,
        bundle,
        records,
        log_type="AWS_Access_Key_Report",
        date=rfc1123(RECEIVED),
        headers={"time-generated-field": "loggedDate"},
    )
    assert response.status_code == 200, response.text
    rows = frozen_data_collector.rows(KEYS)
    assert {row["user_s"]: (row["TimeGenerated"], row["loggedDate_t"]) for row in rows} == expected()
    assert frozen_data_collector.posts[0].time_generated_fallbacks == 2


def test_logs_ingestion_time_generated_outside_the_window_becomes_the_ingestion_time(
    frozen_ingestion: LogsIngestionEmulator, entra: EntraEmulator, bundle: str
) -> None:
    records = [
        {**RECORD, "user_s": name, "TimeGenerated": stamp(RECEIVED + offset), "loggedDate_t": stamp(RECEIVED + offset)}
        for name, (offset, _) in OFFSETS.items()
    ]
    response = post(frozen_ingestion, bundle, gzip_json(records), bearer=token(entra))
    assert response.status_code == 204, response.text
    rows = frozen_ingestion.rows(KEYS)
    assert {row["user_s"]: (row["TimeGenerated"], row["loggedDate_t"]) for row in rows} == expected()
