"""`keyreport run`: inventory this account's access keys and ship them, as the Lambda does."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from keyreport import pipeline
from keyreport.cli import causes, sign_in
from keyreport.cli.common import EXIT_OK, EXIT_RUN_FAILED, RUN_VARIABLES, add_run_options, aws_session, help_for, start
from keyreport.cli.progress import CountingSink, Progress, counting_spill, wanted
from keyreport.records import summary_row
from keyreport.settings import SINKS, Settings
from keyreport.wiring import RANDOM_KEY_WARNING, Wiring

if TYPE_CHECKING:
    from keyreport.cli.common import Commands


def add_to(commands: Commands) -> None:
    command = commands.add_parser(
        "run",
        help="inventory this account's access keys and ship them",
        **help_for(
            "Inventories this account's IAM users and access keys and ships them to the configured sink, as the "
            "scheduled Lambda does; prints the run summary (stderr; --json: stdout). Batches that could not be "
            "delivered are parked in KEYREPORT_SPILL_BUCKET for `keyreport replay`. Ctrl-C stops the run: what "
            "was read is spilled and the run row written.",
            "0 everything delivered, 1 the run failed (the last lines name the cause and the fix), "
            "2 configuration, 130 interrupted, 141 stdout closed early",
            RUN_VARIABLES,
        ),
    )
    command.add_argument("--sink", choices=SINKS, help="override KEYREPORT_SINK (stdout = dry run)")
    command.add_argument("--json", action="store_true", help="print the run summary as JSON")
    add_run_options(command)
    sign_in.add_sign_in_options(command)
    command.set_defaults(handler=run, graceful=True)


def run(args: argparse.Namespace) -> int:
    deadline = start(args)
    overrides = {"KEYREPORT_SINK": args.sink} if args.sink else {}
    settings = Settings.from_env(None, **overrides, **sign_in.settings_overrides(args))
    session, progress = aws_session(), Progress(wanted(args), "users read", "user")
    progress.watch_inventory(session)
    wiring = Wiring(settings, session, sign_in.person_credential(args, settings.azure))
    sink, spill = CountingSink(wiring.sink, progress), counting_spill(wiring.spill, progress)
    if settings.fingerprint_secret_arn is None and not args.verbose:  # with -v the log says it
        print(f"keyreport: {RANDOM_KEY_WARNING}", file=sys.stderr)
    fingerprint_key = wiring.fingerprint_key  # read by the run, under its deadline
    try:
        result = pipeline.run(settings, wiring.aws, sink, deadline, fingerprint_key=fingerprint_key, spill=spill)
    finally:
        progress.close()
    row = summary_row(result.summary)
    if args.json:
        print(json.dumps(row, indent=2))
    else:
        width = max(map(len, row))
        for name, value in row.items():
            print(f"{name:<{width}}  {value}", file=sys.stderr)
    if result.summary.succeeded:
        return EXIT_OK
    for line in causes.run_report(result, settings, verbose=args.verbose):
        print(line, file=sys.stderr)
    return EXIT_RUN_FAILED
