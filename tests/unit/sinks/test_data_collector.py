"""SharedKey signature against vectors computed outside the code under test (openssl, see each test)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone

from keyreport.sinks.base import encode_row
from keyreport.sinks.data_collector import rfc1123_date, signature

WORKSPACE = "3f2b7c1e-5d4a-4b8e-9c0f-1a2b3c4d5e6f"
# printf 'keyreport-known-answer-test-key-0123456789abcdef0123456789abcdef' | base64 -w0
KEY_B64 = "a2V5cmVwb3J0LWtub3duLWFuc3dlci10ZXN0LWtleS0wMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZg=="
DATE = "Mon, 23 Nov 2026 12:00:00 GMT"


def test_known_answer() -> None:
    # printf 'POST\n1234\napplication/json\nx-ms-date:Mon, 23 Nov 2026 12:00:00 GMT\n/api/logs' \
    #   | openssl dgst -sha256 -mac HMAC -macopt hexkey:<hex of the key> -binary | base64
    expected = "Cgv23Z4S0hatdBaZxacAvnwOK6FavnhjK4DN7SuATCg="
    assert signature(WORKSPACE, base64.b64decode(KEY_B64), DATE, 1234) == f"SharedKey {WORKSPACE}:{expected}"


def test_non_ascii_body_is_signed_over_its_byte_length() -> None:
    body = encode_row({"user": "zoë", "Status": "Active"})
    body = b"[" + body + b"]"
    assert len(body) == 35 and len(body.decode()) == 34  # 'ë' is two bytes
    # the same openssl command with 35 as the length
    expected = "ryMSD5+tju+fX6bypjRUTjHUYh2HYdboKLB2f/0solE="
    assert signature(WORKSPACE, base64.b64decode(KEY_B64), DATE, len(body)).endswith(":" + expected)


def test_rfc1123_date_is_gmt_whatever_the_input_zone() -> None:
    moment = datetime(2026, 11, 23, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    assert rfc1123_date(moment) == DATE
    assert rfc1123_date(datetime(2026, 1, 5, 9, 7, 3, tzinfo=UTC)) == "Mon, 05 Jan 2026 09:07:03 GMT"
