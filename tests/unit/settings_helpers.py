"""Shared by the settings tests: the problems a ConfigError lists for a base environment with changes."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from keyreport.settings import ConfigError, Settings

UNSET = "<unset>"


def problems_with(base: Mapping[str, str], **changes: str) -> list[str]:
    """`changes` replace variables of `base`; the value UNSET removes one."""
    env = {name: value for name, value in ({**base} | changes).items() if value != UNSET}
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    return caught.value.problems
