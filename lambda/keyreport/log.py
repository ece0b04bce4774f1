"""One structured JSON logger for the package, on stderr so a dry run's stdout stays pure data."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from aws_lambda_powertools import Logger


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at the time of the call, not at import (redirects keep working)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _: TextIO) -> None:
        pass


logger = Logger(service="keyreport", logger_handler=_CurrentStderr())

# The SDKs keyreport runs on. At DEBUG they log secret values: botocore the bodies of GetSecretValue (the
# client secret, the fingerprint key), AssumeRole (session credentials) and GetWebIdentityToken (a JWT
# Entra exchanges for minutes); azure and msal token requests. Held at WARNING whatever the root or
# Lambda log level (ApplicationLogLevel=DEBUG is the usual first step when something fails).
QUIET_LOGGERS = (
    "botocore",
    "boto3",
    "s3transfer",
    "urllib3",
    "requests",
    "azure",
    "msal",
    "msal_extensions",
    "aws_lambda_powertools",
)


def quiet_sdk_loggers() -> None:
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


quiet_sdk_loggers()
