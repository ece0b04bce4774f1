"""`keyreport`: the same pipeline as the Lambda, from a workstation."""

from __future__ import annotations

import argparse
import json
import sys

import boto3

from keyreport import __version__, cli_auth, pipeline, query_client
from keyreport.deadline import Deadline
from keyreport.handler import sink_for, spill_for
from keyreport.log import logger
from keyreport.records import summary_row
from keyreport.replay import replay
from keyreport.secrets import SecretUnavailable
from keyreport.settings import SINKS, ConfigError, Settings
from keyreport.spill import SpillError

EXIT_OK, EXIT_RUN_FAILED, EXIT_CONFIG = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="keyreport", description=__doc__)
    parser.add_argument("--version", action="version", version=f"keyreport {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="inventory this account's access keys and ship them")
    run.add_argument("--sink", choices=SINKS, help="override KEYREPORT_SINK (stdout = dry run)")
    run.add_argument("--timeout", type=float, default=None, help="give up retrying after this many seconds")
    run.add_argument("--json", action="store_true", help="print the run summary as JSON")
    run.add_argument("-v", "--verbose", action="store_true", help="show the structured INFO log on stderr")
    cli_auth.add_sign_in_options(run)
    run.set_defaults(handler=_run)
    replay = commands.add_parser("replay", help="re-ship batches parked in KEYREPORT_SPILL_BUCKET")
    replay.add_argument("--timeout", type=float, default=None, help="give up retrying after this many seconds")
    replay.add_argument("-v", "--verbose", action="store_true", help="show the structured INFO log on stderr")
    replay.set_defaults(handler=_replay)
    cli_auth.add_kms_certificate_command(commands)
    query_client.add_commands(commands)
    return parser


def _run(args: argparse.Namespace) -> int:
    logger.setLevel("INFO" if args.verbose else "WARNING")
    overrides = {"KEYREPORT_SINK": args.sink} if args.sink else {}
    overrides |= cli_auth.settings_overrides(args)
    settings = Settings.from_env(**overrides)
    session = boto3.Session()
    deadline = Deadline.after(args.timeout) if args.timeout else Deadline()
    sink = cli_auth.person_sink(args, settings, session) or sink_for(settings, session)
    result = pipeline.run(settings, session, sink, deadline, spill=spill_for(settings, session))
    row = summary_row(result.summary)
    if args.json:
        print(json.dumps(row, indent=2))
    else:
        width = max(map(len, row))
        for name, value in row.items():
            print(f"{name:<{width}}  {value}", file=sys.stderr)
    if not result.summary.succeeded:
        for key in result.summary.spill_keys:
            print(f"spilled for replay: s3://{settings.spill_bucket}/{key}", file=sys.stderr)
        for error in result.summary.errors:
            print(f"error: {error}", file=sys.stderr)
        for batch in result.failed_batches:
            print(f"not delivered: {len(batch.rows)} {batch.table.value} rows: {batch.reason}", file=sys.stderr)
        return EXIT_RUN_FAILED
    return EXIT_OK


def _replay(args: argparse.Namespace) -> int:
    logger.setLevel("INFO" if args.verbose else "WARNING")
    settings = Settings.from_env()
    session = boto3.Session()
    spill = spill_for(settings, session)
    if spill is None:
        raise ConfigError(["KEYREPORT_SPILL_BUCKET is required for keyreport replay"])
    deadline = Deadline.after(args.timeout) if args.timeout else Deadline()
    outcome = replay(spill, sink_for(settings, session), deadline)
    print(
        f"{outcome.objects} spilled batch(es): {outcome.delivered_objects} delivered and deleted "
        f"({outcome.delivered_rows} rows), {len(outcome.kept)} kept",
        file=sys.stderr,
    )
    for problem in outcome.errors:
        print(f"  {problem}", file=sys.stderr)
    return EXIT_OK if outcome.succeeded else EXIT_RUN_FAILED


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except ConfigError as error:
        print(error, file=sys.stderr)
        return EXIT_CONFIG
    except (SecretUnavailable, SpillError) as error:
        print(f"keyreport: {error}", file=sys.stderr)
        return EXIT_RUN_FAILED


if __name__ == "__main__":
    sys.exit(main())
