"""`keyreport`: the same pipeline as the Lambda, from a workstation; one module per command."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import NoReturn

from botocore.exceptions import BotoCoreError, ClientError

from keyreport import __version__
from keyreport.cli import check, kms_certificate, query, replay, run
from keyreport.cli.common import EXIT_CONFIG, EXIT_RUN_FAILED
from keyreport.cli.interrupt import EXIT_INTERRUPTED, Interrupt, terminate_as_interrupt
from keyreport.errors import (
    ConfigError,
    DeadlineReached,
    SecretUnavailable,
    SpillError,
    aws_credentials_problem,
    aws_problem,
)

EXIT_CLOSED_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a writer whose reader went away

DESCRIPTION = """\
Inventory this AWS account's IAM access keys (or a whole AWS Organization's) and ship them to Azure Monitor
Log Analytics, exactly as the scheduled Lambda does; prove every hop first with `keyreport check`.

commands:
  check            prove every hop of the configured run, ship no row (start here)
  run              inventory the access keys and ship them (--sink stdout: dry run)
  replay           re-ship the batches parked in the spill bucket
  query, queries   run a shipped KQL query against the workspace; list them
  kms-certificate  make the certificate for KEYREPORT_AZURE_AUTH=kms, signed inside KMS
"""

EPILOG = """\
exit codes:
  0    everything delivered / every hop passed
  1    the run or check failed (the last lines name the cause and the fix)
  2    usage or configuration error (every problem listed at once; also no or expired AWS credentials)
  3    keyreport query: a partial result (printed, and reported as partial)
  130  stopped by Ctrl-C or SIGTERM (a run spills what it holds and writes its run row first)
  141  the reader of stdout went away (`keyreport run --sink stdout | head`)

configuration: KEYREPORT_* variables (`keyreport COMMAND --help` lists those the command reads),
AZURE_TENANT_ID / AZURE_CLIENT_ID, and boto3's own (AWS_PROFILE, AWS_REGION, ...). -v shows the JSON log.
"""


class Parser(argparse.ArgumentParser):
    """Every usage mistake reads the same way: the command, what is wrong, where the options are; exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_CONFIG, f"{self.prog}: {message}\n  ({self.prog} --help lists the options)\n")


def _parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="keyreport",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"keyreport {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in (run, replay, check, kms_certificate, query):
        command.add_to(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    interrupt = args.interrupt = Interrupt()
    try:
        # run and replay stop gracefully (their work is spilled, their run row written); the others just stop.
        with interrupt.catching() if getattr(args, "graceful", False) else terminate_as_interrupt():
            code = _command(args)
    except KeyboardInterrupt:
        print("keyreport: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_CLOSED_PIPE
    return EXIT_INTERRUPTED if interrupt.signal else code


def _command(args: argparse.Namespace) -> int:
    try:
        return int(args.handler(args))
    except ConfigError as error:
        print(error, file=sys.stderr)
        return EXIT_CONFIG
    except (SecretUnavailable, SpillError, DeadlineReached) as error:
        print(f"keyreport: {error}", file=sys.stderr)
        return EXIT_CONFIG if getattr(error, "environment", False) else EXIT_RUN_FAILED
    except (BotoCoreError, ClientError) as error:  # AWS outside a run's own handling: say what to fix
        print(f"keyreport: {aws_problem(error)}", file=sys.stderr)
        return EXIT_CONFIG if aws_credentials_problem(error) else EXIT_RUN_FAILED


def _quiet_stdout() -> None:
    """The reader went away: point stdout at /dev/null so the interpreter's last flush cannot complain."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
