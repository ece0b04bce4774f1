"""The secret-hygiene suite at DEBUG: every sign-in mode and both sinks run with the root logger (and keyreport's)
at DEBUG, as Lambda's ApplicationLogLevel=DEBUG sets them, and no log record holds a secret, a token, a
private key, a session credential or a full key id. A control run shows the capture would see a leak."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import boto3
import moto.sts.models
import pytest

import keyreport.handler
from keyreport.log import QUIET_LOGGERS, logger
from sandbox.lambda_context import LocalLambdaContext
from sandbox.stack import SINKS
from tests.integration.conftest import World
from tests.integration.test_auth_modes import MODES, body_lines
from tests.integration.test_organization import organization, queue_arn, sqs_event  # noqa: F401 - a fixture

# Whatever the values, these never belong in a log: SDK dumps of responses and requests that carry them.
MARKERS = ("eyJ", "SecretString", "SecretAccessKey", "SessionToken", "PRIVATE KEY", "client_secret=", "assertion=")


class Everything(logging.Handler):
    """Every record that reaches the root logger, rendered with its arguments and extra fields."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name} {record.getMessage()} {json.dumps(record.__dict__, default=str)}")

    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def debug_logs() -> Iterator[Everything]:
    """Root and keyreport's logger at DEBUG; what the function writes is caught both at the root and on stderr."""
    root = logging.getLogger()
    handler, level, own_level = Everything(), root.level, logger.log_level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    logger.setLevel("DEBUG")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(own_level)
    root.setLevel(level)
    root.removeHandler(handler)


def leaks(world: World, logged: str, mode: str) -> list[str]:
    """What of the run's secrets appears in `logged` (names only, never the values)."""
    stack = world.stack
    assert stack.auth_modes is not None
    secrets = {
        "secret or key id": world.secrets(),
        "certificate private key": body_lines(stack.auth_modes.client_certificate.pem),
    }
    if mode == "federated":  # the Lambda role's session credentials
        secrets["role session"] = [world.env["AWS_SECRET_ACCESS_KEY"], world.env["AWS_SESSION_TOKEN"]]
    found = [name for name, values in secrets.items() for value in values if value and value in logged]
    return found + [marker for marker in MARKERS if marker in logged]


@pytest.mark.parametrize("sink", SINKS)
@pytest.mark.parametrize("mode", MODES)
def test_every_mode_and_sink_at_debug_logs_no_secret(
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    debug_logs: Everything,
    mode: str,
    sink: str,
) -> None:
    world.configure(monkeypatch, world.stack.env(sink=sink, auth=mode))

    summary = world.invoke()

    assert summary["Status"] == "ok" and summary["RecordsShipped"] == world.estate.key_count
    output = capsys.readouterr()
    logged = debug_logs.text() + output.out + output.err
    assert '"run finished"' in logged  # keyreport's own lines were caught
    assert leaks(world, logged, mode) == []


def test_a_member_accounts_assumed_role_credentials_stay_out_of_debug_logs(
    world: World,
    organization: dict[str, Any],  # noqa: F811 - the fixture imported above
    monkeypatch: pytest.MonkeyPatch,
    debug_logs: Everything,
) -> None:
    issued: list[Any] = []
    original = moto.sts.models.STSBackend.assume_role

    def recording(self: Any, *args: Any, **kwargs: Any) -> Any:
        issued.append(role := original(self, *args, **kwargs))
        return role

    monkeypatch.setattr(moto.sts.models.STSBackend, "assume_role", recording)
    member = next(account for account in organization["estates"] if account != world.estate.account_id)
    event = sqs_event(queue_arn(world, organization["queue"]), json.dumps({"account_id": member}))

    response = keyreport.handler.handle(event, LocalLambdaContext(), boto3.Session())  # type: ignore[arg-type]

    assert response == {"batchItemFailures": []} and issued
    logged = debug_logs.text()
    assert "AssumeRole" in logged or "assume" in logged.lower() or debug_logs.lines  # records were captured
    for role in issued:
        assert role.secret_access_key not in logged and role.session_token not in logged
    assert leaks(world, logged, "secret") == []


def test_the_capture_would_see_a_leak_if_an_sdk_logger_were_at_debug(
    world: World, monkeypatch: pytest.MonkeyPatch, debug_logs: Everything
) -> None:
    """Control: botocore at DEBUG (as before keyreport held it) logs the client secret's GetSecretValue body."""
    monkeypatch.setattr(logging.getLogger("botocore"), "level", logging.DEBUG)
    world.invoke()
    assert "secret or key id" in leaks(world, debug_logs.text(), "secret")
    assert "SecretString" in debug_logs.text()


def test_sdk_loggers_are_held_at_warning_even_under_a_debug_root() -> None:
    logging.getLogger().setLevel(logging.DEBUG)
    try:
        for name in QUIET_LOGGERS:
            assert logging.getLogger(name).getEffectiveLevel() == logging.WARNING, name
        children = ("botocore.endpoint", "botocore.parsers", "urllib3.connectionpool", "azure.identity", "msal")
        for child in children:
            assert not logging.getLogger(child).isEnabledFor(logging.INFO), child
    finally:
        logging.getLogger().setLevel(logging.WARNING)
