"""Every KEYREPORT_AZURE_AUTH mode end to end over real sockets and TLS: the real azure-identity / MSAL code
path against the Entra emulator, which verifies each client assertion's signature (STS issuer key, KMS
public key, certificate), then Key Vault, then a stored row. Rotation, refusals, and what never leaks."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
import moto.secretsmanager.models
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

from keyreport.errors import RunFailed
from keyreport.settings import ConfigError
from sandbox import browser
from sandbox.auth_modes import CERTIFICATE_SECRET_NAME, make_certificate
from sandbox.entra import TOKEN_EXCHANGE_AUDIENCE
from sandbox.estate import seed_client_secret
from sandbox.https import Request, Response
from sandbox.stack import CLIENT_ID, CLIENT_SECRET_NAME, TENANT_ID, make_workspace_key
from tests.integration.conftest import World

MODES = ["federated", "kms", "certificate", "secret", "default"]
GONE = "arn:aws:secretsmanager:us-east-1:123456789012:secret:gone"


# -- what went over the wire ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    emulator: str
    method: str
    target: str
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return f"{self.method} {self.target}\n{self.headers}\n{self.body.decode('utf-8', 'replace')}"


@dataclass
class Wire:
    """Every request keyreport sent to the Azure stand-ins (headers and bodies, as a TLS-terminating proxy sees)."""

    seen: list[Seen] = field(default_factory=list)

    def to(self, emulator: str) -> list[Seen]:
        return [s for s in self.seen if s.emulator == emulator]

    def token_requests(self) -> list[dict[str, str]]:
        return [
            {k: v[0] for k, v in parse_qs(s.body.decode()).items()}
            for s in self.to("entra")
            if s.method == "POST" and s.target.endswith("/oauth2/v2.0/token")
        ]

    def bearer_tokens(self) -> list[str]:
        return [
            s.headers["Authorization"].removeprefix("Bearer ")
            for s in self.seen
            if s.headers.get("Authorization", "").startswith("Bearer ")
        ]

    def everything_but(self, *emulators: str) -> str:
        return "\n".join(s.text for s in self.seen if s.emulator not in emulators)


@pytest.fixture
def wire(world: World, monkeypatch: pytest.MonkeyPatch) -> Wire:
    wire = Wire()
    stack = world.stack
    for name, emulator in (("entra", stack.entra), ("keyvault", stack.keyvault), ("collector", stack.collector)):

        def spy(
            request: Request, _handle: Callable[[Request], Response] = emulator.handle, _name: str = name
        ) -> Response:
            wire.seen.append(Seen(_name, request.method, request.target, request.header_items(), request.body))
            return _handle(request)

        monkeypatch.setattr(emulator, "handle", spy)

    # AWS: the requests moto's WSGI app receives (the body is read and handed on unchanged).
    original = DomainDispatcherApplication.__call__

    def aws_spy(app: DomainDispatcherApplication, environ: dict[str, Any], start_response: Any) -> Any:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        headers = {k[5:]: str(v) for k, v in environ.items() if k.startswith("HTTP_")}
        target = f"{environ.get('PATH_INFO', '')}?{environ.get('QUERY_STRING', '')}"
        wire.seen.append(Seen("aws", environ["REQUEST_METHOD"], target, headers, body))
        return original(app, environ, start_response)

    monkeypatch.setattr(DomainDispatcherApplication, "__call__", aws_spy)
    return wire


@pytest.fixture
def secret_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Secrets Manager GetSecretValue calls served by moto (the sandbox's AWS), by secret id."""
    reads: list[str] = []
    backend = moto.secretsmanager.models.SecretsManagerBackend
    original = backend.get_secret_value

    def counting(self: Any, secret_id: str, *args: Any, **kwargs: Any) -> Any:
        reads.append(secret_id)
        return original(self, secret_id, *args, **kwargs)

    monkeypatch.setattr(backend, "get_secret_value", counting)
    return reads


