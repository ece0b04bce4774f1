"""The Azure emulators are strict and correct: real SDKs over verified TLS, documented wire formats."""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import json
import ssl
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
import requests
import trustme
from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError
from azure.identity import CertificateCredential, ClientAssertionCredential, ClientSecretCredential
from azure.keyvault.secrets import SecretClient
from cryptography.hazmat.primitives.asymmetric import ec

from sandbox.data_collector import DataCollectorEmulator, signature
from sandbox.entra import EntraEmulator, TokenError
from sandbox.keyvault import KeyVaultEmulator
from sandbox.tls import LocalCA
from tests.sandbox.conftest import CLIENT, KEY, SECRET, TENANT, WORKSPACE

VAULT_SCOPE = "https://vault.azure.net/.default"


# -- helpers: the client side, written from the documentation, independent of sandbox code ----------
def sign(key_b64: str, date: str, length: int, content_type: str = "application/json") -> str:
    string_to_sign = f"POST\n{length}\n{content_type}\nx-ms-date:{date}\n/api/logs"
    digest = hmac.new(base64.b64decode(key_b64), string_to_sign.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def rfc1123(moment: datetime) -> str:
    return email.utils.format_datetime(moment.astimezone(UTC), usegmt=True)


def post_logs(
    dc: DataCollectorEmulator,
    bundle: str,
    payload: Any,
    *,
    log_type: str | None = "SandboxTest",
    key: str = KEY,
    date: str | None = None,
    content_type: str = "application/json",
    signed_content_type: str | None = None,
    headers: dict[str, str] | None = None,
    query: str = "?api-version=2016-04-01",
) -> requests.Response:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    date = date or rfc1123(datetime.now(UTC))
    all_headers = {
        "Content-Type": content_type,
        "x-ms-date": date,
        "Authorization": f"SharedKey {WORKSPACE}:{sign(key, date, len(body), signed_content_type or content_type)}",
        **(headers or {}),
    }
    if log_type is not None:
        all_headers["Log-Type"] = log_type
    return requests.post(f"{dc.url}/api/logs{query}", data=body, headers=all_headers, verify=bundle, timeout=30)


def secret_credential(entra: EntraEmulator, bundle: str, secret: str = SECRET) -> ClientSecretCredential:
    # The exact call the product makes for KEYREPORT_AZURE_AUTH=secret with a custom authority.
    return ClientSecretCredential(
        TENANT, CLIENT, secret, authority=entra.url, disable_instance_discovery=True, connection_verify=bundle
    )


def token_request(entra: EntraEmulator, bundle: str, tenant: str = TENANT, **form: str) -> requests.Response:
    fields = {"grant_type": "client_credentials", "client_id": CLIENT, "scope": VAULT_SCOPE, **form}
    return requests.post(f"{entra.url}/{tenant}/oauth2/v2.0/token", data=fields, verify=bundle, timeout=10)


# -- TLS ---------------------------------------------------------------------------------------------
def test_tls_is_verified_against_the_local_ca_only(local_ca: LocalCA, entra: EntraEmulator, bundle: str) -> None:
    assert local_ca.server_context().minimum_version == ssl.TLSVersion.TLSv1_2
    url = f"{entra.url}/{TENANT}/v2.0/.well-known/openid-configuration"
    assert requests.get(url, verify=bundle, timeout=10).status_code == 200
    assert requests.get(url.replace("127.0.0.1", "localhost"), verify=bundle, timeout=10).status_code == 200
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(url, timeout=10)  # the public roots do not vouch for the sandbox
    # azure-identity without connection_verify trusts only the public roots too (retry_total=0: fail fast).
    credential = ClientSecretCredential(
        TENANT, CLIENT, SECRET, authority=entra.url, disable_instance_discovery=True, retry_total=0
    )
    with pytest.raises((ClientAuthenticationError, ServiceRequestError)):
        credential.get_token(VAULT_SCOPE)


def test_stop_closes_kept_alive_connections(local_ca: LocalCA, bundle: str) -> None:
    session = requests.Session()
    with EntraEmulator(local_ca) as entra:
        entra.register_app(TENANT, CLIENT)
        url = f"{entra.url}/{TENANT}/discovery/v2.0/keys"
        assert session.get(url, verify=bundle, timeout=5).status_code == 200
    with pytest.raises(requests.exceptions.ConnectionError):
        session.get(url, verify=bundle, timeout=5)


# -- Data Collector: signature -------------------------------------------------------------------------
KNOWN_KEY = "a2V5cmVwb3J0LXNhbmRib3gta25vd24tYW5zd2VyLWtleS0wMTIzNDU2Nzg5"
KNOWN_DATE = "Mon, 04 Apr 2016 08:00:00 GMT"  # the documentation's example string to sign
KNOWN_SIGNATURE = "A8IUGNQkZ9w4C8xOEzCDFglP2E/bk7FRxJboeWnyt88="  # computed with `openssl dgst -hmac`


def test_signature_known_answer(local_ca: LocalCA, bundle: str) -> None:
    assert sign(KNOWN_KEY, KNOWN_DATE, 1024) == KNOWN_SIGNATURE
    assert signature(KNOWN_KEY, KNOWN_DATE, 1024) == KNOWN_SIGNATURE
    # The emulator accepts exactly that header, on that date, for a 1024-byte body.
    frozen = datetime(2016, 4, 4, 8, 0, 30, tzinfo=UTC)
    with DataCollectorEmulator(local_ca, WORKSPACE, KNOWN_KEY, clock=lambda: frozen) as dc:
        record = b'{"Message": "' + b"x" * 1000 + b'"}'
        body = record + b" " * (1024 - len(record))
        headers = {
            "Content-Type": "application/json",
            "Log-Type": "KnownAnswer",
            "x-ms-date": KNOWN_DATE,
            "Authorization": f"SharedKey {WORKSPACE}:{KNOWN_SIGNATURE}",
        }
        response = requests.post(
            f"{dc.url}/api/logs?api-version=2016-04-01", data=body, headers=headers, verify=bundle, timeout=10
        )
        assert (response.status_code, response.content) == (200, b"")
        assert dc.posts[0].body_bytes == 1024


def test_accepts_a_correctly_signed_post(data_collector: DataCollectorEmulator, bundle: str) -> None:
    response = post_logs(data_collector, bundle, [{"Message": "hello"}])
    assert (response.status_code, response.content) == (200, b"")
    [post] = data_collector.posts
    assert (post.table, post.records, post.log_type) == ("SandboxTest_CL", 1, "SandboxTest")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"key": base64.b64encode(b"another workspace key").decode()}, "An invalid signature"),
        (
            {"content_type": "application/json; charset=utf-8", "signed_content_type": "application/json"},
            "invalid signature",
        ),
        ({"date_offset": timedelta(minutes=-20)}, "x-ms-date"),
        ({"date_offset": timedelta(minutes=20)}, "x-ms-date"),
        ({"date": datetime.now(UTC).isoformat()}, "invalid date format"),
        ({"date": rfc1123(datetime.now(UTC)).replace(",", "", 1)}, "invalid date format"),
    ],
    ids=["wrong-key", "charset-not-signed", "stale-date", "future-date", "iso-date", "malformed-date"],
)
def test_rejects_bad_authorization_with_403(
    data_collector: DataCollectorEmulator, bundle: str, change: dict[str, Any], message: str
) -> None:
    if "date_offset" in change:  # taken when the test runs: at collection, a loaded run could outlast the skew
        change = {"date": rfc1123(datetime.now(UTC) + change["date_offset"])}
    response = post_logs(data_collector, bundle, [{"Message": "hello"}], **change)
    assert response.status_code == 403
    assert response.json()["Error"] == "InvalidAuthorization"
    assert message in response.json()["Message"]
    assert data_collector.posts == []


