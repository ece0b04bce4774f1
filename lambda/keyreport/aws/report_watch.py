"""The credential report, generated and polled on its own thread while the inventory lists users and keys."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError

from keyreport.aws.credential_report import CredentialReport, fetch_credential_report, unusable
from keyreport.errors import first_line

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient


class ReportWatch:
    """Asks for the report at once; `settled` once it is there or known not to come (then `report` is None).

    The constructor returns after IAM's first answer: when a fresh report exists or the report is denied,
    the run knows before it lists a single key, and no key waits for nothing.
    """

    def __init__(
        self,
        iam: IAMClient,
        wait_seconds: float,
        sleep: Callable[[float], bool | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.report: CredentialReport | None = None
        self.errors: list[str] = []  # what the run row should count: the report unusable, or rows unreadable
        self.root_keys_known = False
        self._iam, self._wait_seconds, self._clock = iam, wait_seconds, clock
        self._sleep = sleep
        self._error: Exception | None = None
        self._stop = threading.Event()
        self._first_answer = threading.Event()
        self._settled = threading.Event()
        self._thread = threading.Thread(target=self._fetch, name="credential-report", daemon=True)
        self._thread.start()
        self._first_answer.wait()

    @property
    def settled(self) -> bool:
        return self._settled.is_set()

    def wait(self) -> CredentialReport | None:
        """The report, once polling ends (ready, refused, or not ready within the wait)."""
        self._settled.wait()
        if self._error is not None:
            raise self._error  # a bug, not an AWS answer: it fails the run as it would without the thread
        return self.report

    def stop(self) -> None:
        """The run no longer needs the report (it ended early): polling ends at its next pause."""
        self._stop.set()

    def _fetch(self) -> None:
        try:
            outcome = fetch_credential_report(self._iam, self._wait_seconds, self._pause, self._clock)
            self.report, self.errors, self.root_keys_known = outcome.report, outcome.errors, outcome.root_keys_known
        except BotoCoreError as error:  # no answer at all; listing will meet the same network, or not
            self.errors = unusable(f"IAM did not answer: {first_line(error)}").errors
        except Exception as error:  # handed to the main thread by wait()
            self._error = error
        finally:
            self._settled.set()
            self._first_answer.set()

    def _pause(self, seconds: float) -> bool | None:
        self._first_answer.set()  # not ready yet: the inventory starts listing meanwhile
        if self._sleep is not None:
            return self._sleep(seconds) or self._stop.is_set()
        return self._stop.wait(seconds)
