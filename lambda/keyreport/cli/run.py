"""`keyreport run`: inventory this account's access keys and ship them, as the Lambda does."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from keyreport import pipeline
from keyreport.cli import sign_in
from keyreport.cli.common import EXIT_OK, EXIT_RUN_FAILED, add_run_options, aws_session, start
from keyreport.cli.progress import CountingSink, Progress, counting_spill, wanted
from keyreport.records import summary_row
from keyreport.settings import SINKS, Settings
from keyreport.wiring import Wiring

if TYPE_CHECKING:
    from keyreport.cli.common import Commands


def add_to(commands: Commands) -> None:
    command = commands.add_parser("run", help="inventory this account's access keys and ship them")
    command.add_argument("--sink", choices=SINKS, help="override KEYREPORT_SINK (stdout = dry run)")
    command.add_argument("--json", action="store_true", help="print the run summary as JSON")
    add_run_options(command)
    sign_in.add_sign_in_options(command)
    command.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    deadline = start(args)
    overrides = {"KEYREPORT_SINK": args.sink} if args.sink else {}
    settings = Settings.from_env(None, **overrides, **sign_in.settings_overrides(args))
    session, progress = aws_session(), Progress(wanted(args), "users read", "user")
    progress.watch_inventory(session)
    wiring = Wiring(settings, session, sign_in.person_credential(args, settings.azure))
    sink, spill = CountingSink(wiring.sink, progress), counting_spill(wiring.spill, progress)
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
    for key in result.summary.spill_keys:
        print(f"spilled for replay: s3://{settings.spill_bucket}/{key}", file=sys.stderr)
    for error in result.summary.errors:
        print(f"error: {error}", file=sys.stderr)
    for batch in result.failed_batches:
        print(f"not delivered: {len(batch.rows)} {batch.table.value} rows: {batch.reason}", file=sys.stderr)
    return EXIT_RUN_FAILED