def test_rejects_missing_or_foreign_authorization(data_collector: DataCollectorEmulator, bundle: str) -> None:
    url = f"{data_collector.url}/api/logs?api-version=2016-04-01"
    base = {"Content-Type": "application/json", "Log-Type": "SandboxTest", "x-ms-date": rfc1123(datetime.now(UTC))}
    missing = requests.post(url, data=b"[{}]", headers=base, verify=bundle, timeout=10)
    assert (missing.status_code, missing.json()["Message"]) == (403, "No Authorization header was specified")
    good = sign(KEY, base["x-ms-date"], 4)
    other_workspace = {**base, "Authorization": f"SharedKey 00000000-0000-0000-0000-000000000000:{good}"}
    assert requests.post(url, data=b"[{}]", headers=other_workspace, verify=bundle, timeout=10).status_code == 403
    bearer = {**base, "Authorization": f"Bearer {good}"}
    assert requests.post(url, data=b"[{}]", headers=bearer, verify=bundle, timeout=10).status_code == 403


def test_a_signed_empty_array_is_accepted_and_creates_nothing(
    data_collector: DataCollectorEmulator, bundle: str
) -> None:
    """What other shippers' healthchecks and `keyreport check` send: the signature is checked, no row is made."""
    response = post_logs(data_collector, bundle, b"[]")
    assert (response.status_code, response.content) == (200, b"")
    assert data_collector.tables() == {} and data_collector.posts[0].records == 0
    wrong_key = post_logs(data_collector, bundle, b"[]", key=base64.b64encode(b"another workspace key").decode())
    assert (wrong_key.status_code, wrong_key.json()["Error"]) == (403, "InvalidAuthorization")


