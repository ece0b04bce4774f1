"""The guides' commands as written: every aws, az, keyreport and make command, and the order of the steps."""

from __future__ import annotations

from tests.docs import az_cli
from tests.docs.check import problems, real
from tests.docs.guides import all_shown


def test_every_command_in_the_guides_is_right() -> None:
    found = problems(real())
    assert not found, "\n".join(found)


def test_the_guides_are_read_at_all() -> None:
    """The reader must see the commands, or the test above passes for nothing."""
    shown = [item for items in all_shown().values() for item in items]
    tools = {item.words[0] for item in shown if item.words}
    assert {"aws", "az", "keyreport", "make"} <= tools
    assert len([i for i in shown if i.words[:1] == ["aws"]]) >= 25
    assert len([i for i in shown if i.words[:1] == ["az"]]) >= 30


def test_the_az_table_names_its_source_and_covers_every_az_command_shown() -> None:
    assert az_cli.table()["source"].startswith("azure-cli ")
    shown = [i for items in all_shown().values() for i in items if i.words[:1] == ["az"]]
    assert all(az_cli.command_name(i.words) for i in shown), [
        i.where for i in shown if not az_cli.command_name(i.words)
    ]
