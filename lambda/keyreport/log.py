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
