"""Fixtures for the emulator tests: one throwaway CA per session, fresh emulators per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.data_collector import DataCollectorEmulator
from sandbox.entra import EntraEmulator
from sandbox.keyvault import KeyVaultEmulator
from sandbox.tls import LocalCA

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "0b3e1a6c-5f4d-4c1e-9a7b-3c2d1e0f9a8b"
SECRET = "sandbox-client-secret"
WORKSPACE = "3f6a0d2e-8b1c-4e5f-a9d7-c2b4e6f80a13"
KEY = "c2FuZGJveC13b3Jrc3BhY2Uta2V5LXByaW1hcnktMDEyMzQ1Njc4OWFiY2RlZg=="


@pytest.fixture(scope="session")
def local_ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCA:
    return LocalCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="session")
def bundle(local_ca: LocalCA) -> str:
    return str(local_ca.ca_bundle_path)


@pytest.fixture
def entra(local_ca: LocalCA) -> Iterator[EntraEmulator]:
    with EntraEmulator(local_ca) as emulator:
        emulator.register_app(TENANT, CLIENT, SECRET)
        yield emulator


@pytest.fixture
def keyvault(local_ca: LocalCA, entra: EntraEmulator) -> Iterator[KeyVaultEmulator]:
    with KeyVaultEmulator(local_ca, entra, TENANT) as emulator:
        yield emulator


@pytest.fixture
def data_collector(local_ca: LocalCA) -> Iterator[DataCollectorEmulator]:
    with DataCollectorEmulator(local_ca, WORKSPACE, KEY) as emulator:
        yield emulator