def test_key_rotation_turns_the_old_key_into_403(data_collector: DataCollectorEmulator, bundle: str) -> None:
    new_key = base64.b64encode(b"the rotated workspace key, 32 by").decode()
    data_collector.set_key(new_key)
    assert post_logs(data_collector, bundle, {"a": 1}).status_code == 403
    assert post_logs(data_collector, bundle, {"a": 1}, key=new_key).status_code == 200


# -- Data Collector: request validation ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"log_type": "Bad-Type"}, 400, "InvalidLogType"),
        ({"log_type": "A" * 101}, 400, "InvalidLogType"),
        ({"log_type": None}, 400, "MissingLogType"),
        ({"query": ""}, 400, "MissingApiVersion"),
        ({"query": "?api-version=2023-01-01"}, 400, "InvalidApiVersion"),
        ({"content_type": "text/plain"}, 400, "UnsupportedContentType"),
    ],
)
def test_rejects_bad_requests_with_documented_codes(
    data_collector: DataCollectorEmulator, bundle: str, change: dict[str, Any], status: int, error: str
) -> None:
    response = post_logs(data_collector, bundle, [{"Message": "hello"}], **change)
    assert (response.status_code, response.json()["Error"]) == (status, error)


def test_log_type_of_100_letters_digits_and_underscores_is_fine(
    data_collector: DataCollectorEmulator, bundle: str
) -> None:
    log_type = ("AWS_Key_Report_2" * 7)[:100]
    assert post_logs(data_collector, bundle, {"a": 1}, log_type=log_type).status_code == 200
    assert data_collector.tables() == {f"{log_type}_CL": 1}


@pytest.mark.parametrize(
    "payload",
    [
        b"{not json",
        b"[1, 2]",
        b'"text"',
        b'[{"a": NaN}]',
        [{"TimeGenerated": "2024-01-01T00:00:00Z"}],
        [{"tenant": "x"}],
        [{"RawData": "x"}],
        [{"has space": 1}],
        [{"A" * 44: "x"}],  # A..._s is 46 characters
        [{f"c{i}": i for i in range(501)}],
    ],
    ids=["syntax", "scalars", "string", "nan", "TimeGenerated", "tenant", "RawData", "name", "long", "501"],
)
def test_rejects_bad_bodies_with_400(data_collector: DataCollectorEmulator, bundle: str, payload: Any) -> None:
    response = post_logs(data_collector, bundle, payload)
    assert (response.status_code, response.json()["Error"]) == (400, "InvalidDataFormat")
    assert data_collector.tables() == {}


