"""`keyreport replay` against objects an attacker (or a bug) put in the spill bucket, over real sockets.

Genuine batches are spilled by a real failed run; next to them go forged, tampered, oversized, wrong-account,
future-dated and malformed objects. Each bad one is quarantined with a one-line reason, and every genuine
one is still delivered and deleted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from keyreport.errors import RunFailed
from keyreport.spill.bucket import MAC_METADATA, MAX_OBJECT_BYTES, PREFIX, QUARANTINE_METADATA, QUARANTINE_PREFIX, mac
from sandbox.stack import SPILL_BUCKET
from tests.integration.conftest import RUNS_TABLE, World, deployment_key

OTHER_ACCOUNT = "210987654321"
FULL_KEY_ID = "AKIAQWERTYUIOPASDFGH"


@dataclass
class Spilled:
    run_id: str
    keys: list[str]  # the genuine objects, as the failed run left them
    rows: int


def keyreport(world: World, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = world.stack.aws.env(os.environ) | world.env | extra_env
    return subprocess.run(
        [sys.executable, "-m", "keyreport.cli", *args], env=env, capture_output=True, text=True, timeout=180
    )


@pytest.fixture
def spilled(world: World, monkeypatch: pytest.MonkeyPatch) -> Spilled:
    """A run whose every batch was refused: several key batches and the run row wait in the bucket."""
    monkeypatch.setenv("KEYREPORT_BATCH_MAX_BYTES", "8192")
    world.stack.collector.fail_next(400, 1000)
    with pytest.raises(RunFailed) as failed:
        world.invoke()
    world.stack.collector.faults.clear()
    summary = failed.value.summary
    assert len(summary.spill_keys) >= 3 and summary.spilled == world.estate.key_count
    return Spilled(summary.run_id, summary.spill_keys, summary.spilled)


class Planter:
    """Puts objects in the spill bucket the way an attacker with s3:PutObject (or a bug) could."""

    def __init__(self, world: World, spilled: Spilled) -> None:
        self.s3 = world.stack.aws.client("s3")
        self.key = deployment_key(world.stack).spill
        self.account = world.estate.account_id
        self.spilled = spilled
        self.planted: dict[str, str] = {}  # object key -> the reason replay must give

    def genuine(self, index: int = 0) -> tuple[dict[str, Any], bytes, dict[str, str]]:
        """The `index`th genuine object of the keys table."""
        answer = self.s3.get_object(Bucket=SPILL_BUCKET, Key=self.key_batches()[index])
        body = answer["Body"].read()
        return json.loads(body), body, answer["Metadata"]

    def key_batches(self) -> list[str]:
        return [key for key in self.spilled.keys if "/keys-" in key]

    def new_key(self, account: str | None = None, table: str = "keys") -> str:
        return f"{PREFIX}{account or self.account}/{uuid.uuid4()}/{table}-00000.json"

    def put(self, key: str, body: bytes, reason: str, *, mac_key: bytes | None = None, **metadata: str) -> None:
        if mac_key is not None:
            metadata[MAC_METADATA] = mac(mac_key, key, body)
        self.s3.put_object(Bucket=SPILL_BUCKET, Key=key, Body=body, Metadata=metadata)
        self.planted[key] = reason

    def signed(self, reason: str, change: Callable[[dict[str, Any]], Any], account: str | None = None) -> None:
        """A genuine document changed by `change`, under a fresh key, with a valid MAC (a bug, or a stolen key)."""
        document, _, _ = self.genuine()
        key = self.new_key(account)
        document["run_id"] = key.split("/")[3]
        for row in document["rows"] if isinstance(document.get("rows"), list) else []:
            row["RunId"] = document["run_id"]
        change(document)
        self.put(key, json.dumps(document).encode(), reason, mac_key=self.key)


def forged_document(account: str) -> dict[str, Any]:
    """What the review's hand-written object held: a full key id, a formula, an extra column, a future date."""
    row = {
        "loggedDate": "2099-01-01T00:00:00Z",
        "account_number": account,
        "user": "=1+2",
        "AccessKeyId": FULL_KEY_ID,
        "Status": "Inactive",
        "EvilColumn": "x",
    }
    return {"format": "keyreport-spill/2", "table": "keys", "account_id": account, "rows": [row]}


