"""A cold start loads what its sink and sign-in mode use, and nothing else (fresh interpreters, as a new container)."""

from __future__ import annotations

from functools import cache

import pytest

from bench.cold_start import MODES, Mode, probe, throwaway_certificate

# What each sink must not load: the other sink's SDK (and, for a dry run, any Azure SDK at all).
NOT_LOADED = {
    "stdout": ("azure", "msal"),
    "data_collector": ("azure.monitor",),
    "logs_ingestion": ("azure.keyvault",),
}


@cache
def certificate() -> str:
    return throwaway_certificate()


@pytest.mark.parametrize("mode", MODES, ids=lambda mode: f"{mode.sink}-{mode.auth}")
def test_a_cold_start_loads_only_what_its_sink_and_mode_use(mode: Mode) -> None:
    modules = probe(mode, certificate())["modules"]
    assert "keyreport.handler" in modules and f"keyreport.sinks.{mode.sink}" in modules
    for package in NOT_LOADED[mode.sink]:
        assert not [name for name in modules if name == package or name.startswith(package + ".")], package
    if mode.sink != "stdout":
        assert "azure.identity" in modules  # the probe did build the credential it claims to have built