def test_posts_over_30_mb_get_404(data_collector: DataCollectorEmulator, bundle: str) -> None:
    records = b",".join([b'{"Blob": "' + b"x" * 1000 + b'"}'] * 29_600)
    at_limit = b"[" + records + b"]" + b" " * (30_000_000 - len(records) - 2)
    assert post_logs(data_collector, bundle, at_limit).status_code == 200
    response = post_logs(data_collector, bundle, at_limit + b" ")
    assert (response.status_code, response.content) == (404, b"")
    assert [p.body_bytes for p in data_collector.posts] == [30_000_000]


def test_long_field_values_are_truncated_to_32_kb(data_collector: DataCollectorEmulator, bundle: str) -> None:
    assert post_logs(data_collector, bundle, {"Blob": "é" * 20_000}).status_code == 200
    [row] = data_collector.rows("SandboxTest_CL")
    assert len(row["Blob_s"].encode()) == 32 * 1024
    assert data_collector.posts[0].truncated_fields == 1


# -- Data Collector: storage and types -----------------------------------------------------------------
def test_rows_get_the_documented_type_suffixes(data_collector: DataCollectorEmulator, bundle: str) -> None:
    run_id = "8145D822-13A7-44AD-859C-36F31A84F6DD"
    record = {
        "loggedDate": "2026-11-23T08:00:00Z",
        "user": "alice",
        "RunId": run_id,
        "RunIdNoDashes": run_id.replace("-", ""),
        "CreateDate": "2024-01-02T03:04:05.625+01:00",
        "KeyAgeDays": 42,
        "Ratio": 0.5,
        "NeverUsed": False,
        "Nested": {"a": [1, 2]},
        "KeyFingerprint": "kfp-" + "ab" * 16,
        "LastUsedDate": None,
    }
    now = datetime.now(UTC).replace(microsecond=0)
    record["loggedDate"] = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    headers = {"time-generated-field": "loggedDate", "x-ms-AzureResourceId": "/subscriptions/x/resourceGroups/y"}
    assert post_logs(data_collector, bundle, [record], headers=headers).status_code == 200
    [row] = data_collector.rows("SandboxTest_CL")
    assert row == {
        "TenantId": WORKSPACE,
        "SourceSystem": "RestAPI",
        "Type": "SandboxTest_CL",
        "_ResourceId": "/subscriptions/x/resourceGroups/y",
        "TimeGenerated": record["loggedDate"],
        "loggedDate_t": record["loggedDate"],
        "user_s": "alice",
        "RunId_g": run_id.lower(),
        "RunIdNoDashes_g": run_id.lower(),
        "CreateDate_t": "2024-01-02T02:04:05.625Z",
        "KeyAgeDays_d": 42.0,
        "Ratio_d": 0.5,
        "NeverUsed_b": False,
        "Nested_s": '{"a":[1,2]}',
        "KeyFingerprint_s": "kfp-" + "ab" * 16,
    }
    assert data_collector.columns("SandboxTest_CL")["RunId_g"] == "guid"


def test_time_generated_falls_back_to_ingestion_time(data_collector: DataCollectorEmulator, bundle: str) -> None:
    old = {"When": "2020-01-01T00:00:00Z"}
    before = datetime.now(UTC) - timedelta(seconds=1)
    assert post_logs(data_collector, bundle, [old, {"Other": 1}], headers={"time-generated-field": "When"}).ok
    rows = data_collector.rows("SandboxTest_CL")
    assert all(datetime.fromisoformat(r["TimeGenerated"]) >= before for r in rows)
    assert data_collector.posts[0].time_generated_fallbacks == 2
    assert post_logs(data_collector, bundle, {"x": 1}, headers={"time-generated-field": ""}).ok


