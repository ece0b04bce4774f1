"""What the commands share: exit codes, the options every long-running command takes, and their effects."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, TypeAlias

from keyreport.deadline import Deadline
from keyreport.log import logger

EXIT_OK, EXIT_RUN_FAILED, EXIT_CONFIG, EXIT_PARTIAL = 0, 1, 2, 3

if TYPE_CHECKING:
    Commands: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]


def add_run_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--timeout", type=float, default=None, help="give up retrying after this many seconds")
    command.add_argument("-v", "--verbose", action="store_true", help="show the structured INFO log on stderr")


def start(args: argparse.Namespace) -> Deadline:
    """Sets the log level the options ask for and returns the deadline of the command."""
    logger.setLevel("INFO" if args.verbose else "WARNING")
    return Deadline.after(args.timeout) if args.timeout else Deadline()
