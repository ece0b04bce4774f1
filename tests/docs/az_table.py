"""Writes az_commands.json: the options of each `az` command the guides use, read from azure-cli itself.

azure-cli is not a dependency of keyreport (nor in any lock file). To refresh the table, install it in a
throwaway environment outside the repository and run this module with that interpreter from the repository
root:  python -m venv /tmp/az && /tmp/az/bin/pip install azure-cli==<version> &&
/tmp/az/bin/python -m tests.docs.az_table
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from tests.docs.guides import ROOT, all_shown

TABLE = ROOT / "tests/docs/az_commands.json"
# Extension commands are not in azure-cli; their options are written here from `az <command> --help` of the
# named extension (version given), which cannot be installed without the extension index.
GLOBAL = ("--debug", "--help", "--only-show-errors", "--output", "--query", "--verbose")  # on every command
EXTENSIONS: dict[str, Any] = {
    "monitor log-analytics query": {
        "extension": "log-analytics",
        "source": "Microsoft Learn, az monitor log-analytics query (extension log-analytics): its synopsis",
        "options": {
            "--workspace": {"aliases": ["-w"], "required": True},
            "--analytics-query": {"required": True},
            "--timespan": {},
            "--workspaces": {"nargs": "+"},
        },
    }
}


def main() -> None:
    from azure.cli.core import __version__

    shown = all_shown().values()
    wanted = {" ".join(_words(s.words[1:])) for items in shown for s in items if s.words[:1] == ["az"]}
    commands: dict[str, Any] = {}
    for words in sorted(wanted):
        name, parser = _parser(words.split())
        if parser is not None:
            commands[name] = _options(parser)
    everywhere = {flag: s for flag, s in commands["account show"]["options"].items() if flag in GLOBAL}
    commands.update({name: spec | {"options": spec["options"] | everywhere} for name, spec in EXTENSIONS.items()})
    missing = [w for w in wanted if not any(w == n or w.startswith(n + " ") for n in commands)]
    assert not missing, f"not az commands: {missing}"
    document = {"source": f"azure-cli {__version__}, read by tests/docs/az_table.py", "commands": commands}
    TABLE.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def _words(words: list[str]) -> list[str]:
    return words[: next((i for i, w in enumerate(words) if w.startswith(("-", "$", "<"))), len(words))]


def _parser(words: list[str]) -> tuple[str, Any]:
    """The command's argparse parser, built the way azure-cli's invoker builds it (its events included)."""
    from azure.cli.core import get_default_cli
    from azure.cli.core.commands import events
    from knack import events as knack_events

    cli = get_default_cli()
    invoker = cli.invocation_cls(
        cli_ctx=cli, parser_cls=cli.parser_cls, commands_loader_cls=cli.commands_loader_cls, help_cls=cli.help_cls
    )
    cli.invocation, loader = invoker, invoker.commands_loader
    cli.raise_event(knack_events.EVENT_INVOKER_PRE_CMD_TBL_CREATE, args=words)
    loader.load_command_table(words)
    name = _name(loader.command_table, words)
    if name not in loader.command_table:
        return name, None
    loader.command_table = {name: loader.command_table[name]}
    invoker.data["command_string"] = name  # argument contexts apply by this
    loader.command_name = name
    cli.raise_event(events.EVENT_INVOKER_PRE_LOAD_ARGUMENTS, commands_loader=loader)
    loader.load_arguments(name)
    cli.raise_event(events.EVENT_INVOKER_POST_LOAD_ARGUMENTS, commands_loader=loader)
    cli.raise_event(knack_events.EVENT_INVOKER_POST_CMD_TBL_CREATE, commands_loader=loader)
    invoker.parser.cli_ctx = cli
    invoker.parser.load_command_table(loader)
    return name, invoker.parser.subparsers[tuple(name.split()[:-1])].choices[name.split()[-1]]


def _name(table: dict[str, Any], words: list[str]) -> str:
    """The longest run of leading words that names a command."""
    plain = words[: next((i for i, w in enumerate(words) if w.startswith("-")), len(words))]
    for n in range(len(plain), 0, -1):
        if " ".join(plain[:n]) in table:
            return " ".join(plain[:n])
    return " ".join(plain)


def _options(parser: Any) -> dict[str, Any]:
    """Every option of the command's argparse parser (azure-cli's own), global ones included."""
    found: dict[str, Any] = {}
    for action in parser._actions:
        flags = [f for f in action.option_strings if f.startswith("-")]
        if not flags or action.help == argparse.SUPPRESS:
            continue
        long = max(flags, key=len)
        entry: dict[str, Any] = {"aliases": sorted(f for f in flags if f != long)}
        entry["required"] = bool(action.required)
        if action.choices:
            entry["choices"] = sorted(str(c) for c in action.choices)
        if action.nargs in ("+", "*", 0):
            entry["nargs"] = action.nargs
        found[long] = {k: v for k, v in entry.items() if v or k == "nargs"}
    return {"options": found}


if __name__ == "__main__":
    main()