def configure(world: World, monkeypatch: pytest.MonkeyPatch, mode: str, **extra: str) -> dict[str, str]:
    """The function's environment for `mode`, as a deployment would set it (nothing left from the last mode)."""
    world.configure(monkeypatch, world.stack.env(auth=mode) | extra)
    return world.env


def cli(env: dict[str, str], *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    """The CLI in its own process, configured only by its environment."""
    aws_free = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KEYREPORT_", "AZURE_"))}
    return subprocess.run(
        [sys.executable, "-m", "keyreport.cli", *args],
        env=aws_free | env | extra,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def body_lines(pem: str) -> list[str]:
    """The base64 lines of a PEM: any one of them appearing somewhere means key material leaked."""
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


def assertion_parts(form: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    assertion = form["client_assertion"]
    return jwt.get_unverified_header(assertion), jwt.decode(assertion, options={"verify_signature": False})


def verify(assertion: str, key: Any, audience: str) -> dict[str, Any]:
    return dict(jwt.decode(assertion, key, algorithms=["RS256"], audience=audience))


# -- every mode, end to end --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_each_mode_ships_every_key_through_its_own_credential_and_leaks_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], wire: Wire, mode: str
) -> None:
    env = configure(world, monkeypatch, mode)
    stack, modes = world.stack, world.stack.auth_modes
    assert modes is not None
    sts_tokens_before = len(modes.issuer.issued)
    wire.seen.clear()  # the set-up above stored the PEM in Secrets Manager: only the function's requests count

    summary = world.invoke()

    assert summary["Status"] == "ok" and summary["RecordsShipped"] == world.estate.key_count
    assert len(world.rows(summary["RunId"])) == world.estate.key_count
    [form] = wire.token_requests()  # one token, for Key Vault
    token_endpoint = stack.entra.token_endpoint(TENANT_ID)
    if mode in ("secret", "default"):
        assert form["client_secret"] == stack.client_secret and "client_assertion" not in form
    else:
        assert "client_secret" not in form
        header, claims = assertion_parts(form)
        if mode == "federated":
            assert len(modes.issuer.issued) == sts_tokens_before + 1
            claims = verify(form["client_assertion"], modes.issuer.public_key, TOKEN_EXCHANGE_AUDIENCE)
            assert (claims["iss"], claims["sub"]) == (modes.issuer.url, modes.role_arn)
        else:
            certificate = modes.kms_certificate if mode == "kms" else modes.client_certificate.certificate
            assert certificate is not None
            thumbprints = {"x5t": hashes.SHA1(), "x5t#S256": hashes.SHA256()}
            named = {k: b64url(certificate.fingerprint(h)) for k, h in thumbprints.items() if k in header}
            assert named and all(header[k].rstrip("=") == v for k, v in named.items())
            claims = verify(form["client_assertion"], certificate.public_key(), token_endpoint)
            assert claims["iss"] == claims["sub"] == CLIENT_ID
        if mode == "kms":
            assert header["alg"] == "RS256" and set(named) == {"x5t", "x5t#S256"}
            # The key Entra verified with is the one inside moto's KMS, read here straight from KMS.
            kms_key = stack.aws.client("kms").get_public_key(KeyId=env["KEYREPORT_KMS_KEY_ID"])["PublicKey"]
            verify(form["client_assertion"], serialization.load_der_public_key(kms_key), token_endpoint)

    # Nothing secret in any log line ...
    output = capsys.readouterr()
    logged = output.out + output.err
    assert '"run finished"' in logged
    pem_lines = body_lines(modes.client_certificate.pem)
    issued = wire.bearer_tokens()
    assertions = [f["client_assertion"] for f in wire.token_requests() if "client_assertion" in f]
    role_session = [env[name] for name in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN") if mode == "federated"]
    for secret in [*world.secrets(), *pem_lines, *role_session, *issued, *assertions]:
        assert secret not in logged
    assert "eyJ" not in logged  # no JWT at all: token, assertion, STS token
    # ... and on the wire each goes only where it must: secrets and assertions to Entra, tokens to Key Vault,
    # the workspace key and the private key nowhere, full key ids to IAM only.
    for secret in [stack.client_secret, *assertions, *pem_lines]:
        assert secret not in wire.everything_but("entra")
    for token in issued:
        assert token not in wire.everything_but("keyvault")
    to_azure = "\n".join(s.text for s in wire.seen if s.emulator != "aws")
    for secret in [stack.workspace_key, *pem_lines, *world.full_key_ids()]:
        assert secret not in to_azure
    to_aws = wire.everything_but("entra", "keyvault", "collector")
    assert "ListUsers" in to_aws  # the AWS side was captured too
    for secret in [stack.workspace_key, stack.client_secret, *issued, *assertions, *pem_lines]:
        assert secret not in to_aws


# -- rotation without a redeploy --------------------------------------------------------------------------


def rotate_workspace_key(world: World, label: str) -> None:
    """Forces the warm function back to Key Vault, and so to Entra, on its next run."""
    key = make_workspace_key(label)
    world.stack.collector.set_key(key)
    world.stack.keyvault.set_secret("la-workspace-key", key)


def token_statuses(world: World, since: int) -> list[int]:
    return [e.status for e in world.stack.entra.history[since:] if e.target.endswith("/oauth2/v2.0/token")]


def test_a_rotated_client_secret_is_read_again_once_by_a_warm_lambda(
    world: World, monkeypatch: pytest.MonkeyPatch, secret_reads: list[str]
) -> None:
    stack = world.stack
    monkeypatch.setattr(stack.entra, "token_lifetime", 120)  # tokens about to expire: every run asks Entra
    world.invoke()
    rotated = "kr~rotated-" + hashlib.sha256(os.urandom(16)).hexdigest()
    stack.entra.add_secret(TENANT_ID, CLIENT_ID, rotated)
    seed_client_secret(stack.aws, CLIENT_SECRET_NAME, rotated)
    stack.entra.remove_secret(TENANT_ID, CLIENT_ID, stack.client_secret)
    rotate_workspace_key(world, "rotated-with-the-client-secret")
    try:
        seen, reads = len(stack.entra.history), len(secret_reads)

        summary = world.invoke()

        assert summary["Status"] == "ok" and len(world.rows(summary["RunId"])) == world.estate.key_count
        assert token_statuses(world, seen) == [401, 200]  # the cached secret refused, the fresh one accepted
        assert len(secret_reads) - reads == 1
    finally:
        stack.entra.add_secret(TENANT_ID, CLIENT_ID, stack.client_secret)
        stack.entra.remove_secret(TENANT_ID, CLIENT_ID, rotated)


def test_a_rotated_certificate_in_secrets_manager_is_read_again_once_by_a_warm_lambda(
    world: World, monkeypatch: pytest.MonkeyPatch, secret_reads: list[str]
) -> None:
    stack = world.stack
    modes = stack.auth_modes
    assert modes is not None
    configure(world, monkeypatch, "certificate")
    monkeypatch.setattr(stack.entra, "token_lifetime", 120)
    world.invoke()
    old, new = modes.client_certificate.certificate, make_certificate("keyreport-rotated")
    stack.entra.add_certificate(TENANT_ID, CLIENT_ID, new.certificate)
    modes.store_certificate(new)
    stack.entra.remove_certificate(TENANT_ID, CLIENT_ID, old)
    rotate_workspace_key(world, "rotated-with-the-certificate")
    try:
        seen, reads = len(stack.entra.history), len(secret_reads)

        summary = world.invoke()

        assert summary["Status"] == "ok" and len(world.rows(summary["RunId"])) == world.estate.key_count
        assert token_statuses(world, seen) == [401, 200]
        assert [s for s in secret_reads[reads:]] == [world.env["KEYREPORT_AZURE_CERTIFICATE_ARN"]]
    finally:
        stack.entra.add_certificate(TENANT_ID, CLIENT_ID, old)
        stack.entra.remove_certificate(TENANT_ID, CLIENT_ID, new.certificate)


def test_a_certificate_with_its_chain_authenticates_by_subject_name_and_issuer(
    world: World, monkeypatch: pytest.MonkeyPatch, wire: Wire
) -> None:
    """Nothing uploaded to the app: Entra trusts the subject and the issuing CA, so the chain must be sent."""
    stack, modes = world.stack, world.stack.auth_modes
    assert modes is not None
    ca = make_certificate("keyreport sandbox issuing CA", ca=True)
    issued = make_certificate("keyreport.sn-i.example", issuer=ca)
    stack.entra.add_trusted_subject(TENANT_ID, CLIENT_ID, subject=issued.certificate.subject, issuer=ca.certificate)
    configure(world, monkeypatch, "certificate")
    modes.store_certificate(issued)

    summary = world.invoke()

    assert summary["Status"] == "ok" and len(world.rows(summary["RunId"])) == world.estate.key_count
    [form] = wire.token_requests()
    header, _ = assertion_parts(form)
    chain = [x509.load_der_x509_certificate(base64.b64decode(item)) for item in header["x5c"]]
    assert chain == [issued.certificate, ca.certificate]


def test_federated_uses_the_sovereign_clouds_exchange_audience(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    stack, modes = world.stack, world.stack.auth_modes
    assert modes is not None
    configure(world, monkeypatch, "federated", KEYREPORT_AZURE_CLOUD="usgov")
    stack.entra.add_federated_credential(
        TENANT_ID,
        CLIENT_ID,
        issuer=modes.issuer.url,
        subject=modes.role_arn,
        key=modes.issuer.public_key,
        audience="api://AzureADTokenExchangeUSGov",
    )
    summary = world.invoke()
    assert summary["Status"] == "ok"
    assert modes.issuer.issued[-1]["aud"] == "api://AzureADTokenExchangeUSGov"


# -- refusals: a clear reason, no traceback, nothing secret -----------------------------------------------


def failed_run(world: World, capsys: pytest.CaptureFixture[str]) -> str:
    """Runs, expects the failure the handler raises, returns everything it logged."""
    with pytest.raises(RunFailed) as failed:
        world.invoke()
    assert failed.value.summary.shipped == 0
    output = capsys.readouterr()
    return output.out + output.err


def test_a_malformed_pem_in_secrets_manager_is_named_not_quoted(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env = configure(world, monkeypatch, "certificate")
    broken = "-----BEGIN CERTIFICATE-----\n" + "TUlJQ" * 20 + "\n-----END CERTIFICATE-----\n"
    seed_client_secret(world.stack.aws, CERTIFICATE_SECRET_NAME, broken)
    logged = failed_run(world, capsys)
    arn = env["KEYREPORT_AZURE_CERTIFICATE_ARN"]
    assert f"the PEM in {arn} must hold exactly one private key (found 0)" in logged
    assert "TUlJQ" not in logged and "Traceback" not in logged


@pytest.mark.parametrize(
    ("spec", "usage", "says"),
    [
        ("ECC_NIST_P256", "SIGN_VERIFY", "has key spec ECC_NIST_P256; keyreport needs RSA_2048, RSA_3072 or RSA_4096"),
        ("RSA_2048", "ENCRYPT_DECRYPT", "has key usage ENCRYPT_DECRYPT; keyreport needs an RSA key with usage"),
    ],
)
def test_a_kms_key_that_cannot_sign_rs256_is_explained(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], spec: str, usage: str, says: str
) -> None:
    configure(world, monkeypatch, "kms")
    kms = world.stack.aws.client("kms")
    wrong = kms.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]["KeyId"]  # type: ignore[arg-type]
    monkeypatch.setenv("KEYREPORT_KMS_KEY_ID", wrong)
    assert f"KMS key {wrong} {says}" in failed_run(world, capsys)


def test_a_certificate_not_made_from_the_kms_key_is_refused_before_entra(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], wire: Wire
) -> None:
    configure(world, monkeypatch, "kms")
    other = make_certificate("keyreport").certificate.public_bytes(serialization.Encoding.PEM).decode()
    monkeypatch.setenv("KEYREPORT_KMS_CERTIFICATE", other)
    assert "does not hold the public key of KMS key alias/keyreport-entra" in failed_run(world, capsys)
    assert wire.token_requests() == []


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ("deny", "the function's role may not call sts:GetWebIdentityToken: allow it in the role's policy"),
        ("disable", "outbound identity federation is not enabled for this AWS account"),
    ],
)
def test_sts_refusals_are_explained(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], change: str, says: str
) -> None:
    modes = world.stack.auth_modes
    assert modes is not None
    configure(world, monkeypatch, "federated")
    if change == "deny":
        monkeypatch.setattr(modes.issuer, "denied", {modes.role_arn})
    else:
        monkeypatch.setattr(modes.issuer, "enabled", False)
    assert says in failed_run(world, capsys)


