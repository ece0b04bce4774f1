"""The sandbox's identity additions, held to the protocol: people's sign-in flows in the Entra emulator,
subject name / issuer trust, and sts:GetWebIdentityToken in moto."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import jwt
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization

from sandbox.auth_modes import ClientCertificate, make_certificate
from sandbox.aws import AwsSandbox
from sandbox.entra import EntraEmulator
from sandbox.sts_federation import issuer_for, principal_arn
from tests.sandbox.conftest import CLIENT, TENANT

PUBLIC = "5f0e4d3c-2b1a-4987-8654-3210fedcba98"
USER = "ana@sandbox.example"
VAULT_SCOPE = "https://vault.azure.net/.default offline_access openid profile"


@pytest.fixture
def people(entra: EntraEmulator) -> EntraEmulator:
    entra.users.add_public_client(TENANT, PUBLIC)
    entra.users.add_user(TENANT, USER, "Ana")
    return entra


def post(entra: EntraEmulator, bundle: str, route: str, **form: str) -> requests.Response:
    return requests.post(f"{entra.url}/{TENANT}/oauth2/v2.0/{route}", data=form, verify=bundle, timeout=10)


def error_of(response: requests.Response) -> tuple[int, str, list[int]]:
    body = response.json()
    return response.status_code, body["error"], body["error_codes"]


# -- device code -----------------------------------------------------------------------------------------


def test_device_code_is_pending_until_approved_then_redeemed_once(people: EntraEmulator, bundle: str) -> None:
    flow = post(people, bundle, "devicecode", client_id=PUBLIC, scope=VAULT_SCOPE).json()
    assert flow["interval"] >= 1 and flow["expires_in"] == 900 and flow["user_code"] in flow["message"]
    grant = {"grant_type": "urn:ietf:params:oauth:grant-type:device_code", "client_id": PUBLIC}

    pending = post(people, bundle, "token", device_code=flow["device_code"], **grant)
    assert error_of(pending) == (400, "authorization_pending", [70016])

    people.users.approve(flow["user_code"], USER)
    tokens = post(people, bundle, "token", device_code=flow["device_code"], **grant).json()
    claims = people.verify_token(tokens["access_token"], "https://vault.azure.net", TENANT)
    assert (claims["idtyp"], claims["upn"], claims["appid"], claims["appidacr"]) == ("user", USER, PUBLIC, "0")
    id_token = jwt.decode(
        tokens["id_token"], jwt.PyJWKSet.from_dict(people.jwks()).keys[0].key, algorithms=["RS256"], audience=PUBLIC
    )
    assert id_token["preferred_username"] == USER and id_token["tid"] == TENANT
    client_info = base64.urlsafe_b64decode(tokens["client_info"] + "==").decode()
    assert f'"uid": "{claims["oid"]}"' in client_info and f'"utid": "{TENANT}"' in client_info

    again = post(people, bundle, "token", device_code=flow["device_code"], **grant)
    assert error_of(again) == (400, "invalid_grant", [70000])


def test_a_refresh_token_gets_a_token_for_another_resource(people: EntraEmulator, bundle: str) -> None:
    flow = post(people, bundle, "devicecode", client_id=PUBLIC, scope=VAULT_SCOPE).json()
    people.users.approve(flow["user_code"], USER)
    grant = {"grant_type": "urn:ietf:params:oauth:grant-type:device_code", "client_id": PUBLIC}
    refresh = post(people, bundle, "token", device_code=flow["device_code"], **grant).json()["refresh_token"]

    monitor = post(
        people,
        bundle,
        "token",
        grant_type="refresh_token",
        client_id=PUBLIC,
        refresh_token=refresh,
        scope="https://monitor.azure.com/.default offline_access",
    ).json()
    assert people.verify_token(monitor["access_token"], "https://monitor.azure.com")["upn"] == USER
    stolen = post(people, bundle, "token", grant_type="refresh_token", client_id=CLIENT, refresh_token=refresh)
    assert error_of(stolen)[0] == 401  # a confidential app is not a public client


def test_people_flows_need_a_public_client_app(people: EntraEmulator, bundle: str) -> None:
    response = post(people, bundle, "devicecode", client_id=CLIENT, scope=VAULT_SCOPE)
    assert error_of(response) == (401, "invalid_client", [7000218])


# -- authorization code with PKCE (the browser) ---------------------------------------------------------------


def authorize(entra: EntraEmulator, bundle: str, verifier: str, redirect: str = "http://localhost:8400") -> Any:
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = {
        "client_id": PUBLIC,
        "response_type": "code",
        "redirect_uri": redirect,
        "scope": VAULT_SCOPE,
        "state": "s-1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    return requests.get(
        f"{entra.url}/{TENANT}/oauth2/v2.0/authorize", params=query, verify=bundle, timeout=10, allow_redirects=False
    )


def test_browser_sign_in_redirects_with_a_code_that_needs_the_verifier(people: EntraEmulator, bundle: str) -> None:
    verifier = secrets.token_urlsafe(43)
    page = authorize(people, bundle, verifier)
    assert page.status_code == 200 and "Sign in" in page.text  # nobody signed in to the browser yet

    people.users.sign_in_browser(TENANT, USER)
    redirect = authorize(people, bundle, verifier)
    assert redirect.status_code == 302
    location = urlsplit(redirect.headers["Location"])
    assert (location.hostname, location.port) == ("localhost", 8400)
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert query["state"] == "s-1"
    grant = {"grant_type": "authorization_code", "client_id": PUBLIC, "redirect_uri": "http://localhost:8400"}

    wrong = post(people, bundle, "token", code=query["code"], code_verifier="not-the-verifier", **grant)
    assert error_of(wrong) == (400, "invalid_grant", [501481])
    second = authorize(people, bundle, verifier)
    code = parse_qs(urlsplit(second.headers["Location"]).query)["code"][0]
    tokens = post(people, bundle, "token", code=code, code_verifier=verifier, **grant).json()
    assert people.verify_token(tokens["access_token"], "https://vault.azure.net")["upn"] == USER


def test_only_localhost_redirects_are_allowed(people: EntraEmulator, bundle: str) -> None:
    people.users.sign_in_browser(TENANT, USER)
    response = authorize(people, bundle, "v" * 43, redirect="https://attacker.example/callback")
    assert error_of(response) == (400, "invalid_request", [50011])


# -- certificates: removal, subject name / issuer ---------------------------------------------------------------


def assertion(entra: EntraEmulator, certificate: ClientCertificate, *, chain: bool) -> str:
    der = certificate.certificate.public_bytes(serialization.Encoding.DER)
    header: dict[str, Any] = {"x5t#S256": base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()}
    if chain:
        links = [certificate.certificate, *certificate.chain]
        header["x5c"] = [base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode() for c in links]
    now = int(time.time())
    claims = {"aud": entra.token_endpoint(TENANT), "iss": CLIENT, "sub": CLIENT, "jti": str(uuid.uuid4())}
    return jwt.encode(claims | {"nbf": now, "exp": now + 600}, certificate.key, algorithm="RS256", headers=header)


def assertion_grant(entra: EntraEmulator, bundle: str, signed: str) -> requests.Response:
    return post(
        entra,
        bundle,
        "token",
        grant_type="client_credentials",
        client_id=CLIENT,
        scope="https://vault.azure.net/.default",
        client_assertion_type="urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        client_assertion=signed,
    )


def test_a_removed_certificate_is_refused(entra: EntraEmulator, bundle: str) -> None:
    uploaded = make_certificate("keyreport")
    entra.add_certificate(TENANT, CLIENT, uploaded.certificate)
    entra.add_certificate(TENANT, CLIENT, uploaded.certificate)  # uploading twice keeps one credential
    assert assertion_grant(entra, bundle, assertion(entra, uploaded, chain=False)).status_code == 200
    entra.remove_certificate(TENANT, CLIENT, uploaded.certificate)
    assert error_of(assertion_grant(entra, bundle, assertion(entra, uploaded, chain=False)))[2] == [700027]


def test_subject_name_and_issuer_trust_needs_the_chain_the_subject_and_the_issuer(
    entra: EntraEmulator, bundle: str
) -> None:
    ca, other_ca = make_certificate("Issuing CA", ca=True), make_certificate("Other CA", ca=True)
    leaf = make_certificate("keyreport.example", issuer=ca)
    entra.add_trusted_subject(TENANT, CLIENT, subject=leaf.certificate.subject, issuer=ca.certificate)

    assert assertion_grant(entra, bundle, assertion(entra, leaf, chain=True)).status_code == 200
    refused = [
        assertion(entra, leaf, chain=False),  # no x5c: nothing to match the subject against
        assertion(entra, make_certificate("someone-else.example", issuer=ca), chain=True),  # subject not trusted
        assertion(entra, make_certificate("keyreport.example", issuer=other_ca), chain=True),  # other issuer
    ]
    for signed in refused:
        assert error_of(assertion_grant(entra, bundle, signed)) == (401, "invalid_client", [700027])


# -- sts:GetWebIdentityToken in moto --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def aws() -> Iterator[AwsSandbox]:
    with AwsSandbox() as sandbox:
        yield sandbox


def role_sts(aws: AwsSandbox, name: str) -> Any:
    aws.reset()
    arn = aws.client("iam").create_role(RoleName=name, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    credentials = aws.client("sts").assume_role(RoleArn=arn, RoleSessionName="session")["Credentials"]
    session = boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=aws.region,
    )
    # No client-side validation: these tests are about what the server refuses.
    return session.client("sts", endpoint_url=aws.endpoint_url, config=Config(parameter_validation=False)), arn


def test_the_token_names_the_role_and_verifies_with_the_issuer_key(aws: AwsSandbox) -> None:
    issuer = issuer_for(aws.account_id)
    sts, role = role_sts(aws, "fn-role")
    answer = sts.get_web_identity_token(Audience=["api://AzureADTokenExchange"], SigningAlgorithm="RS256")
    claims = jwt.decode(
        answer["WebIdentityToken"], issuer.public_key, algorithms=["RS256"], audience="api://AzureADTokenExchange"
    )
    assert (claims["iss"], claims["sub"]) == (issuer.url, role)
    assert claims["exp"] - claims["iat"] == 300  # the documented default
    assert claims["https://sts.amazonaws.com/"]["aws_account"] == aws.account_id
    assert abs(answer["Expiration"].timestamp() - claims["exp"]) < 1


@pytest.mark.parametrize(
    ("change", "request_args", "code"),
    [
        (None, {"SigningAlgorithm": "HS256"}, "ValidationError"),
        (None, {"DurationSeconds": 30}, "ValidationError"),
        ("disable", {}, "OutboundWebIdentityFederationDisabledException"),
        ("deny", {}, "AccessDenied"),
    ],
)
def test_refusals_carry_the_services_error_codes(
    aws: AwsSandbox, monkeypatch: pytest.MonkeyPatch, change: str | None, request_args: dict[str, Any], code: str
) -> None:
    issuer = issuer_for(aws.account_id)
    sts, role = role_sts(aws, "fn-role")
    if change == "disable":
        monkeypatch.setattr(issuer, "enabled", False)
    if change == "deny":
        monkeypatch.setattr(issuer, "denied", {role})
    with pytest.raises(ClientError) as refused:
        sts.get_web_identity_token(**({"Audience": ["a"], "SigningAlgorithm": "RS256"} | request_args))
    assert refused.value.response["Error"]["Code"] == code


def test_principal_arn_maps_sessions_to_their_role() -> None:
    assert principal_arn("arn:aws:sts::123456789012:assumed-role/fn/s1") == "arn:aws:iam::123456789012:role/fn"
    assert principal_arn("arn:aws-us-gov:sts::1:assumed-role/r/s") == "arn:aws-us-gov:iam::1:role/r"
    assert principal_arn("arn:aws:iam::123456789012:user/ana") == "arn:aws:iam::123456789012:user/ana"
