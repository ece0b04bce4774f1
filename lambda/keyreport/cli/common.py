"""What the commands share: exit codes, the options every long-running command takes, and their effects."""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING, Any, TypeAlias

import boto3

from keyreport.cli.interrupt import Interrupt
from keyreport.deadline import Deadline
from keyreport.log import QUIET_LOGGERS, logger
from keyreport.settings import VARIABLES, aws_region

EXIT_OK, EXIT_RUN_FAILED, EXIT_CONFIG, EXIT_PARTIAL = 0, 1, 2, 3

if TYPE_CHECKING:
    Commands: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]


#: Of a --timeout, what is kept back for spilling and the run row (as KEYREPORT_DEADLINE_MARGIN_SECONDS in Lambda).
MARGIN_FRACTION, MAX_MARGIN_SECONDS = 0.25, 20.0


def seconds(text: str) -> float:
    """A --timeout: a positive number of seconds (0 would read as "no limit", which it must not mean)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of seconds above 0 (leave it out for no limit)")
    return value


def quiet_unless(*, verbose: bool) -> None:
    """A person's terminal gets the outcome and its cause, not log lines: keyreport's JSON log and the SDKs'
    warnings (azure-identity's retries, botocore's) appear only with -v. A failure is summarised by the command."""
    logger.setLevel("INFO" if verbose else logging.CRITICAL)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING if verbose else logging.CRITICAL)


def add_run_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--timeout", type=seconds, default=None, help="bound the whole command to this many seconds (above 0)"
    )
    command.add_argument(
        "-v", "--verbose", action="store_true", help="show the JSON log (INFO) and the SDKs' warnings on stderr"
    )


def start(args: argparse.Namespace) -> Deadline:
    """Sets the log level the options ask for and returns the deadline of the command.

    The deadline also ends at Ctrl-C or SIGTERM (`keyreport.cli.interrupt`), with time kept for the closing steps.
    """
    quiet_unless(verbose=args.verbose)
    interrupt: Interrupt = getattr(args, "interrupt", None) or Interrupt()
    margin = 0.0 if args.timeout is None else min(MAX_MARGIN_SECONDS, args.timeout * MARGIN_FRACTION)
    return interrupt.deadline(args.timeout, margin)


def aws_session() -> boto3.Session:
    """The workstation's AWS session, in AWS_REGION when only that is set (botocore reads AWS_DEFAULT_REGION)."""
    return boto3.Session(region_name=aws_region())


#: What `keyreport run`, `check` and `replay` read: every setting of the run (README "Configuration").
RUN_VARIABLES = tuple(name for name in VARIABLES if name != "KEYREPORT_LOGS_QUERY_ENDPOINT")
QUERY_VARIABLES = (
    "KEYREPORT_WORKSPACE_ID",
    "KEYREPORT_LOGS_QUERY_ENDPOINT",
    "KEYREPORT_AZURE_AUTH",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "KEYREPORT_AZURE_CLIENT_SECRET_ARN",
    "KEYREPORT_AZURE_CERTIFICATE_ARN",
    "KEYREPORT_KMS_KEY_ID",
    "KEYREPORT_KMS_CERTIFICATE",
    "KEYREPORT_AZURE_CLOUD",
    "KEYREPORT_AZURE_AUTHORITY_HOST",
    "KEYREPORT_CA_BUNDLE",
)


def help_for(description: str, exit_codes: str, variables: tuple[str, ...] = ()) -> dict[str, Any]:
    """`add_parser` keywords: the command's description, its exit codes and the variables it reads (--help)."""
    lines = [f"exit codes: {exit_codes}"]
    if variables:
        width = max(map(len, variables))
        lines += ["", "reads (besides boto3's own AWS_PROFILE, AWS_REGION, ...):"]
        lines += [f"  {name:<{width}}  {VARIABLES[name]}" for name in variables]
    return {
        "description": description,
        "epilog": "\n".join(lines),
        "formatter_class": argparse.RawDescriptionHelpFormatter,
    }