def test_entra_refusing_an_untrusted_role_is_reported_with_its_code(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    configure(world, monkeypatch, "federated")
    aws = world.stack.aws
    arn = aws.client("iam").create_role(RoleName="someone-else", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    other = aws.client("sts").assume_role(RoleArn=arn, RoleSessionName="other")["Credentials"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", other["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", other["SecretAccessKey"])
    monkeypatch.setenv("AWS_SESSION_TOKEN", other["SessionToken"])
    logged = failed_run(world, capsys)
    assert "AADSTS70021: No matching federated identity record found for presented assertion" in logged
    assert "eyJ" not in logged


def test_missing_tenant_is_a_configuration_error_before_any_call(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], wire: Wire
) -> None:
    configure(world, monkeypatch, "federated")
    monkeypatch.delenv("AZURE_TENANT_ID")
    wire.seen.clear()
    with pytest.raises(ConfigError, match="AZURE_TENANT_ID is required for KEYREPORT_AZURE_AUTH=federated"):
        world.invoke()
    assert wire.seen == []  # refused before any AWS or Azure call
    assert '"configuration error"' in capsys.readouterr().err


@pytest.mark.parametrize(
    ("mode", "change", "code", "says"),
    [
        ("federated", {"AZURE_TENANT_ID": ""}, 2, "AZURE_TENANT_ID is required for KEYREPORT_AZURE_AUTH=federated"),
        ("kms", {"KEYREPORT_KMS_CERTIFICATE": "bm90IGEgY2VydA=="}, 2, "KEYREPORT_KMS_CERTIFICATE is neither a PEM"),
        ("certificate", {"KEYREPORT_AZURE_CERTIFICATE_ARN": GONE}, 1, f"cannot read {GONE} from AWS Secrets Manager"),
    ],
)
def test_the_cli_reports_auth_problems_in_one_line_without_a_traceback(
    world: World, monkeypatch: pytest.MonkeyPatch, mode: str, change: dict[str, str], code: int, says: str
) -> None:
    env = configure(world, monkeypatch, mode)
    done = cli(env, "run", "--sink", "data_collector", **change)
    assert done.returncode == code, done.stderr
    assert says in done.stderr and "Traceback" not in done.stderr


def test_the_cli_explains_an_sts_refusal_without_a_traceback(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    modes = world.stack.auth_modes
    assert modes is not None
    env = configure(world, monkeypatch, "federated")
    monkeypatch.setattr(modes.issuer, "denied", {modes.role_arn})  # the CLI's process reaches this moto
    done = cli(env, "run")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "the function's role may not call sts:GetWebIdentityToken" in done.stderr


# -- keyreport kms-certificate, then kms mode with what it printed -------------------------------------------


def test_kms_certificate_command_makes_what_entra_accepts(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    stack = world.stack
    env = configure(world, monkeypatch, "secret")
    kms = stack.aws.client("kms")
    key_id = kms.create_key(KeySpec="RSA_4096", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    out = tmp_path / "keyreport.pem"

    done = cli(env, "kms-certificate", "--key-id", key_id, "--subject", "CN=keyreport,O=Example", "--out", str(out))

    assert done.returncode == 0, done.stderr
    certificate = x509.load_pem_x509_certificate(out.read_bytes())
    public = serialization.load_der_public_key(kms.get_public_key(KeyId=key_id)["PublicKey"])
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    assert certificate.public_key().public_bytes(serialization.Encoding.DER, spki) == public.public_bytes(
        serialization.Encoding.DER, spki
    )
    certificate.verify_directly_issued_by(certificate)
    assert certificate.fingerprint(hashes.SHA1()).hex().upper() in done.stderr  # the portal's form
    printed = dict(line.split("=", 1) for line in done.stdout.splitlines())
    assert printed["KEYREPORT_AZURE_AUTH"] == "kms" and printed["KEYREPORT_KMS_KEY_ID"] == key_id

    stack.entra.add_certificate(TENANT_ID, CLIENT_ID, certificate)  # az ad app credential reset --cert @...
    try:
        configure(world, monkeypatch, "kms", **printed)
        summary = world.invoke()
        assert summary["Status"] == "ok" and len(world.rows(summary["RunId"])) == world.estate.key_count
    finally:
        stack.entra.remove_certificate(TENANT_ID, CLIENT_ID, certificate)


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["--subject", "keyreport"], 2, "--subject 'keyreport' is not a distinguished name like CN=keyreport"),
        (["--days", "0"], 2, "--days must be between 1 and 3650"),
        (["--key-id", "alias/missing"], 1, "KMS key alias/missing does not exist in this account and region"),
        (["--out", "/nonexistent/dir/c.pem"], 2, "--out /nonexistent/dir/c.pem: cannot write the certificate"),
    ],
)
def test_kms_certificate_command_refusals(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, args: list[str], code: int, says: str
) -> None:
    env = configure(world, monkeypatch, "secret")
    key_id = world.stack.aws.client("kms").create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    base = ["kms-certificate", "--key-id", key_id["KeyId"], "--out", str(tmp_path / "c.pem")]
    done = cli(env, *base, *args)
    assert done.returncode == code and says in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "c.pem").exists()


# -- people signing in from the CLI -------------------------------------------------------------------------

PUBLIC_CLIENT = "7d1c0b2a-3e4f-4a5b-8c6d-9e0f1a2b3c4d"
PERSON = "ana@sandbox.example"


@pytest.fixture
def person(world: World) -> Iterator[str]:
    world.stack.entra.users.add_public_client(TENANT_ID, PUBLIC_CLIENT)
    world.stack.entra.users.add_user(TENANT_ID, PERSON, "Ana Analyst")
    yield PERSON


def test_device_code_sign_in_runs_the_job_as_the_person(world: World, person: str) -> None:
    users = world.stack.entra.users
    cli = subprocess.Popen(
        [sys.executable, "-m", "keyreport.cli", "run", "--json", "--auth", "device-code", "--client-id", PUBLIC_CLIENT],
        env={k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KEYREPORT_"))} | world.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert cli.stderr is not None
    prompt = cli.stderr.readline()
    [code] = users.pending_user_codes()
    assert f"enter the code {code}" in prompt and f"{world.stack.entra.url}/devicelogin" in prompt
    users.approve(code, person)
    out, err = cli.communicate(timeout=120)

    assert cli.returncode == 0, err
    summary = json.loads(out)
    assert len(world.rows(summary["RunId"])) == world.estate.key_count
    last = world.stack.entra.issued[-1]
    assert (last["idtyp"], last["upn"], last["appid"]) == ("user", person, PUBLIC_CLIENT)


def test_browser_sign_in_runs_the_job_as_the_person(world: World, person: str, tmp_path: Path) -> None:
    world.stack.entra.users.sign_in_browser(TENANT_ID, person)
    launcher = browser.install(tmp_path, world.stack.ca.ca_bundle_path)

    done = cli(world.env, "run", "--auth", "browser", "--client-id", PUBLIC_CLIENT, BROWSER=str(launcher))

    assert done.returncode == 0, done.stderr
    last = world.stack.entra.issued[-1]
    assert (last["idtyp"], last["upn"]) == ("user", person)


def test_device_code_through_an_app_that_is_not_a_public_client_fails_clearly(world: World) -> None:
    done = cli(world.env, "run", "--auth", "device-code", "--client-id", CLIENT_ID, "--timeout", "20")
    assert done.returncode == 1
    assert "AADSTS7000218" in done.stderr and "Traceback" not in done.stderr
