"""The compliance map's checks (keyreport.queries.compliance, queries/compliance.json) that the Sentinel content
alerts on: those the workspace functions judge, i.e. that KeyReport_Findings has rows for."""

from __future__ import annotations

import re

from keyreport import queries
from keyreport.queries import compliance

Control = compliance.Control
_JUDGED = re.compile(r'ControlId = "([a-z0-9-]+)"')


def controls() -> dict[str, Control]:
    """Every check of the map by id, in the map's order."""
    return dict(compliance.load().controls)


def judged() -> dict[str, Control]:
    """The checks the workspace functions produce findings for (a rule on any other would never fire)."""
    named = {name for function in queries.functions().values() for name in _JUDGED.findall(function.text)}
    return {control_id: control for control_id, control in controls().items() if control_id in named}
