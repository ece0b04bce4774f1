"""One stack per test session (per xdist worker); a freshly seeded account and restored keys per test."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

import keyreport.handler
import keyreport.wiring
from keyreport.deployment_key import DeploymentKey
from keyreport.records import fingerprint
from sandbox.estate import Estate
from sandbox.lambda_context import LocalLambdaContext
from sandbox.stack import WORKSPACE_KEY_SECRET, Stack

KEYS_TABLE = "AWS_Access_Key_Report_CL"
RUNS_TABLE = "AWS_Access_Key_Report_Run_CL"
USERS_TABLE = "AWS_Access_Key_Report_Users_CL"
USERS = 60


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with Stack(tmp_path_factory.mktemp("stack")) as running:
        yield running


@dataclass
class World:
    stack: Stack
    estate: Estate
    env: dict[str, str]

    def configure(self, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
        """The function's environment becomes exactly `env` (nothing left over from the one before)."""
        for name in set(self.env) - set(env):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        self.env = env

    def invoke(self, timeout_seconds: float = 900) -> dict[str, Any]:
        return keyreport.handler.lambda_handler({}, LocalLambdaContext(timeout_seconds))  # type: ignore[arg-type]

    def rows(self, run_id: str, table: str = KEYS_TABLE) -> list[dict[str, Any]]:
        return [row for row in self.stack.collector.rows(table) if row.get("RunId_g") == run_id]

    def rows_by_fingerprint(self, run_id: str) -> dict[str, dict[str, Any]]:
        rows = self.rows(run_id)
        by_fingerprint = {row["KeyFingerprint_s"]: row for row in rows}
        assert len(by_fingerprint) == len(rows), "fingerprints must be unique per key"
        return by_fingerprint

    def full_key_ids(self) -> list[str]:
        return [key.access_key_id for key in self.estate.iam_keys]

    def secrets(self) -> list[str]:
        """Everything that must never appear in a log line, a stored row or a request."""
        return [self.stack.client_secret, self.stack.workspace_key, self.stack.fingerprint_secret, *self.full_key_ids()]

    def key_fingerprint(self, access_key_id: str) -> str:
        """The fingerprint this deployment (the stack's fingerprint secret) gives a key of the seeded account."""
        return key_fingerprint(access_key_id, self.estate.account_id, deployment_key(self.stack).fingerprint)


@pytest.fixture
def world(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> World:
    return new_world(stack, monkeypatch)


def new_world(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> World:
    """A freshly seeded account and a cold Lambda's environment (also for module-scoped fixtures)."""
    estate = stack.seed(users=USERS, seed=11)
    for emulator in (stack.entra, stack.keyvault, stack.collector, stack.ingestion):
        emulator.faults.clear()  # a test that left faults queued must not fail the next one
    stack.collector.set_key(stack.workspace_key)
    stack.keyvault.set_secret(WORKSPACE_KEY_SECRET, stack.workspace_key)
    env = stack.env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    cold_start()  # each test starts as a cold Lambda
    return World(stack, estate, env)


def cold_start() -> None:
    """Forget what a warm Lambda container keeps: the session, the sinks and their secrets and tokens."""
    keyreport.wiring._WARM.clear()
    keyreport.handler._session.cache_clear()


def deployment_key(stack: Stack) -> DeploymentKey:
    return DeploymentKey.from_secret(stack.fingerprint_secret, "the sandbox's fingerprint secret")


def key_fingerprint(access_key_id: str, account_id: str, key: bytes) -> str:
    identity = f"{account_id}:{access_key_id}" if access_key_id.startswith("root:") else access_key_id
    return fingerprint(identity, key)


def dumps(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, default=str)