def test_a_column_keeps_its_type_and_other_values_get_new_columns(
    data_collector: DataCollectorEmulator, bundle: str
) -> None:
    def send(record: dict[str, Any]) -> None:
        assert post_logs(data_collector, bundle, [record]).status_code == 200

    send({"number": 1, "boolean": True, "string": "text"})
    send({"number": "2", "boolean": "false", "string": "more"})  # strings convert to the existing types
    send({"number": "many", "boolean": 3, "string": 4})  # these cannot: new columns
    rows = data_collector.rows("SandboxTest_CL")
    assert [{k: v for k, v in r.items() if k[0].islower()} for r in rows] == [
        {"number_d": 1.0, "boolean_b": True, "string_s": "text"},
        {"number_d": 2.0, "boolean_b": False, "string_s": "more"},
        {"number_s": "many", "boolean_d": 3.0, "string_d": 4.0},
    ]
    assert list(data_collector.columns("SandboxTest_CL")) == [
        "number_d",
        "boolean_b",
        "string_s",
        "number_s",
        "boolean_d",
        "string_d",
    ]


def test_a_post_is_atomic(data_collector: DataCollectorEmulator, bundle: str) -> None:
    assert post_logs(data_collector, bundle, [{"ok": 1}, {"tenant": "reserved"}]).status_code == 400
    assert data_collector.rows("SandboxTest_CL") == []
    assert data_collector.columns("SandboxTest_CL") == {}


def test_read_back_over_https(data_collector: DataCollectorEmulator, bundle: str) -> None:
    assert post_logs(data_collector, bundle, [{"user": "alice"}, {"user": "bob"}]).ok
    rows = requests.get(f"{data_collector.url}/_sandbox/tables/SandboxTest_CL", verify=bundle, timeout=10)
    assert [r["user_s"] for r in rows.json()] == ["alice", "bob"]
    listing = requests.get(f"{data_collector.url}/_sandbox/tables", verify=bundle, timeout=10)
    assert listing.json() == {"tables": {"SandboxTest_CL": 2}}
    missing = requests.get(f"{data_collector.url}/_sandbox/tables/Nope_CL", verify=bundle, timeout=10)
    assert missing.status_code == 404


def test_injected_faults_then_normal_service(data_collector: DataCollectorEmulator, bundle: str) -> None:
    data_collector.fail_next(429, count=2, retry_after=3)
    data_collector.fail_next(503)
    statuses = [post_logs(data_collector, bundle, {"a": 1}) for _ in range(4)]
    assert [r.status_code for r in statuses] == [429, 429, 503, 200]
    assert statuses[0].headers["Retry-After"] == "3"
    assert statuses[2].json()["Error"] == "ServiceUnavailable"
    assert len(data_collector.posts) == 1
    assert [e.status for e in data_collector.history] == [429, 429, 503, 200]


# -- Entra -------------------------------------------------------------------------------------------------
def test_client_secret_credential_gets_a_verifiable_token(entra: EntraEmulator, bundle: str) -> None:
    token = secret_credential(entra, bundle).get_token(VAULT_SCOPE)
    claims = entra.verify_token(token.token, "https://vault.azure.net", TENANT)
    assert (claims["aud"], claims["tid"], claims["appid"], claims["azp"]) == (
        "https://vault.azure.net",
        TENANT,
        CLIENT,
        CLIENT,
    )
    assert claims["iss"] == f"{entra.url}/{TENANT}/v2.0"
    assert 3500 < claims["exp"] - time.time() <= 3600
    # azure-identity dates expiry from when it received the answer: a second may tick between issue and receipt.
    assert abs(token.expires_on - claims["exp"]) <= 2
    assert entra.tokens_issued == 1
    header = jwt.get_unverified_header(token.token)
    assert (header["alg"], header["kid"]) == ("RS256", entra.key_id)


