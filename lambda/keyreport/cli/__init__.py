"""`keyreport`: the same pipeline as the Lambda, from a workstation; one module per command."""

from __future__ import annotations

import argparse
import sys

from botocore.exceptions import BotoCoreError, ClientError

from keyreport import __version__
from keyreport.cli import check, kms_certificate, query, replay, run
from keyreport.cli.common import EXIT_CONFIG, EXIT_RUN_FAILED
from keyreport.errors import (
    ConfigError,
    DeadlineReached,
    SecretUnavailable,
    SpillError,
    aws_credentials_problem,
    aws_problem,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="keyreport", description=__doc__)
    parser.add_argument("--version", action="version", version=f"keyreport {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    for command in (run, replay, check, kms_certificate, query):
        command.add_to(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
