"""`federated` mode, AWS side: the STS request keyreport makes, its failures, the regional endpoint, old boto3."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import boto3
import botocore.loaders
import botocore.session
import pytest
from botocore.config import Config
from botocore.stub import Stubber

from keyreport.aws.clients import AwsClients
from keyreport.clouds import CLOUDS
from keyreport.errors import WebIdentityTokenUnavailable
from keyreport.identity.federation import WebIdentityToken
from keyreport.settings import ConfigError

ROOT = Path(__file__).resolve().parents[3]
CREDENTIALS = {"aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "not-a-real-secret"}


@pytest.fixture(autouse=True)
def no_endpoint_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS", "AWS_STS_REGIONAL_ENDPOINTS", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)


def sts_client(region: str = "us-east-1", **kwargs: object) -> object:
    return boto3.Session(region_name=region, **CREDENTIALS).client("sts", **kwargs)  # type: ignore[call-overload]


@pytest.mark.parametrize("cloud", sorted(CLOUDS))
def test_asks_sts_for_a_short_rs256_token_for_the_clouds_exchange_audience(cloud: str) -> None:
    sts = sts_client()
    audience = CLOUDS[cloud].federation_audience
    with Stubber(sts) as stub:  # type: ignore[arg-type]
        stub.add_response(
            "get_web_identity_token",
            {"WebIdentityToken": "header.claims.signature", "Expiration": datetime(2030, 1, 1, tzinfo=UTC)},
            {"Audience": [audience], "SigningAlgorithm": "RS256", "DurationSeconds": 300},
        )
        assert WebIdentityToken(sts, audience)() == "header.claims.signature"  # type: ignore[arg-type]
        stub.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("code", "status", "says"),
    [
        (
            "AccessDenied",
            403,
            "may not call sts:GetWebIdentityToken: allow it in the role's policy (condition "
            "sts:IdentityTokenAudience = api://AzureADTokenExchange, sts:SigningAlgorithm = RS256)",
        ),
        (
            "OutboundWebIdentityFederationDisabledException",
            403,
            "run `aws iam enable-outbound-web-identity-federation`",
        ),
        ("JWTPayloadSizeExceededException", 400, "sts:GetWebIdentityToken failed: JWTPayloadSizeExceededException: "),
    ],
)
def test_sts_refusals_say_what_to_change(code: str, status: int, says: str) -> None:
    sts = sts_client()
    with Stubber(sts) as stub:  # type: ignore[arg-type]
        stub.add_client_error("get_web_identity_token", code, "the service's words", http_status_code=status)
        with pytest.raises(WebIdentityTokenUnavailable) as refused:
            WebIdentityToken(sts, "api://AzureADTokenExchange")()  # type: ignore[arg-type]
    assert says in str(refused.value)
    assert refused.value.__cause__ is None and refused.value.__suppress_context__  # no chained traceback


def test_an_unreachable_sts_names_the_endpoint() -> None:
    sts = sts_client(endpoint_url="https://127.0.0.1:9", config=Config(retries={"max_attempts": 1}))
    with pytest.raises(WebIdentityTokenUnavailable, match=r"cannot reach STS at https://127\.0\.0\.1:9: "):
        WebIdentityToken(sts, "api://AzureADTokenExchange")()  # type: ignore[arg-type]


def test_a_boto3_without_get_web_identity_token_is_refused_up_front(tmp_path: Path) -> None:
    """A real STS client from a service model that predates the operation (as in older Lambda runtimes)."""
    loader = botocore.loaders.Loader()
    version = loader.determine_latest_version("sts", "service-2")
    model = loader.load_service_model("sts", "service-2", version)
    del model["operations"]["GetWebIdentityToken"]
    (tmp_path / "sts" / version).mkdir(parents=True)
    (tmp_path / "sts" / version / "service-2.json").write_text(json.dumps(model))
    core = botocore.session.get_session()
    core.get_component("data_loader").search_paths.insert(0, str(tmp_path))
    old = boto3.Session(botocore_session=core, region_name="us-east-1", **CREDENTIALS).client("sts")
    assert not hasattr(old, "get_web_identity_token")

    with pytest.raises(ConfigError) as refused:
        WebIdentityToken(old, "api://AzureADTokenExchange")
    [problem] = refused.value.problems
    assert problem.startswith("KEYREPORT_AZURE_AUTH=federated needs boto3 >= 1.41 (sts:GetWebIdentityToken)")
    assert f"runs boto3 {boto3.__version__}" in problem and "requirements.lock" in problem


def test_the_lambda_package_pins_a_boto3_that_has_the_call() -> None:
    lock = (ROOT / "requirements.lock").read_text()
    for package in ("boto3", "botocore"):
        found = re.search(rf"^{package}==(\d+)\.(\d+)\.", lock, flags=re.MULTILINE)
        assert found, package
        assert (int(found[1]), int(found[2])) >= (1, 41), f"{package} {found[0]} predates GetWebIdentityToken"


def test_sts_is_reached_at_the_regional_endpoint_even_in_legacy_mode() -> None:
    core = botocore.session.get_session()
    core.set_config_variable("sts_regional_endpoints", "legacy")
    session = boto3.Session(botocore_session=core, region_name="us-east-1", **CREDENTIALS)
    assert session.client("sts").meta.endpoint_url == "https://sts.amazonaws.com"  # the global one
    assert AwsClients(session).sts().meta.endpoint_url == "https://sts.us-east-1.amazonaws.com"


@pytest.mark.parametrize(
    ("region", "endpoint", "expected"),
    [
        ("eu-west-1", None, "https://sts.eu-west-1.amazonaws.com"),
        ("us-east-1", "https://vpce-0abc.sts.us-east-1.vpce.amazonaws.com", None),  # a VPC endpoint is kept
    ],
)
def test_a_regional_or_chosen_endpoint_is_kept(
    monkeypatch: pytest.MonkeyPatch, region: str, endpoint: str | None, expected: str | None
) -> None:
    if endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL_STS", endpoint)
    clients = AwsClients(boto3.Session(region_name=region, **CREDENTIALS))
    assert clients.sts().meta.endpoint_url == (expected or endpoint)
    assert clients.sts() is clients.sts()  # built once, reused by a warm Lambda