def test_discovery_documents(entra: EntraEmulator, bundle: str) -> None:
    config = requests.get(f"{entra.url}/{TENANT}/v2.0/.well-known/openid-configuration", verify=bundle, timeout=10)
    document = config.json()
    assert document["token_endpoint"] == f"{entra.url}/{TENANT}/oauth2/v2.0/token"
    assert {"issuer", "authorization_endpoint", "device_authorization_endpoint", "jwks_uri"} <= document.keys()
    keys = requests.get(document["jwks_uri"], verify=bundle, timeout=10).json()["keys"]
    assert [(k["kty"], k["kid"]) for k in keys] == [("RSA", entra.key_id)]
    # A token verifies with nothing but the published JWKS.
    token = entra.issue_token(TENANT, CLIENT, "api://x")
    public = jwt.PyJWK(keys[0]).key
    assert jwt.decode(token, public, algorithms=["RS256"], audience="api://x")["tid"] == TENANT
    unknown = requests.get(f"{entra.url}/nope/v2.0/.well-known/openid-configuration", verify=bundle, timeout=10)
    assert unknown.status_code == 400
    assert unknown.json()["error_codes"] == [90002]


def test_wrong_secret_is_refused_like_entra(entra: EntraEmulator, bundle: str) -> None:
    with pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
        secret_credential(entra, bundle, secret="wrong").get_token(VAULT_SCOPE)
    response = token_request(entra, bundle, client_secret="wrong")
    body = response.json()
    assert (response.status_code, body["error"], body["error_codes"]) == (401, "invalid_client", [7000215])
    assert body["error_description"].startswith("AADSTS7000215: Invalid client secret provided.")
    assert "Trace ID: " in body["error_description"]
    assert entra.tokens_issued == 0


@pytest.mark.parametrize(
    ("tenant", "form", "status", "error", "code"),
    [
        (
            TENANT,
            {"client_id": "00000000-0000-0000-0000-000000000000", "client_secret": SECRET},
            400,
            "unauthorized_client",
            700016,
        ),
        ("11111111-2222-3333-4444-555555555555", {"client_secret": SECRET}, 400, "invalid_request", 90002),
        (TENANT, {}, 401, "invalid_client", 7000218),
        (
            TENANT,
            {"client_secret": SECRET, "scope": "https://vault.azure.net/secrets.read"},
            400,
            "invalid_scope",
            1002012,
        ),
        (TENANT, {"client_secret": SECRET, "grant_type": "password"}, 400, "unsupported_grant_type", 70003),
    ],
    ids=["unknown-client", "unknown-tenant", "no-credential", "scope-without-default", "grant-type"],
)
def test_token_endpoint_refusals(
    entra: EntraEmulator, bundle: str, tenant: str, form: dict[str, str], status: int, error: str, code: int
) -> None:
    response = token_request(entra, bundle, tenant, **form)
    assert (response.status_code, response.json()["error"], response.json()["error_codes"]) == (status, error, [code])


def test_secret_in_basic_auth_and_secret_rotation(entra: EntraEmulator, bundle: str) -> None:
    auth = requests.auth.HTTPBasicAuth(CLIENT, SECRET)
    fields = {"grant_type": "client_credentials", "scope": VAULT_SCOPE}
    url = f"{entra.url}/{TENANT}/oauth2/v2.0/token"
    assert requests.post(url, data=fields, auth=auth, verify=bundle, timeout=10).status_code == 200
    entra.add_secret(TENANT, CLIENT, "second")
    entra.remove_secret(TENANT, CLIENT, SECRET)
    assert token_request(entra, bundle, client_secret=SECRET).status_code == 401
    assert token_request(entra, bundle, client_secret="second").json()["token_type"] == "Bearer"


