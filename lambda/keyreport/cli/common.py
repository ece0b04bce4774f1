"""What the commands share: exit codes, the options every long-running command takes, and their effects."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, TypeAlias

import boto3

from keyreport.deadline import Deadline
from keyreport.log import logger
from keyreport.settings import aws_region

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


def add_run_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--timeout", type=seconds, default=None, help="bound the whole command to this many seconds (above 0)"
    )
    command.add_argument("-v", "--verbose", action="store_true", help="show the structured INFO log on stderr")


def start(args: argparse.Namespace) -> Deadline:
    """Sets the log level the options ask for and returns the deadline of the command."""
    logger.setLevel("INFO" if args.verbose else "WARNING")
    if args.timeout is None:
        return Deadline()
    return Deadline.after(args.timeout, min(MAX_MARGIN_SECONDS, args.timeout * MARGIN_FRACTION))


def aws_session() -> boto3.Session:
    """The workstation's AWS session, in AWS_REGION when only that is set (botocore reads AWS_DEFAULT_REGION)."""
    return boto3.Session(region_name=aws_region())
