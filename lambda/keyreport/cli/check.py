"""`keyreport check`: prove every hop of the configured run, ship no row; exit 0 only when every hop passes."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

import boto3

from keyreport.check import Hop
from keyreport.check.runner import HOP_TIMEOUT_SECONDS, plan, run_probes
from keyreport.cli.common import EXIT_OK, EXIT_RUN_FAILED, RUN_VARIABLES, help_for, quiet_unless, seconds
from keyreport.cli.progress import Progress, wanted
from keyreport.errors import ConfigError
from keyreport.settings import Settings
from keyreport.validation import account_id_problem
from keyreport.wiring import Wiring

if TYPE_CHECKING:
    from keyreport.cli.common import Commands


def add_to(commands: Commands) -> None:
    command = commands.add_parser(
        "check",
        help="prove every hop of the configured run (ships no row)",
        **help_for(
            "Proves every hop the configured run would use, one cheap call each, in the order a run meets them, "
            "and ships no row. A hop that fails names the likely cause and the fix; the hops behind it are "
            "reported as not checked.",
            "0 every hop passed, 1 a hop did not pass (the last lines name the first failure's cause and fix), "
            "2 configuration, 130 interrupted",
            RUN_VARIABLES,
        ),
    )
    command.add_argument("--json", action="store_true", help="print the checklist as JSON")
    command.add_argument(
        "--account", type=_account_id, help="organization mode: the member account to assume the role in"
    )
    command.add_argument(
        "--hop-timeout",
        type=seconds,
        default=HOP_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help=f"fail a hop that has not answered after this long (default {HOP_TIMEOUT_SECONDS:g})",
    )
    command.add_argument(
        "-v", "--verbose", action="store_true", help="show the JSON log (INFO) and the SDKs' warnings on stderr"
    )
    command.set_defaults(handler=check)


def _account_id(value: str) -> str:
    problem = account_id_problem(value)
    if problem:
        raise argparse.ArgumentTypeError(f"{value!r} {problem}")
    return value


def check(args: argparse.Namespace) -> int:
    quiet_unless(verbose=args.verbose)
    settings = Settings.from_env()
    if args.account and settings.organization is None:  # refused, not ignored: it would prove nothing
        raise ConfigError(["--account applies in organization mode only (KEYREPORT_MODE=organization)"])
    wiring = Wiring(settings, boto3.Session())
    probes = plan(wiring, member_account=args.account, query_token=True)
    progress = Progress(wanted(args), "check", "hop", total=len(probes))

    def on_hop(name: str, hop: Hop | None) -> None:
        if hop is None:
            progress.describe(name)
        else:
            progress.advance()

    try:
        report = run_probes(probes, args.hop_timeout, on_hop)
    finally:
        progress.close()
    if args.json:
        print(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
    else:
        print("\n".join(report.lines()))
    return EXIT_OK if report.passed else EXIT_RUN_FAILED