def test_certificate_credential(entra: EntraEmulator, bundle: str) -> None:
    issuer = trustme.CA(key_type=trustme.KeyType.RSA)
    registered = issuer.issue_cert("keyreport-app", key_type=trustme.KeyType.RSA)
    stranger = issuer.issue_cert("someone-else", key_type=trustme.KeyType.RSA)
    entra.add_certificate(TENANT, CLIENT, registered.cert_chain_pems[0].bytes())
    options: dict[str, Any] = {"authority": entra.url, "disable_instance_discovery": True, "connection_verify": bundle}
    pem = registered.private_key_pem.bytes() + registered.cert_chain_pems[0].bytes()
    token = CertificateCredential(TENANT, CLIENT, certificate_data=pem, **options).get_token(VAULT_SCOPE)
    assert entra.verify_token(token.token, "https://vault.azure.net")["appidacr"] == "2"
    other = stranger.private_key_pem.bytes() + stranger.cert_chain_pems[0].bytes()
    with pytest.raises(ClientAuthenticationError, match="AADSTS700027"):
        CertificateCredential(TENANT, CLIENT, certificate_data=other, **options).get_token(VAULT_SCOPE)


def test_federated_client_assertion(entra: EntraEmulator, bundle: str) -> None:
    idp_key = ec.generate_private_key(ec.SECP384R1())
    idp = "https://sts.sandbox.example/tokens"
    entra.add_federated_credential(
        TENANT, CLIENT, issuer=idp, subject="arn:aws:iam::1:role/x", key=idp_key.public_key()
    )

    def assertion(subject: str) -> str:
        now = int(time.time())
        claims = {"iss": idp, "sub": subject, "aud": "api://AzureADTokenExchange", "iat": now, "exp": now + 300}
        return jwt.encode(claims, idp_key, algorithm="ES384")

    options: dict[str, Any] = {"authority": entra.url, "disable_instance_discovery": True, "connection_verify": bundle}
    good = ClientAssertionCredential(TENANT, CLIENT, lambda: assertion("arn:aws:iam::1:role/x"), **options)
    assert entra.verify_token(good.get_token(VAULT_SCOPE).token, "https://vault.azure.net")["appid"] == CLIENT
    bad = ClientAssertionCredential(TENANT, CLIENT, lambda: assertion("arn:aws:iam::1:role/y"), **options)
    with pytest.raises(ClientAuthenticationError, match="AADSTS70021"):
        bad.get_token(VAULT_SCOPE)


def test_verify_token_rejects_what_it_should(entra: EntraEmulator, local_ca: LocalCA) -> None:
    good = entra.issue_token(TENANT, CLIENT, "https://vault.example")
    assert entra.verify_token(good, "https://vault.example")["appid"] == CLIENT
    cases = {
        "audience": (good, "https://other.example", None),
        "expired": (
            entra.issue_token(TENANT, CLIENT, "https://vault.example", lifetime=-60),
            "https://vault.example",
            None,
        ),
        "issuer": (good, "https://vault.example", "99999999-9999-9999-9999-999999999999"),
        "malformed": ("not-a-jwt", "https://vault.example", None),
    }
    for reason, (token, audience, tenant) in cases.items():
        with pytest.raises(TokenError) as caught:
            entra.verify_token(token, audience, tenant)
        assert caught.value.reason == reason
    with EntraEmulator(local_ca) as impostor:
        impostor.register_app(TENANT, CLIENT)
        forged = impostor.issue_token(TENANT, CLIENT, "https://vault.example")
    with pytest.raises(TokenError):
        entra.verify_token(forged, "https://vault.example")


def test_token_endpoint_faults(entra: EntraEmulator, bundle: str) -> None:
    entra.fail_next(503, retry_after=1)
    failed = token_request(entra, bundle, client_secret=SECRET)
    assert (failed.status_code, failed.json()["error"], failed.headers["Retry-After"]) == (
        503,
        "temporarily_unavailable",
        "1",
    )
    assert token_request(entra, bundle, client_secret=SECRET).status_code == 200


