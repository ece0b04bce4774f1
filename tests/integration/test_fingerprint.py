"""Fingerprints through the real handler: one deployment's runs (warm or cold) agree, two deployments differ."""

from __future__ import annotations

import json
import secrets

import pytest

from keyreport.errors import RunFailed
from sandbox.estate import seed_client_secret
from tests.integration.conftest import RUNS_TABLE, World, cold_start
from tests.integration.test_cli import keyreport as cli


def fingerprints(world: World, run_id: str) -> dict[str, str]:
    """Masked key id + user -> fingerprint, for the rows of one run."""
    return {f"{row['UserArn_s']} {row['AccessKeyId_s']}": row["KeyFingerprint_s"] for row in world.rows(run_id)}


def test_one_deployments_runs_agree_and_another_deployment_differs(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = fingerprints(world, world.invoke()["RunId"])
    warm = fingerprints(world, world.invoke()["RunId"])
    cold_start()
    cold = fingerprints(world, world.invoke()["RunId"])
    assert len(first) == world.estate.key_count and first == warm == cold
    assert all(value.startswith("kf2-") for value in first.values())
    assert set(first.values()) == {world.key_fingerprint(key.access_key_id) for key in world.estate.keys}

    other = seed_client_secret(world.stack.aws, "another-deployment/fingerprint-key", secrets.token_urlsafe(48))
    monkeypatch.setenv("KEYREPORT_FINGERPRINT_SECRET_ARN", other)
    cold_start()
    elsewhere = fingerprints(world, world.invoke()["RunId"])
    assert elsewhere.keys() == first.keys()
    assert not set(elsewhere.values()) & set(first.values())


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("hunter2", "holds 7 characters: a fingerprint key needs at least 32"),
        ("a" * 32, "is not random enough to be a key"),
        ("ab" * 40, "is not random enough to be a key"),
    ],
)
def test_a_fingerprint_secret_too_weak_to_be_a_key_is_refused_by_name_and_the_run_row_still_ships(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], value: str, says: str
) -> None:
    weak = seed_client_secret(world.stack.aws, "weak/fingerprint-key", value)
    monkeypatch.setenv("KEYREPORT_FINGERPRINT_SECRET_ARN", weak)
    with pytest.raises(RunFailed) as failed:
        world.invoke()
    assert any(says in error for error in failed.value.summary.errors)
    [run_row] = world.rows(failed.value.summary.run_id, RUNS_TABLE)  # the run row needs no fingerprint
    assert run_row["Status_s"] == "failed" and says in run_row["ErrorDetail_s"]
    assert world.rows(failed.value.summary.run_id) == []  # no key row without the deployment's key
    assert value not in capsys.readouterr().err and value not in json.dumps(run_row)


def test_a_dry_run_without_the_secret_uses_a_random_key_and_says_so(world: World) -> None:
    first, second = (cli(world, "run", "--sink", "stdout", KEYREPORT_FINGERPRINT_SECRET_ARN="") for _ in range(2))
    assert first.returncode == second.returncode == 0, first.stderr
    assert "this dry run's fingerprints use a random key" in first.stderr
    lines = [[json.loads(line) for line in done.stdout.splitlines()] for done in (first, second)]
    runs = [{line["record"]["KeyFingerprint"] for line in run if "KeyFingerprint" in line["record"]} for run in lines]
    assert all(len(run) == world.estate.key_count for run in runs)
    assert not runs[0] & runs[1]  # a random key per run: nothing joins a dry run to anything


def test_the_real_sinks_need_the_secret(world: World) -> None:
    done = cli(world, "run", KEYREPORT_FINGERPRINT_SECRET_ARN="")
    assert (
        done.returncode == 2
        and "KEYREPORT_FINGERPRINT_SECRET_ARN is required for KEYREPORT_SINK=data_collector" in (done.stderr)
    )
