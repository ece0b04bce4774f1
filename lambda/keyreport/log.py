"""One structured JSON logger for the package, on stderr so a dry run's stdout stays pure data."""

from __future__ import annotations

import logging
import sys

from aws_lambda_powertools import Logger

logger = Logger(service="keyreport", logger_handler=logging.StreamHandler(sys.stderr))
