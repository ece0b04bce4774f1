"""Settings for the whole suite."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from hypothesis import settings

from keyreport.log import QUIET_LOGGERS

# These machines are shared and noisy: Hypothesis's per-example time limit measures the neighbours, not the code.
settings.register_profile("keyreport", deadline=None)
settings.load_profile("keyreport")


@pytest.fixture(autouse=True)
def _log_levels_restored() -> Iterator[None]:
    """A CLI command run in-process quiets keyreport's logger for the rest of its process (cli.common.quiet_unless,
    right for a command, wrong for the next test in the same worker): every test starts from the same levels."""
    names = ("keyreport", *QUIET_LOGGERS)
    levels = {name: logging.getLogger(name).level for name in names}
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