# -- Key Vault -----------------------------------------------------------------------------------------------
def test_secret_client_challenge_flow(entra: EntraEmulator, keyvault: KeyVaultEmulator, bundle: str) -> None:
    version = keyvault.set_secret("workspace-key", KEY)
    client = SecretClient(
        vault_url=keyvault.url,
        credential=secret_credential(entra, bundle),
        connection_verify=bundle,
        verify_challenge_resource=False,
    )
    secret = client.get_secret("workspace-key")
    assert (secret.value, secret.properties.version) == (KEY, version)
    assert secret.id == f"{keyvault.url}/secrets/workspace-key/{version}"
    assert [e.status for e in keyvault.history] == [401, 200]  # challenge, then the authorized request
    assert "Authorization" not in keyvault.history[0].headers
    assert entra.issued[0]["aud"] == keyvault.url  # scope came from the challenge's resource
    assert client.get_secret("workspace-key").value == KEY
    assert (keyvault.reads, entra.tokens_issued) == (2, 1)  # challenge and token are cached


def test_secret_client_resource_check_needs_a_subdomain(
    entra: EntraEmulator, keyvault: KeyVaultEmulator, bundle: str
) -> None:
    keyvault.set_secret("workspace-key", KEY)
    client = SecretClient(vault_url=keyvault.url, credential=secret_credential(entra, bundle), connection_verify=bundle)
    with pytest.raises(ValueError, match="does not match the requested domain"):
        client.get_secret("workspace-key")
    assert entra.tokens_issued == 0


def test_secret_rotation_serves_the_new_version(entra: EntraEmulator, keyvault: KeyVaultEmulator, bundle: str) -> None:
    first = keyvault.set_secret("Workspace-Key", "old")
    client = SecretClient(
        vault_url=keyvault.url,
        credential=secret_credential(entra, bundle),
        connection_verify=bundle,
        verify_challenge_resource=False,
    )
    assert client.get_secret("workspace-key").value == "old"  # names are case-insensitive
    keyvault.set_secret("workspace-key", "new")
    assert client.get_secret("workspace-key").value == "new"
    assert client.get_secret("workspace-key", first).value == "old"


def test_key_vault_refusals(entra: EntraEmulator, keyvault: KeyVaultEmulator, bundle: str) -> None:
    keyvault.set_secret("workspace-key", KEY)
    url = f"{keyvault.url}/secrets/workspace-key?api-version=7.6"

    def get(target: str = url, token: str | None = None) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.get(target, headers=headers, verify=bundle, timeout=10)

    challenge = get()
    assert challenge.status_code == 401
    assert challenge.headers["WWW-Authenticate"] == (
        f'Bearer authorization="{entra.url}/{TENANT}", resource="{keyvault.url}"'
    )
    assert challenge.json() == {
        "error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer or PoP token."}
    }
    good = entra.issue_token(TENANT, CLIENT, keyvault.url)
    assert get(token=good).json()["value"] == KEY
    wrong_audience = get(token=entra.issue_token(TENANT, CLIENT, "https://vault.azure.net"))
    assert wrong_audience.status_code == 401
    assert wrong_audience.json()["error"]["message"].startswith("AKV10022: Invalid audience.")
    assert "WWW-Authenticate" in wrong_audience.headers
    assert get(token=entra.issue_token(TENANT, CLIENT, keyvault.url, lifetime=-60)).status_code == 401
    assert get(f"{keyvault.url}/secrets/workspace-key", token=good).json()["error"]["code"] == "BadParameter"
    missing = get(f"{keyvault.url}/secrets/nope?api-version=7.6", token=good)
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "SecretNotFound")
    keyvault.forbid(CLIENT)
    forbidden = get(token=good)
    assert (forbidden.status_code, forbidden.json()["error"]["innererror"]["code"]) == (403, "ForbiddenByRbac")
    keyvault.fail_next(429, retry_after=2)
    throttled = get(token=good)
    assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, "2")