def plant_everything(world: World, spilled: Spilled) -> Planter:
    plant = Planter(world, spilled)
    forged = json.dumps(forged_document(plant.account)).encode()
    plant.put(plant.new_key(), forged, "it carries no MAC: not written by keyreport")
    plant.put(plant.new_key(), forged, "its MAC does not match", mac_key=b"another deployment's spill key")
    plant.put(f"{PREFIX}evil.json", forged, "its key is not one keyreport writes")
    # Tampered: one byte of a genuine object changed, its MAC kept.
    _, body, metadata = plant.genuine(1)
    tampered = body.replace(b'"Status":"Active"', b'"Status":"Activf"', 1)
    assert len(tampered) == len(body) and tampered != body
    plant.put(plant.key_batches()[1], tampered, "its MAC does not match", **metadata)
    oversized = b" " * (MAX_OBJECT_BYTES + 1)
    plant.put(plant.new_key(), oversized, f"over the {MAX_OBJECT_BYTES}-byte limit", mac_key=plant.key)
    plant.put(plant.new_key(), b"{not json", "it is not JSON", mac_key=plant.key)

    def first_row(**changes: Any) -> Callable[[dict[str, Any]], None]:
        """A one-row batch with that row changed (a bad row among good ones is parked alone: test_replay)."""
        return lambda document: document.update(rows=[document["rows"][0] | changes])

    plant.signed("its account or run is not the one its key names", lambda d: None, account=OTHER_ACCOUNT)
    plant.signed("row 1 is of another account", first_row(account_number=OTHER_ACCOUNT))
    plant.signed("row 1 is dated after the batch was spilled", first_row(loggedDate="2099-01-01T00:00:00Z"))
    plant.signed("its spill time is missing or in the future", lambda d: d.update(spilled_at="2099-01-01T00:00:00Z"))
    plant.signed("its table is not one keyreport ships", lambda d: d.update(table="bogus"))
    plant.signed("not a keyreport spill document", lambda d: d.pop("rows"))
    plant.signed("its rows are not a non-empty list", lambda d: d.update(rows="abc"))
    plant.signed("row 1 has fields the table does not declare (1, e.g. 'EvilColumn')", first_row(EvilColumn="x"))
    plant.signed("row 1 has an invalid AccessKeyId", first_row(AccessKeyId=FULL_KEY_ID))
    plant.signed("row 1 has an invalid KeyFingerprint", first_row(KeyFingerprint="kf1-" + "0" * 40))
    plant.signed("row 1 has an invalid KeyAgeDays", first_row(KeyAgeDays="many"))
    return plant


