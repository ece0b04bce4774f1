"""The attack on the fingerprint, run for real: recover a shipped row's full key id from what the row shows.

An access key id is "AKIA" + 16 base32 characters (80 bits): bit 1 to 40 of them are the account id.
A row shows the account id and the first and last four characters, so the top bit and 19 middle bits are
unknown: 2^20 candidates. Against the old unkeyed SHA-256 (`kf1-`) the search finds the id; against the
keyed fingerprint (`kf2-`) nothing an attacker can compute without the deployment's key matches.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from datetime import UTC, datetime

from keyreport.deployment_key import DeploymentKey
from keyreport.records import KeyRecord, key_row

BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
PAIRS = [a + b for a in BASE32 for b in BASE32]  # two characters = 10 bits
ACCOUNT = 123456789012
RUN_TIME = datetime(2026, 11, 23, tzinfo=UTC)


def encode(value: int, characters: int) -> str:
    return "".join(BASE32[(value >> (5 * (characters - 1 - i))) & 31] for i in range(characters))


def access_key_id(account: int, top: int, rest: int) -> str:
    """A key id laid out as AWS lays them out: [1 bit][40 bits account id][39 bits]."""
    return "AKIA" + encode((top << 79) | (account << 39) | rest, 16)


def unkeyed_v1(key_id: str) -> str:
    """The fingerprint keyreport shipped before: SHA-256 of the id under a fixed label."""
    return "kf1-" + hashlib.sha256(b"keyreport/access-key/v1\x00" + key_id.encode()).hexdigest()[:40]


def search(row: dict[str, str], guess: Callable[[bytes], str]) -> str | None:
    """Every key id consistent with the row, tried with `guess`; the one whose fingerprint matches, if any."""
    account, masked, target = int(row["account_number"]), row["AccessKeyId"], row["KeyFingerprint"]
    prefix, tail = masked[:4], masked[-4:]
    chars_8_to_11_low_bit = account & 1  # the account's last bit opens the third group of four characters
    for top in (0, 1):
        head = prefix + encode((top << 39) | (account >> 1), 8)
        for middle in range(1 << 19):
            group = (chars_8_to_11_low_bit << 19) | middle
            candidate = (head + PAIRS[group >> 10] + PAIRS[group & 1023] + tail).encode()
            if guess(candidate) == target:
                return candidate.decode()
    return None


def shipped_row(key_id: str, deployment: DeploymentKey) -> dict[str, str]:
    record = KeyRecord("alice", f"arn:aws:iam::{ACCOUNT}:user/alice", key_id, "Active", RUN_TIME)
    row = key_row(
        record, run_time=RUN_TIME, run_id="0b6f2e5c-4a7d-4e1b-9c3f-2d8a6e1f7b40", fingerprint_key=deployment.fingerprint
    )
    assert key_id not in str(row)
    return row


def test_the_key_id_layout_is_the_one_aws_uses() -> None:
    key_id = access_key_id(ACCOUNT, 1, 0x2A5A5A5A5A)
    body = int.from_bytes(base64.b32decode(key_id[4:])[:6], "big")
    assert (body & 0x7FFFFFFFFF80) >> 7 == ACCOUNT  # the published decoding of an access key id's account


def test_brute_force_of_a_shipped_rows_fingerprint_fails_without_the_deployments_key() -> None:
    secret_id = access_key_id(ACCOUNT, 1, (0x5B3C1 << 20) | 0xA7E2D)
    victim = DeploymentKey.from_secret(hashlib.sha256(b"victim deployment").hexdigest(), "victim")
    row = shipped_row(secret_id, victim)
    assert row["KeyFingerprint"].startswith("kf2-")

    # The search is real: the old unkeyed fingerprint of the same row gives the id away.
    assert search({**row, "KeyFingerprint": unkeyed_v1(secret_id)}, lambda c: unkeyed_v1(c.decode())) == secret_id

    # Without the victim's key, nothing the attacker can compute matches: unkeyed, or keyed with their own.
    attacker = DeploymentKey.from_secret(hashlib.sha256(b"attacker deployment").hexdigest(), "attacker").fingerprint
    assert search(row, lambda c: unkeyed_v1(c.decode())) is None
    assert search(row, lambda c: "kf2-" + hmac.digest(attacker, c, "sha256").hex()[:40]) is None
    # With the key (which never leaves AWS) the fingerprint is simply recomputed: it joins runs, that is all.
    assert row["KeyFingerprint"] == "kf2-" + hmac.digest(victim.fingerprint, secret_id.encode(), "sha256").hex()[:40]


def test_one_deployment_agrees_with_itself_and_two_deployments_differ() -> None:
    key_id = access_key_id(ACCOUNT, 0, 12345)
    first = DeploymentKey.from_secret(hashlib.sha256(b"deployment one").hexdigest(), "one")
    again = DeploymentKey.from_secret(
        hashlib.sha256(b"deployment one").hexdigest(), "one"
    )  # a cold start reads it again
    other = DeploymentKey.from_secret(hashlib.sha256(b"deployment two").hexdigest(), "two")
    assert shipped_row(key_id, first)["KeyFingerprint"] == shipped_row(key_id, again)["KeyFingerprint"]
    assert shipped_row(key_id, first)["KeyFingerprint"] != shipped_row(key_id, other)["KeyFingerprint"]
    assert first.fingerprint != first.spill  # one secret, a separate key for each use
