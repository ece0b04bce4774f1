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


def test_the_walkthrough_deploys_with_ids_that_earlier_steps_produced() -> None:
    """From nothing to rows, in order: every id the first stack deployment takes (the rule, its endpoint, the app,
    the tenant) comes out of an earlier `az` or `aws` command, and the rule's role is granted to the principal
    made before it; none is typed in by the reader."""
    items = all_shown()["docs/deployment.md"]
    deploy = next(i for i in items if i.words[:2] == ["make", "deploy"] and i.block >= 0)
    params = " ".join(deploy.words)
    for parameter in ("Sink=logs_ingestion", "DceEndpoint=$DCE_ENDPOINT", "DcrImmutableId=$DCR_ID"):
        assert parameter in params, parameter
    producers = {i.command.output: i for i in items[: items.index(deploy)] if i.command.output}
    for variable in sorted(deploy.command.uses - {"STACK", "ARTIFACT_BUCKET", "ROLE_NAME"}):
        assert variable in producers and producers[variable].words[0] == "az", (variable, deploy.where)
    rule = next(
        i for i in items if i.words[:4] == ["az", "deployment", "group", "create"] and "principalId=$SP_ID" in i.words
    )
    sp = next(i for i in items if i.command.output == "SP_ID")
    assert items.index(sp) < items.index(rule) < items.index(deploy)