def listing(world: World, prefix: str) -> list[str]:
    pages = world.stack.aws.client("s3").get_paginator("list_objects_v2").paginate(Bucket=SPILL_BUCKET, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def rows_in(world: World, keys: list[str], table: str) -> int:
    s3 = world.stack.aws.client("s3")
    documents = [json.loads(s3.get_object(Bucket=SPILL_BUCKET, Key=key)["Body"].read()) for key in keys]
    return sum(len(document["rows"]) for document in documents if document["table"] == table)


def test_every_bad_object_is_quarantined_with_its_reason_and_the_genuine_ones_are_delivered(
    world: World, spilled: Spilled
) -> None:
    plant = plant_everything(world, spilled)
    genuine = [key for key in spilled.keys if key not in plant.planted]
    genuine_key_rows, genuine_run_rows = rows_in(world, genuine, "keys"), rows_in(world, genuine, "runs")

    done = keyreport(world, "replay")

    assert done.returncode == 1 and "Traceback" not in done.stderr
    lines = [line.strip() for line in done.stderr.splitlines() if line.strip().startswith("quarantined s3://")]
    assert len(lines) == len(plant.planted)
    s3 = world.stack.aws.client("s3")
    for key, reason in plant.planted.items():
        moved = QUARANTINE_PREFIX + key.removeprefix(PREFIX)
        [line] = [line for line in lines if line.startswith(f"quarantined s3://{SPILL_BUCKET}/{moved}: ")]
        assert reason in line, line
        assert reason in s3.head_object(Bucket=SPILL_BUCKET, Key=moved)["Metadata"][QUARANTINE_METADATA]
    assert listing(world, PREFIX) == []  # genuine ones delivered and deleted, bad ones moved
    assert len(listing(world, QUARANTINE_PREFIX)) == len(plant.planted)
    # Every row of the genuine objects arrived, nothing of the planted ones did.
    stored = world.rows(spilled.run_id)
    assert 0 < len(stored) == genuine_key_rows < spilled.rows  # the tampered batch waits in quarantine
    assert len(world.rows(spilled.run_id, RUNS_TABLE)) == genuine_run_rows == 1
    everything = json.dumps(world.stack.collector.rows("AWS_Access_Key_Report_CL"))
    assert FULL_KEY_ID not in everything and "EvilColumn" not in everything and "=1+2" not in everything


def test_a_dry_run_replay_shows_the_batches_and_changes_nothing(world: World, spilled: Spilled) -> None:
    plant = Planter(world, spilled)
    plant.put(plant.new_key(), json.dumps(forged_document(plant.account)).encode(), "it carries no MAC")
    before = listing(world, "")

    done = keyreport(world, "replay", KEYREPORT_SINK="stdout")

    assert listing(world, "") == before  # nothing deleted, nothing moved
    shown = [json.loads(line) for line in done.stdout.splitlines()]
    tables = {"keys": "AWS_Access_Key_Report_CL", "runs": "AWS_Access_Key_Report_Run_CL"}
    tables["users"] = "AWS_Access_Key_Report_Users_CL"
    for table, name in tables.items():  # every spilled row, tagged with its table
        assert len([line for line in shown if line["table"] == name]) == rows_in(world, spilled.keys, table), table
    assert f"would quarantine s3://{SPILL_BUCKET}/{next(iter(plant.planted))}: it carries no MAC" in done.stderr
    assert "shown, none deleted" in done.stderr and done.returncode == 1
    assert world.rows(spilled.run_id) == []


def test_replay_needs_the_fingerprint_secret_to_authenticate_the_objects(world: World, spilled: Spilled) -> None:
    done = keyreport(world, "replay", KEYREPORT_SINK="stdout", KEYREPORT_FINGERPRINT_SECRET_ARN="")
    assert done.returncode == 2 and "KEYREPORT_FINGERPRINT_SECRET_ARN is required for keyreport replay" in done.stderr
    assert sorted(listing(world, PREFIX)) == sorted(spilled.keys)


def test_after_a_rotation_of_the_fingerprint_secret_pending_batches_still_replay(
    world: World, spilled: Spilled
) -> None:
    """Objects spilled under the old key verify under AWSPREVIOUS; a fresh value is refused if weak."""
    secrets_manager = world.stack.aws.client("secretsmanager")
    arn, original = world.stack.fingerprint_secret_arn, world.stack.fingerprint_secret
    secrets_manager.put_secret_value(SecretId=arn, SecretString=uuid.uuid4().hex + uuid.uuid4().hex)
    try:
        done = keyreport(world, "replay")
    finally:
        secrets_manager.put_secret_value(SecretId=arn, SecretString=original)  # the other tests' fingerprints

    assert done.returncode == 0, done.stderr
    assert f"{len(spilled.keys)} delivered" in done.stderr and "0 quarantined" in done.stderr
    assert len(world.rows(spilled.run_id)) == spilled.rows
    assert listing(world, PREFIX) == []
